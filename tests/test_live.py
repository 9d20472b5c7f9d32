"""The live reader: a production-schema database → one consistent Dataset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paths import VECTORS

from engines.base import get_engine
from engines.model import PolicyEntry, datetime_to_us
from harness.data.janitor_db import connect_read_only, epoch_us_sql, read_dataset, redact_dsn
from harness.errors import SourceError

pytestmark = pytest.mark.postgres


def _populate(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO codebase (name, branch_url, url, value) VALUES "
            "('alpha', 'https://salsa.debian.org/a.git', 'https://salsa.debian.org/a.git', 10), "
            "('beta', NULL, NULL, NULL), ('gamma', 'https://x/g', 'https://x/g', 0)"
        )
        conn.execute(
            "INSERT INTO codebase (name, branch_url, url) "
            "VALUES (NULL, 'https://x/nameless', 'https://x/nameless')"
        )
        conn.execute(
            "INSERT INTO named_publish_policy VALUES "
            "('two', ARRAY[ROW('main', 'propose', 7), ROW('up', NULL, NULL)]::branch_publish_policy[], 'rl'), "
            "('empty', '{}', NULL), ('null', NULL, NULL)"
        )
        conn.execute(
            "INSERT INTO change_set (id, campaign) VALUES ('cs1', 'lintian-fixes'), "
            "('cs-run', 'lintian-fixes')"
        )
        conn.execute(
            "INSERT INTO candidate (codebase, suite, context, value, success_chance, command, "
            "publish_policy, change_set) VALUES "
            "('alpha', 'lintian-fixes', 'c1', 5, 0.1, 'brush', 'two', NULL), "
            "('alpha', 'lintian-fixes', NULL, 6, NULL, 'brush', 'two', 'cs1'), "
            "('beta', 'fresh-releases', NULL, NULL, NULL, 'new-upstream', 'empty', NULL), "
            "('gamma', 'fresh-releases', NULL, 1, NULL, 'new-upstream', NULL, NULL)"
        )
        conn.execute(
            "INSERT INTO run (id, start_time, finish_time, result_code, suite, change_set, "
            "codebase, logfilenames, failure_details, failure_transient) VALUES "
            "('r1', '2025-05-01 10:00:00.123457', '2025-05-02 11:00:00.000001', "
            "'install-deps-unsatisfied-dependencies', 'lintian-fixes', 'cs-run', 'alpha', '{}', "
            '\'{"relations": [[{"name": "x", "version": [">=", "1.0"]}]]}\', NULL), '
            "('r2', NULL, NULL, 'worker-failure', 'fresh-releases', 'cs-run', 'beta', '{}', "
            "'{}', true), "
            "('r3', '2025-05-03 00:00', '2025-05-03 00:01', 'success', 'other', 'cs-run', "
            "'gamma', '{}', NULL, false)"
        )
        conn.execute(
            "INSERT INTO all_debian_versions VALUES ('x', 'sid', '1.0~rc1'), ('x', 'sid', '1.0')"
        )
        conn.execute(
            "INSERT INTO queue (bucket, codebase, suite, command, priority, context, "
            "estimated_duration, refresh, requester) VALUES "
            "('manual', 'alpha', 'lintian-fixes', 'brush', -5, NULL, "
            "'1 day 00:00:01.5', NULL, 'someone')"
        )


def test_reads_every_table_exactly(janitor_db: str) -> None:
    _populate(janitor_db)
    before = datetime.now(UTC).replace(tzinfo=None)
    dataset = read_dataset(janitor_db)
    after = datetime.now(UTC).replace(tzinfo=None)
    assert before - timedelta(seconds=1) <= dataset.as_of <= after + timedelta(seconds=1)
    assert dataset.as_of.tzinfo is None
    assert [c.name for c in dataset.codebases] == ["alpha", "beta", "gamma"]
    policies = dataset.policy_by_name
    assert policies["two"].per_branch_policy == (
        PolicyEntry("main", "propose", 7),
        PolicyEntry("up", None, None),
    )
    assert policies["two"].rate_limit_bucket == "rl"
    assert policies["empty"].per_branch_policy == ()
    assert policies["null"].per_branch_policy is None
    assert len(dataset.candidates) == 4
    runs = {r.id: r for r in dataset.runs}
    assert runs["r1"].start_us == datetime_to_us(datetime(2025, 5, 1, 10, 0, 0, 123457))
    assert runs["r1"].finish_us == datetime_to_us(datetime(2025, 5, 2, 11, 0, 0, 1))
    assert runs["r1"].failure_details == {"relations": [[{"name": "x", "version": [">=", "1.0"]}]]}
    assert runs["r1"].failure_transient is None
    assert runs["r2"].start_us is None and runs["r2"].failure_details == {}
    assert runs["r3"].failure_transient is False
    assert dataset.debian_versions is not None
    assert sorted(v.version for v in dataset.debian_versions) == ["1.0", "1.0~rc1"]
    (item,) = dataset.queue
    assert (item.bucket, item.priority, item.requester, item.refresh) == (
        "manual",
        -5,
        "someone",
        False,
    )
    assert item.estimated_duration_us == 86_401_500_000
    # The candidate query's inner joins drop gamma (NULL policy); keys include change sets.
    assert dataset.candidate_row_order is not None
    assert sorted(dataset.candidate_row_order, key=str) == sorted(
        [
            ("alpha", "lintian-fixes", None),
            ("alpha", "lintian-fixes", "cs1"),
            ("beta", "fresh-releases", None),
        ],
        key=str,
    )
    assert dataset.live_dsn == janitor_db
    assert dataset.provenance.source == janitor_db  # no password to strip here


def test_campaign_filter_keeps_what_the_legacy_needs(janitor_db: str) -> None:
    _populate(janitor_db)
    dataset = read_dataset(janitor_db, campaign="lintian-fixes")
    assert {c.suite for c in dataset.candidates} == {"lintian-fixes"}
    assert len(dataset.codebases) == 3  # every codebase: the normalized value needs them
    assert {r.id for r in dataset.runs} == {"r1"}
    assert dataset.provenance.filters == {"campaign": "lintian-fixes"}


def test_codebase_filter_and_sampling(janitor_db: str) -> None:
    _populate(janitor_db)
    dataset = read_dataset(janitor_db, codebases=["gamma", "beta"])
    assert {c.codebase for c in dataset.candidates} == {"beta", "gamma"}
    assert {r.id for r in dataset.runs} == {"r2", "r3"}
    assert dataset.provenance.filters["codebases"] == ["beta", "gamma"]
    sampled = read_dataset(janitor_db, sample_codebases=2, seed=3)
    again = read_dataset(janitor_db, sample_codebases=2, seed=3)
    assert sampled.provenance.filters["codebases"] == again.provenance.filters["codebases"]
    assert len(sampled.provenance.filters["codebases"]) == 2
    assert len(sampled.codebases) == 3
    assert any("over the sample" in n for n in sampled.provenance.details["notes"])


def test_absent_debian_versions_table_is_none(janitor_db_without_versions: str) -> None:
    dataset = read_dataset(janitor_db_without_versions)
    assert dataset.debian_versions is None
    assert dataset.candidates == ()


def test_other_production_columns_do_not_bother_the_reader(janitor_db: str) -> None:
    _populate(janitor_db)
    with psycopg.connect(janitor_db) as conn:
        conn.execute("ALTER TABLE branch_publish_policy ADD COLUMN max_frequency_days int")
        conn.execute("ALTER TABLE candidate ADD COLUMN extra jsonb DEFAULT '{}'")
        conn.execute("ALTER TABLE run ADD COLUMN branch_name text")
        conn.execute("ALTER TABLE queue ADD COLUMN added_at timestamp DEFAULT now()")
    dataset = read_dataset(janitor_db)
    assert dataset.policy_by_name["two"].per_branch_policy == (
        PolicyEntry("main", "propose", 7),
        PolicyEntry("up", None, None),
    )
    assert len(dataset.runs) == 3
    # The sql backend's own queries cope too, and agree with memory.
    sql_run = get_engine("legacy:sql").schedule(dataset)
    memory_run = get_engine("legacy:memory").schedule(dataset)
    assert [(d.key, d.offset, d.error) for d in sql_run.decisions] == [
        (d.key, d.offset, d.error) for d in memory_run.decisions
    ]
    assert len(sql_run.decisions) == 3


def test_password_never_reaches_provenance() -> None:
    assert redact_dsn("postgresql://u:s3cret@db.example:5432/janitor?sslmode=require") == (
        "postgresql://u@db.example:5432/janitor?sslmode=require"
    )
    assert "s3cret" not in redact_dsn("postgresql://u@h/db?password=s3cret&sslmode=require")
    assert "s3cret" not in redact_dsn("host=h dbname=janitor user=u password=s3cret")


def test_connection_failure_is_one_clear_line(pg_server: object) -> None:
    with pytest.raises(SourceError) as info:
        read_dataset("postgresql://nobody:pw@127.0.0.1:1/nothing?connect_timeout=2")
    message = str(info.value)
    assert message.startswith("cannot connect to postgresql://nobody@127.0.0.1:1/nothing")
    assert "\n" not in message and "pw" not in message.replace("nobody", "")


def test_not_a_janitor_database(pg_server: object) -> None:
    dsn = pg_server.dsn("postgres")  # type: ignore[attr-defined]
    with pytest.raises(SourceError, match="not a Janitor database"):
        read_dataset(dsn)


def test_reader_transactions_are_read_only_repeatable_read(janitor_db: str) -> None:
    conn = connect_read_only(janitor_db)
    try:
        with conn.transaction():
            assert conn.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
            assert conn.execute("SHOW transaction_read_only").fetchone() == ("on",)
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("DELETE FROM queue")
    finally:
        conn.close()


def test_as_of_replaces_the_sources_moment(janitor_db: str) -> None:
    from harness.data.sources import open_source

    moment = datetime(2025, 6, 3, 12, 0, 0, 1)
    assert open_source(janitor_db, as_of=moment).as_of == moment
    vectors = str(VECTORS / "small")
    assert open_source(vectors).as_of == datetime(2025, 6, 1)
    assert open_source(vectors, as_of=moment).as_of == moment


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31)),
        min_size=1,
        max_size=50,
    )
)
def test_run_times_arrive_as_exact_microseconds(pg_server: Any, moments: list) -> None:
    """The server turns run timestamps into microseconds (faster than Python
    would); before 1970, on a second's edge or at 23:59:59.999999, exactly."""
    moments += [datetime(1969, 12, 31, 23, 59, 59, 999999), datetime(1970, 1, 1)]
    query = f"SELECT {epoch_us_sql('m')} FROM unnest(%s::timestamp[]) AS m"
    with psycopg.connect(pg_server.dsn("postgres")) as conn:
        got = [us for (us,) in conn.execute(query, (moments,))]
    assert got == [datetime_to_us(m) for m in moments]


