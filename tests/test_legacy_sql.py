"""The ``sql`` backend: the legacy's own queries on a real PostgreSQL.

The golden vectors go through the path a user takes (``janitor-shadow
restore`` then ``janitor-shadow schedule DSN --engine legacy:sql --json``),
and a property test holds ``sql`` and ``memory`` to the same answers, bit for
bit, on random datasets restored into fresh databases.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paths import VECTORS

from engines.base import get_engine
from engines.model import (
    Candidate,
    Codebase,
    Dataset,
    DebianVersion,
    NamedPublishPolicy,
    PolicyEntry,
    Run,
    Schedule,
    datetime_to_us,
)
from harness.cli import main
from harness.data.janitor_db import read_dataset
from harness.data.restore import restore_dataset
from harness.data.snapshot import load_snapshot

pytestmark = pytest.mark.postgres

AS_OF = datetime(2025, 6, 1)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def _check_against_vectors(out: dict[str, Any], vector: Path) -> None:
    expected = _jsonl(vector / "expected" / "candidates.jsonl")
    decisions = out["decisions"]
    assert len(decisions) == len(expected)
    for got, want in zip(decisions, expected, strict=True):
        where = f"seq {want['seq']} {want['codebase']}/{want['campaign']}"
        assert (got["codebase"], got["campaign"], got["change_set"]) == (
            want["codebase"],
            want["campaign"],
            want["change_set"],
        ), where
        if want["error"] is not None:
            assert got["error"] is not None, where
            assert got["error"]["type"] == want["error"]["type"], where
            assert got["error"]["phase"] == want["error"]["phase"], where
            assert got["error"]["message"] == want["error"]["message"], where
            continue
        assert got["error"] is None, (where, got["error"])
        assert got["value"] == want["value_with_publish_bonus"], where
        assert got["total_previous_runs"] == want["total_previous_runs"], where
        assert got["estimated_duration_us"] == want["estimated_duration_us"], where
        assert got["normalized_codebase_value"] == want["normalized_codebase_value"], where
        assert got["success_probability"] == want["probability"], where
        assert got["offset"] == want["offset"], where
    queue_file = vector / "expected" / "queue_excluding_failures.jsonl"
    if not queue_file.exists():
        queue_file = vector / "expected" / "queue.jsonl"
    want_queue = _jsonl(queue_file)
    got_queue = [
        {
            "id": q["id"],
            "codebase": q["codebase"],
            "suite": q["campaign"],
            "bucket": q["bucket"],
            "priority": q["priority"],
            "estimated_duration_us": q["estimated_duration_us"],
            "context": q["context"],
            "command": q["command"],
            "requester": q["requester"],
            "refresh": q["refresh"],
            "change_set": q["change_set"],
        }
        for q in out["queue"]
    ]
    assert got_queue == [{k: row[k] for k in got_queue[0]} for row in want_queue]


@pytest.mark.parametrize("name", ["small", "quirks"])
def test_golden_vectors_through_restore_and_schedule_cli(
    name: str, janitor_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vector = VECTORS / name
    as_of = json.loads((vector / "meta.json").read_text())["as_of"]
    assert main(["restore", str(vector), janitor_db]) == 0
    out_file = tmp_path / "schedule.json"
    code = main(
        [
            "schedule",
            janitor_db,
            "--engine",
            "legacy:sql",
            "--as-of",
            as_of,
            "--json",
            str(out_file),
        ]
    )
    assert code == 0, capsys.readouterr().err
    out = json.loads(out_file.read_text())
    assert out["engine"] == "legacy:sql"
    _check_against_vectors(out, vector)


def _decision_fields(schedule: Schedule) -> list[tuple[Any, ...]]:
    return [
        (
            d.key,
            d.context,
            d.command,
            d.value,
            d.normalized_codebase_value,
            d.success_probability,
            d.estimated_duration_us,
            d.total_previous_runs,
            d.offset,
            d.bucket,
            None if d.error is None else (d.error.type, d.error.message, d.error.phase),
            dict(d.factors),
        )
        for d in schedule.decisions
    ]


def _agree(dataset: Dataset) -> tuple[Schedule, Schedule]:
    sql_schedule = get_engine("legacy:sql").schedule(dataset)
    memory_schedule = get_engine("legacy:memory").schedule(dataset)
    assert _decision_fields(sql_schedule) == _decision_fields(memory_schedule)
    assert sql_schedule.queue == memory_schedule.queue
    return sql_schedule, memory_schedule


def test_vectors_read_back_live_agree_with_memory_on_original(janitor_db: str) -> None:
    """The live reader loses nothing the memory backend needs (quirks: every odd row)."""
    original = load_snapshot(VECTORS / "quirks")
    restore_dataset(original, janitor_db)
    live = read_dataset(janitor_db, as_of=original.as_of)
    assert live.candidate_row_order == original.candidate_row_order
    on_original = get_engine("legacy:memory").schedule(original)
    on_live = get_engine("legacy:memory").schedule(live)
    assert _decision_fields(on_live) == _decision_fields(on_original)
    sql_schedule, _ = _agree(live)
    assert sql_schedule.queue == on_original.queue


# ------------------------------------------------------- random datasets

CODEBASES = ["alpha", "beta", "gamma", "delta"]
CAMPAIGNS = ["lintian-fixes", "fresh-releases"]
RESULT_CODES = [
    "success",
    "worker-failure",
    "install-deps-unsatisfied-dependencies",
    "build-failed",
    "nothing-to-do",
]
# The last few are not valid Debian versions: debversion orders them anyway.
VERSIONS = ["1.0~rc1", "1.0", "1.0-1", "1:0.9", "2.0+b1", "0.9.10", "0.9.9", "1_0", "", "-1", "1:"]
OPERATORS = ["<", "<=", "=", ">=", ">", "<>", "!="]
MAX_DURATION_US = 3 * 86_400 * 1_000_000  # spans beyond 24 h put days in the interval


@st.composite
def relations(draw: st.DrawFn) -> Any:
    def entry() -> st.SearchStrategy[dict[str, Any]]:
        return st.builds(
            lambda name, version: {"name": name, "version": version},
            st.sampled_from(["libfoo", "libbar", "missing"]),
            st.none() | st.tuples(st.sampled_from(OPERATORS), st.sampled_from(VERSIONS)).map(list),
        )

    return draw(st.lists(st.lists(entry(), min_size=1, max_size=2), min_size=1, max_size=2))


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    as_of_us = datetime_to_us(AS_OF)
    codebases = tuple(
        Codebase(name=name, value=draw(st.none() | st.integers(1, 1000))) for name in CODEBASES
    )
    policies = (
        NamedPublishPolicy("plain", (PolicyEntry("main", "propose"),)),
        NamedPublishPolicy("empty", ()),
        NamedPublishPolicy("pushy", (PolicyEntry("main", "push"), PolicyEntry("up", "skip"))),
    )
    candidates = []
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(CODEBASES), st.sampled_from(CAMPAIGNS)),
            min_size=1,
            max_size=6,
            unique=True,
        )
    )
    for ident, (codebase, campaign) in enumerate(keys, start=1):
        policy = draw(st.sampled_from(["plain", "empty", "pushy"]))
        candidates.append(
            Candidate(
                id=ident,
                codebase=codebase,
                suite=campaign,
                command="run-it",
                context=draw(st.none() | st.sampled_from(["ctx-a", "ctx-b"])),
                # NULL with a non-empty policy is the legacy's TypeError.
                value=None if draw(st.integers(0, 5)) == 0 else draw(st.integers(1, 200)),
                # A change set alone (no plain twin) ends in CandidateUnavailable on a re-read.
                change_set=draw(st.sampled_from([None, None, None, "cs-1"])),
                success_chance=draw(st.none() | st.floats(0, 1)),
                publish_policy=policy,
            )
        )
    runs = []
    starts: set[tuple[str, str, int]] = set()
    for index in range(draw(st.integers(0, 24))):
        codebase = draw(st.sampled_from(CODEBASES))
        campaign = draw(st.sampled_from(CAMPAIGNS))
        code = draw(st.sampled_from(RESULT_CODES))
        if code == "worker-failure" and draw(st.booleans()):
            # Around the 24-hour boundary, to the microsecond.
            start = as_of_us - 86_400 * 1_000_000 + draw(st.integers(-2, 2))
        else:
            start = as_of_us - draw(st.integers(1, 40 * 86_400 * 1_000_000))
        if (codebase, campaign, start) in starts:
            continue  # equal start times have no defined order in either backend
        starts.add((codebase, campaign, start))
        finish = start + draw(st.integers(0, MAX_DURATION_US))
        details = None
        if code == "install-deps-unsatisfied-dependencies":
            details = draw(st.none() | st.just({}) | relations().map(lambda r: {"relations": r}))
        runs.append(
            Run(
                id=f"run-{index}",
                codebase=codebase,
                suite=campaign,
                result_code=code,
                start_us=start,
                finish_us=finish,
                failure_transient=draw(st.sampled_from([None, False, True])),
                instigated_context=draw(st.none() | st.sampled_from(["ctx-a", "ctx-b"])),
                context=draw(st.none() | st.sampled_from(["ctx-a"])),
                failure_details=details,
            )
        )
    versions = tuple(
        DebianVersion(source=s, version=v, distribution="sid")
        for s, v in draw(
            st.lists(
                st.tuples(st.sampled_from(["libfoo", "libbar"]), st.sampled_from(VERSIONS)),
                max_size=4,
                unique=True,
            )
        )
    )
    return Dataset(
        as_of=AS_OF,
        codebases=codebases,
        candidates=tuple(candidates),
        policies=policies,
        runs=tuple(runs),
        debian_versions=versions,
    )


def _live(dataset: Dataset, dsn: str) -> Dataset:
    restore_dataset(dataset, dsn)
    return read_dataset(dsn, as_of=dataset.as_of)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(dataset=datasets())
def test_sql_and_memory_agree_on_random_datasets(janitor_databases: Any, dataset: Dataset) -> None:
    with janitor_databases.fresh() as dsn:
        live = _live(dataset, dsn)
        _agree(live)
        # The memory backend on the dataset as generated agrees too: nothing was lost.
        original = get_engine("legacy:memory").schedule(
            replace(dataset, candidate_row_order=live.candidate_row_order)
        )
        assert _decision_fields(original) == _decision_fields(
            get_engine("legacy:memory").schedule(live)
        )


def test_many_runs_average_rounding_agrees(janitor_db: str) -> None:
    """AVG over many odd spans (days + microseconds) is where rounding shows."""
    as_of_us = datetime_to_us(AS_OF)
    runs = tuple(
        Run(
            id=f"r{i}",
            codebase="alpha",
            suite="fresh-releases",
            result_code="build-failed",
            start_us=as_of_us - (i + 1) * 7_777_777_777,
            finish_us=as_of_us - (i + 1) * 7_777_777_777 + 86_400_000_000 + i * 333_333_331 + 7,
        )
        for i in range(97)
    )
    dataset = Dataset(
        as_of=AS_OF,
        codebases=(Codebase("alpha", value=5), Codebase("beta", value=7)),
        candidates=(
            Candidate(1, "alpha", "lintian-fixes", "x", value=3, publish_policy="p"),
            Candidate(2, "beta", "fresh-releases", "x", value=3, publish_policy="p"),
        ),
        policies=(NamedPublishPolicy("p", (PolicyEntry("main", "propose"),)),),
        runs=runs,
        debian_versions=(),
    )
    sql_schedule, _ = _agree(_live(dataset, janitor_db))
    assert [d.estimated_duration_us is not None for d in sql_schedule.decisions] == [True, True]


def _malformed(transient: bool | None) -> Dataset:
    as_of_us = datetime_to_us(AS_OF)
    return Dataset(
        as_of=AS_OF,
        codebases=(Codebase("alpha", value=5), Codebase("beta", value=7)),
        candidates=(
            Candidate(1, "alpha", "lintian-fixes", "x", value=3, publish_policy="p"),
            Candidate(2, "beta", "lintian-fixes", "x", value=3, publish_policy="p"),
        ),
        policies=(NamedPublishPolicy("p", (PolicyEntry("main", "propose"),)),),
        runs=(
            Run("r1", "alpha", "lintian-fixes", "worker-failure", None, as_of_us - 5, transient),
            Run("r2", "beta", "lintian-fixes", "success", as_of_us - 50, None, transient),
        ),
        debian_versions=(),
    )


@pytest.mark.parametrize("transient", [None, False])
def test_null_timestamps_are_per_candidate_errors_in_both_backends(
    janitor_databases: Any, transient: bool | None
) -> None:
    with janitor_databases.fresh() as dsn:
        sql_schedule, memory_schedule = _agree(_live(_malformed(transient), dsn))
    for schedule in (sql_schedule, memory_schedule):
        errors = [None if d.error is None else d.error.type for d in schedule.decisions]
        assert errors == ["builtins.TypeError", "builtins.AttributeError"]
        assert schedule.queue == []


def test_missing_debian_versions_table_is_a_per_candidate_error(
    janitor_db_without_versions: str,
) -> None:
    as_of_us = datetime_to_us(AS_OF)
    relations = {"relations": [[{"name": "libfoo", "version": [">=", "1.0"]}]]}
    dataset = Dataset(
        as_of=AS_OF,
        codebases=(Codebase("alpha", value=5), Codebase("beta", value=7)),
        candidates=(
            Candidate(1, "alpha", "lintian-fixes", "x", value=3, publish_policy="p"),
            Candidate(2, "beta", "lintian-fixes", "x", value=3, publish_policy="p"),
        ),
        policies=(NamedPublishPolicy("p", (PolicyEntry("main", "propose"),)),),
        runs=(
            Run(
                "r1",
                "alpha",
                "lintian-fixes",
                "install-deps-unsatisfied-dependencies",
                as_of_us - 100,
                as_of_us - 50,
                failure_details=relations,
            ),
            Run("r2", "beta", "lintian-fixes", "success", as_of_us - 100, as_of_us - 50),
        ),
        debian_versions=None,
    )
    live = _live(dataset, janitor_db_without_versions)
    assert live.debian_versions is None
    sql_schedule, _ = _agree(live)
    first, second = sql_schedule.decisions
    assert first.error is not None
    assert first.error.type == "asyncpg.exceptions.UndefinedTableError"
    assert first.error.sqlstate == "42P01"
    assert second.error is None and second.offset is not None


def test_sql_backend_never_writes(janitor_db: str) -> None:
    dataset = _live(load_snapshot(VECTORS / "small"), janitor_db)
    get_engine("legacy:sql").schedule(dataset)
    with psycopg.connect(janitor_db) as conn:
        assert conn.execute("SELECT count(*) FROM queue").fetchone() == (0,)


def test_sql_backend_needs_a_live_dataset() -> None:
    from harness.errors import SourceError

    with pytest.raises(SourceError, match="restore"):
        get_engine("legacy:sql").schedule(load_snapshot(VECTORS / "small"))


def test_interval_average_matches_postgresql(janitor_db: str) -> None:
    """engines.legacy.pg_interval against the server it emulates, on random spans."""
    from engines.legacy.pg_interval import average_interval_us
    from engines.model import timedelta_to_us, us_to_datetime

    base = datetime_to_us(AS_OF)
    spans = st.lists(
        st.tuples(
            st.integers(0, 400 * 86_400_000_000),
            st.one_of(
                st.integers(0, MAX_DURATION_US),
                st.integers(0, 86_400_000_000 * 2).map(lambda d: d - d % 86_400_000_000),
                st.integers(86_400_000_000 - 3, 86_400_000_000 + 3),
            ),
        ),
        min_size=1,
        max_size=150,
    )
    with psycopg.connect(janitor_db) as conn:

        @settings(max_examples=300, deadline=None)
        @given(spans)
        def check(pairs: list[tuple[int, int]]) -> None:
            starts = [us_to_datetime(base - back) for back, _ in pairs]
            finishes = [us_to_datetime(base - back + length) for back, length in pairs]
            row = conn.execute(
                "SELECT AVG(f - s) FROM unnest(%s::timestamp[], %s::timestamp[]) AS t(s, f)",
                (starts, finishes),
            ).fetchone()
            assert row is not None
            expected = timedelta_to_us(row[0])
            ours = average_interval_us(
                (base - back + length, base - back) for back, length in pairs
            )
            assert ours == expected

        check()


debian_versions = st.builds(
    lambda epoch, upstream, revision: f"{epoch}{upstream}{revision}",
    st.sampled_from(["", "", "1:", "2:"]),
    st.from_regex(r"\A[0-9][0-9a-z.+~]{0,6}\Z", fullmatch=True),
    st.sampled_from(["", "-1", "-1~bpo1", "-0.1", "-2+b1", "-1.1"]),
)


def test_debversion_ordering_matches_the_extension(janitor_db: str) -> None:
    """The memory backend's dpkg ordering against the debversion type it stands in for."""
    from engines.legacy.memory import debversion_cmp

    with psycopg.connect(janitor_db) as conn:

        @settings(max_examples=300, deadline=None)
        @given(debian_versions, debian_versions)
        def check(left: str, right: str) -> None:
            row = conn.execute(
                "SELECT sign(debversion_cmp(%s::debversion, %s::debversion))::int", (left, right)
            ).fetchone()
            assert row is not None
            ours = debversion_cmp(left, right)
            assert (ours > 0) - (ours < 0) == row[0], (left, right)

        check()


