"""The set-based live-database path agrees with the snapshot path (and the vectors)."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest
from conftest import JanitorDatabases
from hypothesis import HealthCheck, given, settings
from paths import VECTORS
from test_new_vs_legacy import datasets

from engines.model import Dataset, Schedule
from engines.new import create_engine
from engines.new.live import schedule_from_database
from harness.data.janitor_db import read_dataset
from harness.data.restore import restore_dataset
from harness.data.snapshot import load_snapshot

pytestmark = pytest.mark.postgres


def _numbers(schedule: Schedule) -> list[tuple[object, ...]]:
    return [
        (
            d.key,
            d.value,
            d.normalized_codebase_value,
            d.success_probability,
            d.total_previous_runs,
            d.estimated_duration_us,
            d.offset,
            d.bucket,
            "legacy_failure" in d.factors,
        )
        for d in schedule.decisions
    ]


def _queue(schedule: Schedule) -> list[tuple[object, ...]]:
    return [(q.id, q.key, q.priority, q.estimated_duration_us, q.context) for q in schedule.queue]


@pytest.mark.parametrize("name", ["small", "quirks"])
def test_parity_from_the_database_equals_parity_from_the_snapshot(
    janitor_db: str, name: str
) -> None:
    dataset = load_snapshot(VECTORS / name)
    restore_dataset(dataset, janitor_db)
    engine = create_engine("parity")
    from_snapshot = engine.schedule(dataset)
    from_db = schedule_from_database(engine, janitor_db, as_of=dataset.as_of)
    assert from_db.settings["aggregates_from"] == "database"
    assert from_snapshot.settings["aggregates_from"] == "dataset"
    assert _numbers(from_db) == _numbers(from_snapshot)
    assert _queue(from_db) == _queue(from_snapshot)


def test_default_profile_from_the_database_agrees_within_float_noise(janitor_db: str) -> None:
    dataset = load_snapshot(VECTORS / "quirks")
    restore_dataset(dataset, janitor_db)
    engine = create_engine("default")
    a = engine.schedule(dataset)
    b = schedule_from_database(engine, janitor_db, as_of=dataset.as_of)
    assert len(a.decisions) == len(b.decisions)
    for x, y in zip(a.decisions, b.decisions, strict=True):
        assert x.key == y.key
        assert x.estimated_duration_us == y.estimated_duration_us, x.reasons
        assert x.total_previous_runs == y.total_previous_runs
        assert x.success_probability == pytest.approx(y.success_probability, rel=1e-9)
        assert x.offset == pytest.approx(y.offset, rel=1e-9)


def test_without_all_debian_versions_the_engine_still_decides(
    janitor_db_without_versions: str,
) -> None:
    dataset = replace(load_snapshot(VECTORS / "small"), debian_versions=None)
    restore_dataset(dataset, janitor_db_without_versions)
    schedule = schedule_from_database(
        create_engine("parity"), janitor_db_without_versions, as_of=dataset.as_of
    )
    assert all(d.offset is not None for d in schedule.decisions)
    flagged = [d for d in schedule.decisions if "legacy_failure" in d.factors]
    assert flagged and all(
        "all_debian_versions" in str(d.factors["legacy_failure"]) for d in flagged
    )
    # the snapshot path says the same
    from_snapshot = create_engine("parity").schedule(dataset)
    assert [d.offset for d in from_snapshot.decisions] == [d.offset for d in schedule.decisions]


def test_single_candidate_decisions_equal_the_bulk_run(janitor_db: str) -> None:
    from engines.new.single import SingleCandidateScheduler

    dataset = load_snapshot(VECTORS / "quirks")
    restore_dataset(dataset, janitor_db)
    engine = create_engine("parity")
    bulk = engine.schedule(dataset)
    with SingleCandidateScheduler(engine, janitor_db) as single:
        for d in bulk.decisions[:120]:
            one = single.decide(
                d.codebase, d.campaign, change_set=d.change_set, as_of=dataset.as_of
            )
            got = one.decision
            assert got.key == d.key
            assert got.success_probability == d.success_probability, got.reasons
            assert got.estimated_duration_us == d.estimated_duration_us, got.reasons
            assert got.total_previous_runs == d.total_previous_runs
            assert got.offset == d.offset
            assert ("legacy_failure" in got.factors) == ("legacy_failure" in d.factors)
            if got.bucket is not None:
                assert one.queue_item is not None
                # on the restored (empty) queue the first add sits at trunc(offset)
                assert one.queue_item.priority == int(got.offset or 0)


def test_single_candidate_unknown_pair_is_one_clear_error(janitor_db: str) -> None:
    from engines.new.single import SingleCandidateScheduler
    from harness.errors import SourceError

    with (
        SingleCandidateScheduler(create_engine("parity"), janitor_db) as single,
        pytest.raises(SourceError, match="no candidate nosuch/lintian-fixes"),
    ):
        single.decide("nosuch", "lintian-fixes")


def test_a_live_source_dataset_uses_the_database_aggregates(janitor_db: str) -> None:
    from harness.data.janitor_db import read_dataset

    dataset = load_snapshot(VECTORS / "quirks")
    restore_dataset(dataset, janitor_db)
    live = read_dataset(janitor_db, as_of=dataset.as_of)
    assert live.live_dsn is not None
    schedule = create_engine("parity").schedule(live)
    assert schedule.settings["aggregates_from"] == "database"
    assert _numbers(schedule) == _numbers(create_engine("parity").schedule(dataset))


def test_install_deps_verdicts_are_worked_out_beside_the_queries(janitor_db: str) -> None:
    from engines.new.aggregates_sql import start_aggregates
    from engines.new.dependencies import DependencyResolver
    from engines.new.success import details_verdict, text_verdicts
    from harness.data.janitor_db import open_session

    dataset = load_snapshot(VECTORS / "quirks")
    restore_dataset(dataset, janitor_db)
    engine = create_engine("parity")
    with open_session(janitor_db, as_of=dataset.as_of) as session:
        pending = start_aggregates(session.connection, engine.config, dataset.as_of, session.joined)
        agg = pending.result()
    assert pending.verdicts and agg.deps_outcomes  # the groups' failures walked ahead
    # a group is left to the engine only for a failure without a verdict
    assert all(
        any(run.text not in pending.verdicts for run in runs) for runs in agg.deps_runs.values()
    )
    resolver = DependencyResolver({}, agg.debian_versions)
    for text, verdict in pending.verdicts.items():
        assert verdict == details_verdict(resolver, orjson.loads(text))
    # a text that cannot be decoded is left to the engine, which meets it on the candidate
    assert text_verdicts(["{", '{"relations": []}'], {}) == {'{"relations": []}': (False, None)}


@pytest.mark.parametrize("profile", ["parity", "default"])
def test_install_deps_failures_walked_beside_the_queries_decide_as_the_engine_would(
    janitor_db: str, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The groups' failures walked while the last query runs (contexts folded into the
    context hits) give the schedule the engine gives walking them candidate by candidate."""
    from engines.new import aggregates_sql

    dataset = load_snapshot(VECTORS / "quirks")
    restore_dataset(dataset, janitor_db)
    engine = create_engine(profile)
    ahead = schedule_from_database(engine, janitor_db, as_of=dataset.as_of)
    monkeypatch.setattr(aggregates_sql, "fold_deps", lambda *args: {})
    walked = schedule_from_database(engine, janitor_db, as_of=dataset.as_of)
    assert ahead.decisions == walked.decisions
    assert ahead.queue == walked.queue