#: Strings a CSV reader could mistake: its own NULL spellings, the empty
#: string (not NULL), separators, quotes, line breaks, spaces kept as they are.
_AWKWARD = ["NULL", "null", "NaN", "N/A", "", " ", " padded ", 'a "quoted", b', "two\nlines\r\n"]
_DETAILS = [
    None,
    '{"relations": [[{"name": "x", "version": [">=", "1.0"]}]]}',
    '{"n": 123456789012345678901234567890, "f": 1e400, "u": "caf\\u00e9 \\ud83d\\ude00"}',
    '{"a": 1, "a": 2}',
    "[]",
    '"NULL"',
    '  {"spaced" : true}  ',
]


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_AWKWARD),
            st.sampled_from([*_AWKWARD, None]),
            st.sampled_from(_DETAILS),
            st.sampled_from([None, True, False]),
            st.sampled_from([None, datetime(1969, 12, 31, 23, 59, 59, 999999)]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_runs_copied_as_csv_equal_the_runs_read_row_by_row(
    janitor_databases: Any, rows: list[tuple[str, str | None, str | None, bool | None, Any]]
) -> None:
    """The run table arrives through COPY (CSV, parsed by pyarrow); every value
    must be what psycopg decodes row by row: strings, NULLs, JSON, booleans, times."""
    from psycopg import sql

    from harness.data import janitor_db

    with janitor_databases.fresh() as dsn, psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO codebase (name) VALUES ('cb')")
        conn.execute("INSERT INTO change_set (id, campaign) VALUES ('cs', 'lintian-fixes')")
        for i, (code, context, details, transient, start) in enumerate(rows):
            conn.execute(
                "INSERT INTO run (id, start_time, finish_time, result_code, suite, codebase, "
                "change_set, logfilenames, context, instigated_context, failure_details, "
                "failure_transient) VALUES (%s, %s, %s, %s, 'lintian-fixes', 'cb', 'cs', '{}', "
                "%s, %s, %s::json, %s)",
                (f"r{i},{code}", start, start, code, context, context, details, transient),
            )
        conn.commit()
        query = sql.Composed([sql.SQL(f"SELECT {janitor_db.RUN_COLUMNS} FROM run")])
        with conn.transaction():
            copied = janitor_db._copied_runs(conn, query, [])
            by_cursor = janitor_db.read_runs_by_cursor(conn, query, [])
    assert copied is not None  # pyarrow read it all: no fallback
    assert copied == by_cursor
    for a, b in zip(copied, by_cursor, strict=True):
        assert [type(x) for x in a] == [type(x) for x in b]


def test_runs_fall_back_to_the_cursor_when_the_copy_cannot_be_parsed(
    janitor_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyarrow refusing what COPY sent is no error: the rows are read again, by cursor."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    _populate(janitor_db)
    refused: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        refused.append(args)
        raise pa.ArrowInvalid("CSV parse error")

    expected = read_dataset(janitor_db).runs
    monkeypatch.setattr(pcsv, "read_csv", refuse)
    assert read_dataset(janitor_db).runs == expected
    assert refused  # the copy was tried first


_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.lists(
        st.characters(codec="utf-8") | st.sampled_from(["\\ud800", "\\u0000", '"']), max_size=8
    ).map("".join)
)
_NUMBER_SPELLINGS = st.sampled_from(
    [
        *("-0", "-0.0", "1E-400", "1e400", "-1e400", "0.1000000000000000055511151231257827"),
        *("1e22", "1.5E+3", "123456789012345678901234567890"),
        *("9223372036854775808", "-9223372036854775809"),
    ]
)


def _as_json(value: Any) -> str:
    """JSON text of ``value``; a literal backslash-u in a string becomes an escape
    (``\\ud800``: a lone surrogate, which only json.loads accepts)."""
    import json

    return json.dumps(value, ensure_ascii=False).replace("\\\\u", "\\u")


@given(
    st.recursive(
        _JSON_SCALARS.map(_as_json) | _NUMBER_SPELLINGS,
        lambda inner: (
            st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]")
            | st.lists(st.tuples(st.sampled_from(["a", "b", "a"]), inner), max_size=4).map(
                lambda kv: "{" + ",".join(f'"{k}": {v}' for k, v in kv) + "}"
            )
        ),
        max_leaves=12,
    )
)
def test_json_details_decode_as_psycopg_decodes_them(text: str) -> None:
    """orjson where it can, json.loads where it cannot: always json.loads' value
    (duplicate keys, huge integers, overflowing floats, lone surrogates)."""
    import json
    import math

    from harness.data.janitor_db import json_value

    def same(a: Any, b: Any) -> bool:
        if type(a) is not type(b):
            return False
        if isinstance(a, float):
            return a == b and math.copysign(1, a) == math.copysign(1, b)
        if isinstance(a, list):
            return len(a) == len(b) and all(map(same, a, b))
        if isinstance(a, dict):
            return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
        return bool(a == b)

    assert same(json_value(text), json.loads(text))