any_versions = st.one_of(
    debian_versions,
    st.text(alphabet="0123456789abzAZ.+-~:_ é", max_size=9),
    st.sampled_from(["", "-1", "1:", ":1", "0:1", "00:1.0", "01:1.0", "1.0-", "1:-1", "a:1"]),
)


def test_apt_ordering_matches_the_extension_on_any_string(janitor_db: str) -> None:
    """debversion never rejects a string: it orders it as libapt-pkg does; so must we."""
    from engines.legacy.debversion import compare_versions

    with psycopg.connect(janitor_db) as conn:

        @settings(max_examples=1500, deadline=None)
        @given(any_versions, any_versions)
        def check(left: str, right: str) -> None:
            row = conn.execute(
                "SELECT sign(debversion_cmp(%s::debversion, %s::debversion))::int", (left, right)
            ).fetchone()
            assert row is not None
            ours = compare_versions(left, right)
            assert (ours > 0) - (ours < 0) == row[0], (left, right)

        check()


def test_quirk_invalid_debian_versions_are_ordered_not_rejected(janitor_db: str) -> None:
    """The legacy's SQL compares any string as a debversion (libapt-pkg never rejects one);
    the memory backend once raised InvalidTextRepresentationError here instead."""
    as_of_us = datetime_to_us(AS_OF)
    relations = {
        "relations": [
            [{"name": "libfoo", "version": [">=", "1_0"]}],
            [{"name": "libbar", "version": ["<", "-1"]}, {"name": "libbar", "version": ["=", ""]}],
        ]
    }
    dataset = Dataset(
        as_of=AS_OF,
        codebases=(Codebase("alpha", value=5),),
        candidates=(Candidate(1, "alpha", "lintian-fixes", "x", value=3, publish_policy="p"),),
        policies=(NamedPublishPolicy("p", (PolicyEntry("main", "propose"),)),),
        runs=(
            Run(
                "r1",
                "alpha",
                "lintian-fixes",
                "install-deps-unsatisfied-dependencies",
                as_of_us - 100,
                as_of_us - 50,
                failure_details=relations,
            ),
        ),
        debian_versions=(
            DebianVersion("libfoo", "1:0.1"),
            DebianVersion("libbar", "-7"),
        ),
    )
    _, memory_schedule = _agree(_live(dataset, janitor_db))
    (decision,) = memory_schedule.decisions
    assert decision.error is None
    assert decision.factors["deps_satisfied_runs"] == 1