def _both_ways(
    janitor_databases: JanitorDatabases, dataset: Dataset, profile: str
) -> tuple[Schedule, Schedule]:
    """``dataset`` decided from the database and from the same rows read back
    into memory (so both take the candidates in the database's order)."""
    engine = create_engine(profile)
    with janitor_databases.fresh() as dsn:
        restore_dataset(dataset, dsn)
        from_db = schedule_from_database(engine, dsn, as_of=dataset.as_of)
        rows = replace(read_dataset(dsn, as_of=dataset.as_of), live_dsn=None)
    assert len(rows.runs) == len(dataset.runs)
    from_memory = engine.schedule(rows)
    assert from_memory.settings["aggregates_from"] == "dataset"
    return from_db, from_memory


GENERATED = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@GENERATED
@given(dataset=datasets())
def test_generated_datasets_decide_the_same_from_the_database_as_from_memory(
    janitor_databases: JanitorDatabases, dataset: Dataset
) -> None:
    """Runs without a start or finish time, worker failures at the age limit,
    install-deps failures: the groups query's flags against the arrays'."""
    from_db, from_memory = _both_ways(janitor_databases, dataset, "parity")
    assert _numbers(from_db) == _numbers(from_memory)
    assert [d.error for d in from_db.decisions] == [d.error for d in from_memory.decisions]
    assert _queue(from_db) == _queue(from_memory)


@GENERATED
@given(dataset=datasets())
def test_generated_datasets_decide_alike_with_the_default_profile(
    janitor_databases: JanitorDatabases, dataset: Dataset
) -> None:
    """The plan's decayed weights and medians, from the server and from the arrays:
    the weights' sums are added in another order, hence the float tolerance."""
    from_db, from_memory = _both_ways(janitor_databases, dataset, "default")
    assert len(from_db.decisions) == len(from_memory.decisions)
    for x, y in zip(from_db.decisions, from_memory.decisions, strict=True):
        assert x.key == y.key
        assert x.error == y.error
        assert x.estimated_duration_us == y.estimated_duration_us, (x.reasons, y.reasons)
        assert x.total_previous_runs == y.total_previous_runs
        assert x.success_probability == pytest.approx(y.success_probability, rel=1e-9)
        assert x.offset == pytest.approx(y.offset, rel=1e-9)
