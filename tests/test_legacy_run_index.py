"""The legacy's run index is shared by runs on the same run table (the noise
reruns); sharing it must not change a single number."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paths import VECTORS

from engines.base import get_engine
from engines.legacy import core, memory
from engines.legacy.pg_interval import IntervalSum
from engines.model import DebianVersion, Run
from harness.comparison.noise import shuffled_dataset
from harness.data.snapshot import load_snapshot


@pytest.mark.parametrize("name", ["quirks", "small"])
def test_a_shared_run_index_decides_as_a_fresh_one(name: str) -> None:
    dataset = load_snapshot(VECTORS / name)
    legacy = get_engine("legacy")
    first = legacy.schedule(dataset)
    assert memory.run_index(dataset.runs) is memory.run_index(dataset.runs)
    for seed in (1, 2):
        shuffled = shuffled_dataset(dataset, seed)
        assert shuffled.runs is dataset.runs
        shared = legacy.schedule(shuffled)  # reuses the index built for ``first``
        fresh = legacy.schedule(replace(shuffled, runs=tuple(list(dataset.runs))))
        assert memory.run_index(tuple(list(dataset.runs))) is not memory.run_index(dataset.runs)
        assert shared.decisions == fresh.decisions
        assert shared.queue == fresh.queue
    assert legacy.schedule(dataset).decisions == first.decisions


def _counting_estimates(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = core.estimate

    def counted(data, codebase, campaign, context, now_us):  # type: ignore[no-untyped-def]
        calls.append(codebase)
        return real(data, codebase, campaign, context, now_us)

    monkeypatch.setattr(core, "estimate", counted)
    return calls


@pytest.mark.parametrize("name", ["quirks", "small"])
def test_reruns_reuse_the_estimates_and_decide_as_a_fresh_run(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = load_snapshot(VECTORS / name)
    legacy = get_engine("legacy")
    calls = _counting_estimates(monkeypatch)
    first = legacy.schedule(dataset)
    estimated = len(calls)
    assert estimated > 0
    calls.clear()
    rerun = legacy.schedule(shuffled_dataset(dataset, 3))
    # only estimates that raised are asked again (they raise again)
    raised = sum(1 for d in first.decisions if d.error and d.error.phase == core.PHASE_SCHEDULE)
    assert len(calls) <= raised < estimated
    memory.forget_run_index()
    fresh = legacy.schedule(shuffled_dataset(dataset, 3))
    assert rerun.decisions == fresh.decisions and rerun.queue == fresh.queue


def test_other_debian_versions_are_estimated_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = load_snapshot(VECTORS / "quirks")
    legacy = get_engine("legacy")
    first = legacy.schedule(dataset)
    calls = _counting_estimates(monkeypatch)
    # the same runs with an empty all_debian_versions: no dependency is satisfied now
    empty = replace(dataset, debian_versions=())
    without = legacy.schedule(empty)
    assert calls
    memory.forget_run_index()
    assert without.decisions == legacy.schedule(empty).decisions
    assert [d.success_probability for d in without.decisions if not d.error] != [
        d.success_probability for d in first.decisions if not d.error
    ]


def test_another_moment_is_estimated_afresh() -> None:
    dataset = load_snapshot(VECTORS / "quirks")
    legacy = get_engine("legacy")
    first = legacy.schedule(dataset)
    # a day later, the worker failures of the last day no longer count
    later = replace(dataset, as_of=dataset.as_of + timedelta(days=1))
    moved = legacy.schedule(later)
    memory.forget_run_index()
    assert moved.decisions == legacy.schedule(later).decisions
    assert [d.success_probability for d in moved.decisions] != [
        d.success_probability for d in first.decisions
    ]


def test_the_run_fields_are_where_the_legacy_reads_them() -> None:
    """``estimate`` unpacks runs, and the run index sorts on position 4, in
    this order; a reordered Run must fail here, not mis-schedule quietly."""
    assert Run._fields == (
        "id",
        "codebase",
        "suite",
        "result_code",
        "start_us",
        "finish_us",
        "failure_transient",
        "instigated_context",
        "context",
        "failure_details",
    )


@given(st.lists(st.sampled_from([None, 1, 2, 3]), max_size=12))
def test_runs_are_newest_first_with_nulls_first_and_ties_in_table_order(
    starts: list[int | None],
) -> None:
    runs = [Run(f"r{i}", "c", "s", "success", start, None) for i, start in enumerate(starts)]
    index = memory.RunIndex(runs)
    expected = sorted(runs, key=lambda r: (0, 0) if r.start_us is None else (1, -r.start_us))
    assert list(index.groups.get(("c", "s"), [])) == expected


@given(
    st.lists(
        st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)
        | st.integers(min_value=-(10**12), max_value=10**12)
        | st.integers(min_value=-(2**70), max_value=2**70),  # beyond int64: the slow path
        max_size=40,
    )
)
def test_spans_summed_at_once_average_as_one_by_one(spans: list[int]) -> None:
    """The vectorised sum behind the legacy's averages is PostgreSQL's, exactly."""
    one_by_one, at_once = IntervalSum(), IntervalSum()
    for span in spans:
        one_by_one.add_span(span, 0)
    at_once.add_spans(spans)
    assert (at_once.days, at_once.time, at_once.count) == (
        one_by_one.days,
        one_by_one.time,
        one_by_one.count,
    )
    assert at_once.average_us() == one_by_one.average_us()


_NAMES = st.sampled_from(["dpkg", "libc6", "python3", "absent"])
_CONSTRAINTS = st.none() | st.tuples(
    st.sampled_from(["<", "<=", "=", ">=", ">", "<>", "!="]),
    st.sampled_from(["1.0", "1.0-1", "2:0.9", "1.0~rc1", "3"]),
)


@given(st.lists(st.tuples(_NAMES, _CONSTRAINTS), max_size=30))
def test_remembered_dependency_answers_are_the_ones_asked_afresh(
    questions: list[tuple[str, tuple[str, str] | None]],
) -> None:
    versions = (
        DebianVersion("dpkg", "1.0-1"),
        DebianVersion("libc6", "2:0.9"),
        DebianVersion("libc6", "1.0~rc1"),
        DebianVersion("python3", "3"),
    )
    dataset = replace(load_snapshot(VECTORS / "small"), debian_versions=versions)
    remembering = memory.MemoryData(dataset)
    for name, constraint in questions + questions:  # each asked at least twice
        fresh = memory.MemoryData(dataset)._dep_available(name, constraint)
        assert remembering.dep_available(name, constraint) is fresh


def test_dependency_questions_that_raise_raise_every_time() -> None:
    dataset = replace(load_snapshot(VECTORS / "small"), debian_versions=None)
    data = memory.MemoryData(dataset)
    for _ in range(2):
        with pytest.raises(core.LegacyError):
            data.dep_available("dpkg", None)
    listed = memory.MemoryData(replace(dataset, debian_versions=()))
    for _ in range(2):  # a name that cannot be a key is asked as it is, and fails as before
        with pytest.raises(TypeError, match="unhashable"):
            listed.dep_available(["dpkg"], None)  # type: ignore[arg-type]


_TIMES = st.none() | st.integers(-(2**40), 2**40)


@pytest.mark.parametrize(("start", "finish"), [(0, 2**70), (-(2**62) - 5, 2**62 + 5)])
def test_times_that_do_not_fit_a_column_are_averaged_run_by_run(start: int, finish: int) -> None:
    runs = [Run("1", "a", "s", "success", start, finish), Run("2", "a", "s", "success", 0, 10)]
    index = memory.RunIndex(runs)
    run_by_run = IntervalSum()
    run_by_run.add_span(finish, start)
    run_by_run.add_span(10, 0)
    assert index.avg_duration_us(codebase="a") == run_by_run.average_us()
    assert index.avg_duration_us(campaign="s") == run_by_run.average_us()


_EDGE_TIMES = _TIMES | st.sampled_from([0, 1, -1, 2**62 - 1, -(2**62) + 1, 2**62, 2**63 - 1])


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", ""]),
            st.sampled_from(["lintian-fixes", "fresh-releases"]),
            _EDGE_TIMES | st.sampled_from([5, 6]),  # ties
            _EDGE_TIMES,
            st.sampled_from([None, False, True, 0, 1]),  # only True is transient
        ),
        max_size=60,
    )
)
def test_runs_grouped_by_columns_are_the_runs_grouped_one_by_one(
    rows: list[tuple[str, str, int | None, int | None, Any]],
) -> None:
    """Same groups in the same order, the same Run objects in the same order
    within each, the same averages; or, for times beyond the columns, no answer
    (the run-by-run code is used)."""
    runs = [
        Run(str(i), codebase, suite, "success", start, finish, transient)
        for i, (codebase, suite, start, finish, transient) in enumerate(rows)
    ]
    by_columns = memory._index_by_columns(runs)
    times = [t for _, _, start, finish, _ in rows for t in (start, finish) if t is not None]
    if by_columns is None:
        assert not runs or any(not -(2**62) < t < 2**62 for t in times)
        return
    assert all(-(2**62) < t < 2**62 for t in times)
    groups, averages = by_columns
    one_by_one = memory._group_in_python(runs)
    assert list(groups) == list(one_by_one)
    for key, group in one_by_one.items():
        assert len(groups[key]) == len(group)
        assert all(a is b for a, b in zip(groups[key], group, strict=True))
    for mine, theirs in zip(averages, memory._averages_run_by_run(one_by_one), strict=True):
        for name in ("a", "b", "c", "", "lintian-fixes", "fresh-releases", "absent"):
            assert mine.get(name) == theirs.get(name)


def test_the_run_index_groups_by_columns_when_the_times_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = [Run(str(i), f"c{i % 7}", "s", "success", i % 5, i % 5 + 9) for i in range(50)]
    expected = memory._group_in_python(runs)

    def not_called(runs: object) -> None:
        raise AssertionError("grouped run by run")

    monkeypatch.setattr(memory, "_group_in_python", not_called)
    index = memory.RunIndex(runs)
    assert dict(index.groups) == expected
    assert index.avg_duration_us(codebase="c3") == 9