def test_a_failing_statement_is_one_candidates_error_and_the_run_goes_on(
    janitor_db: str, pg_server: Any
) -> None:
    """A reader without rights on all_debian_versions: the candidate that needs the table
    fails with PostgreSQL's error; the transaction recovers and the next one is decided."""
    as_of_us = datetime_to_us(AS_OF)
    relations = {"relations": [[{"name": "libfoo", "version": None}]]}
    dataset = Dataset(
        as_of=AS_OF,
        codebases=(Codebase("alpha", value=5), Codebase("beta", value=7)),
        candidates=(
            Candidate(1, "alpha", "lintian-fixes", "x", value=3, publish_policy="p"),
            Candidate(2, "beta", "lintian-fixes", "x", value=3, publish_policy="p"),
        ),
        policies=(NamedPublishPolicy("p", (PolicyEntry("main", "propose"),)),),
        runs=(
            Run(
                "r1",
                "alpha",
                "lintian-fixes",
                "install-deps-unsatisfied-dependencies",
                as_of_us - 100,
                as_of_us - 50,
                failure_details=relations,
            ),
            Run("r2", "beta", "lintian-fixes", "success", as_of_us - 100, as_of_us - 50),
        ),
        debian_versions=(DebianVersion("libfoo", "1.0"),),
    )
    live = _live(dataset, janitor_db)
    role = "shadow_reader_" + janitor_db.rsplit("_", 1)[1]
    with psycopg.connect(janitor_db, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(
            f"GRANT SELECT ON codebase, candidate, named_publish_policy, run, queue TO {role}"
        )
    try:
        limited = replace(live, live_dsn=janitor_db.replace("postgres@", f"{role}@"))
        schedule = get_engine("legacy:sql").schedule(limited)
        first, second = schedule.decisions
        assert first.error is not None
        assert first.error.type == "asyncpg.exceptions.InsufficientPrivilegeError"
        assert first.error.sqlstate == "42501"
        assert "permission denied" in first.error.message
        assert second.error is None and second.offset is not None
        assert [q.codebase for q in schedule.queue] == ["beta"]
    finally:
        with psycopg.connect(janitor_db, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_campaign_filter_keeps_both_backends_exact(janitor_db: str) -> None:
    """With --campaign the reader keeps every run the legacy's averages need."""
    original = load_snapshot(VECTORS / "quirks")
    restore_dataset(original, janitor_db)
    whole = get_engine("legacy:memory").schedule(original)
    live = read_dataset(janitor_db, campaign="lintian-fixes", as_of=original.as_of)
    sql_schedule, _ = _agree(live)
    assert {d.campaign for d in sql_schedule.decisions} == {"lintian-fixes"}
    # Each decision equals the unfiltered run's, except the queue-relative priority.
    by_key = {d.key: d for d in whole.decisions}
    for d in sql_schedule.decisions:
        full = by_key[d.key]
        assert (d.offset, d.estimated_duration_us, d.success_probability, d.error) == (
            full.offset,
            full.estimated_duration_us,
            full.success_probability,
            full.error,
        )
