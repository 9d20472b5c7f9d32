"""Invariants of the legacy engine on random inputs, and two implementations that agree.

* the queue simulation against a plain reference table (recomputing the
  minimum from scratch on every add), plus its own invariants;
* the probability formula's shape and bounds, and the counted runs;
* every offset recomputed from the decision's own fields, bit for bit;
* ``pg_interval`` against a slow reference written with exact fractions,
  explicit C truncation and an explicit rounding to a double at every step
  where PostgreSQL computes in double precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engines.base import get_engine
from engines.legacy.pg_interval import average_interval_us
from engines.model import (
    BUCKET_RANK,
    BUCKETS,
    US_PER_DAY,
    Candidate,
    Codebase,
    Dataset,
    DebianVersion,
    NamedPublishPolicy,
    PolicyEntry,
    QueueItem,
    Run,
    datetime_to_us,
    sorted_queue,
)
from engines.queue_sim import QueueSimulator

AS_OF = datetime(2026, 1, 1)
AS_OF_US = datetime_to_us(AS_OF)
MULTIPLIERS = (1.0, 0.5, 0.1)

# ---------------------------------------------------------------- queue


@dataclass
class RefRow:
    id: int
    key: tuple[str, str, str]
    bucket: str
    priority: int


class ReferenceQueue:
    """The spec's §7 insertion, written as plainly as possible."""

    def __init__(self) -> None:
        self.rows: list[RefRow] = []
        self.sequence = 0

    def add(self, key: tuple[str, str, str], bucket: str, offset: float) -> None:
        minimum = min((row.priority for row in self.rows), default=0)
        priority = minimum + math.trunc(offset)
        self.sequence += 1
        for row in self.rows:
            if row.key == key:
                old, new = BUCKETS.index(row.bucket), BUCKETS.index(bucket)
                if old >= new or (old == new and row.priority >= priority):
                    row.bucket, row.priority = bucket, priority
                return
        self.rows.append(RefRow(self.sequence, key, bucket, priority))

    def ordered(self) -> list[tuple[int, tuple[str, str, str], str, int]]:
        ordered = sorted(self.rows, key=lambda r: (BUCKETS.index(r.bucket), r.priority, r.id))
        return [(r.id, r.key, r.bucket, r.priority) for r in ordered]


adds = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["lintian-fixes", "fresh"]),
        st.sampled_from([None, "", "cs1"]),
        st.sampled_from(BUCKETS),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    ),
    min_size=1,
    max_size=40,
)


@given(adds)
def test_queue_simulation_agrees_with_a_plain_reference(steps: list[Any]) -> None:
    queue, reference = QueueSimulator(), ReferenceQueue()
    for number, (codebase, campaign, change_set, bucket, offset) in enumerate(steps, start=1):
        was_empty = not queue.rows()
        row_id, _, priority = queue.add(
            codebase=codebase,
            campaign=campaign,
            command="cmd",
            offset=offset,
            bucket=bucket,
            change_set=change_set,
        )
        reference.add((codebase, campaign, change_set or ""), bucket, offset)
        if was_empty:
            assert priority == math.trunc(offset)
        rows = queue.rows()
        got = [
            (r.id, (r.codebase, r.suite, r.change_set or ""), r.bucket, r.priority) for r in rows
        ]
        assert got == reference.ordered()
        # one row per (codebase, campaign, coalesce(change_set, ''))
        assert len({key for _, key, _, _ in got}) == len(got)
        # workers' order: bucket, priority, id
        sort_keys = [(BUCKET_RANK[r.bucket], r.priority, r.id) for r in rows]
        assert sort_keys == sorted(sort_keys)
        # the sequence advances once per add attempt: no id beyond it, new rows take it
        assert max(r.id for r in rows) <= number
        assert row_id <= number


@given(adds)
def test_queue_ids_strictly_increase_per_add_attempt(steps: list[Any]) -> None:
    queue = QueueSimulator()
    seen: set[tuple[str, str, str]] = set()
    for number, (codebase, campaign, change_set, bucket, offset) in enumerate(steps, start=1):
        key = (codebase, campaign, change_set or "")
        row_id, _, _ = queue.add(
            codebase=codebase,
            campaign=campaign,
            command="cmd",
            offset=offset,
            bucket=bucket,
            change_set=change_set,
        )
        if key not in seen:
            assert row_id == number  # a new row takes this attempt's id
            seen.add(key)
        else:
            assert row_id < number  # an update keeps the row's old id


# ---------------------------------------------------------------- random datasets

CONTEXTS = [None, "", "ctx1", "ctx2"]
POLICIES = (
    NamedPublishPolicy("empty", ()),
    NamedPublishPolicy("propose", (PolicyEntry("main", "propose"),)),
    NamedPublishPolicy("push-bts", (PolicyEntry("main", "push"), PolicyEntry("main", "bts"))),
    NamedPublishPolicy("skip", (PolicyEntry("main", "skip"),)),
)
RESULT_CODES = [
    "success",
    "build-failed",
    "worker-failure",
    "install-deps-unsatisfied-dependencies",
]
DEPS = [
    [{"name": "libfoo"}],
    [{"name": "libmissing"}, {"name": "libbar", "version": [">=", "2.0"]}],
]


@st.composite
def runs_for(draw: st.DrawFn, codebase: str, campaign: str) -> list[Run]:
    runs = []
    for index in range(draw(st.integers(0, 5))):
        age_us = draw(
            st.one_of(
                st.integers(0, 5 * US_PER_DAY),
                st.sampled_from([US_PER_DAY - 1, US_PER_DAY, US_PER_DAY + 1]),
            )
        )
        code = draw(st.sampled_from(RESULT_CODES))
        details: Any = None
        if code == "install-deps-unsatisfied-dependencies":
            details = draw(st.sampled_from([None, {}, {"relations": []}, {"relations": DEPS}]))
        start = AS_OF_US - age_us
        runs.append(
            Run(
                id=f"{codebase}-{campaign}-{index}",
                codebase=codebase,
                suite=campaign,
                result_code=code,
                start_us=start,
                finish_us=start + draw(st.integers(0, 100_000_000)),
                failure_transient=draw(st.sampled_from([None, True, False])),
                instigated_context=draw(st.sampled_from(CONTEXTS)),
                context=draw(st.sampled_from(CONTEXTS)),
                failure_details=details,
            )
        )
    return runs


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    names = ["a", "b", "c", "d"]
    values = [draw(st.one_of(st.none(), st.integers(0, 1000))) for _ in names]
    values[0] = draw(st.integers(1, 1000))  # some value > 0: no division by zero
    codebases = tuple(Codebase(n, None, v) for n, v in zip(names, values, strict=True))
    candidates: list[Candidate] = []
    runs: list[Run] = []
    for codebase in names:
        for campaign in ("lintian-fixes", "fresh", "other"):
            runs.extend(draw(runs_for(codebase, campaign)))
            if campaign == "other" or (candidates and not draw(st.booleans())):
                continue  # the first pair is always a candidate
            candidates.append(
                Candidate(
                    id=len(candidates) + 1,
                    codebase=codebase,
                    suite=campaign,
                    command="cmd",
                    context=draw(st.sampled_from(CONTEXTS)),
                    value=draw(st.one_of(st.none(), st.integers(1, 500))),
                    success_chance=draw(st.one_of(st.none(), st.floats(0, 1))),
                    publish_policy=draw(st.sampled_from([p.name for p in POLICIES])),
                )
            )
    return Dataset(
        as_of=AS_OF,
        codebases=codebases,
        candidates=tuple(candidates),
        policies=POLICIES,
        runs=tuple(runs),
        debian_versions=(DebianVersion("libfoo", "1.0"), DebianVersion("libbar", "2.0")),
    )


def counted_runs(dataset: Dataset, codebase: str, campaign: str) -> int:
    """Spec §5's loop, counted directly: non-transient, worker failures under a day."""
    return sum(
        1
        for run in dataset.runs
        if (run.codebase, run.suite) == (codebase, campaign)
        and run.failure_transient is not True
        and not (
            run.result_code == "worker-failure"
            and timedelta(microseconds=AS_OF_US - (run.start_us or 0)).days > 0
        )
    )


@settings(max_examples=150, deadline=None)
@given(datasets())
def test_probability_has_the_formulas_shape_and_bounds(dataset: Dataset) -> None:
    schedule = get_engine("legacy:memory").schedule(dataset)
    assert schedule.decisions
    for d in schedule.decisions:
        if d.error is not None:
            continue
        p, t = d.success_probability, d.total_previous_runs
        assert p is not None and t is not None
        assert 0.0 < p <= 1.0
        assert t == counted_runs(dataset, d.codebase, d.campaign)
        if t == 0:
            assert p == 1.0  # no runs: multiplier reset, 1/1
            continue
        shapes = [(s * 10 + 1) / (t * 10 + 1) * m for s in range(t + 1) for m in MULTIPLIERS]
        assert p in shapes
        if d.context is not None:  # ×0.5 only without context
            assert p in [(s * 10 + 1) / (t * 10 + 1) * m for s in range(t + 1) for m in (1.0, 0.1)]


@settings(max_examples=150, deadline=None)
@given(datasets())
def test_offset_recomputed_from_the_decision_is_bit_for_bit(dataset: Dataset) -> None:
    schedule = get_engine("legacy:memory").schedule(dataset)
    for d in schedule.decisions:
        if d.error is not None:
            continue
        assert d.estimated_duration_us is not None and d.success_probability is not None
        duration = timedelta(microseconds=d.estimated_duration_us)
        cost = 20000.0 + (1000.0 * duration.total_seconds() + duration.microseconds / 1000.0)
        ncv = 0.5 if d.normalized_codebase_value is None else d.normalized_codebase_value
        ncv = max(0.1, ncv)
        if d.value is None:
            cv = 1.0
        elif d.total_previous_runs == 0:
            cv = d.value + 100.0
        else:
            cv = d.value
        offset = cost / ((ncv * d.success_probability) * cv)
        assert d.offset is not None
        assert math.copysign(1.0, d.offset) == 1.0
        assert d.offset.hex() == offset.hex(), (d.key, d.offset, offset)


# ---------------------------------------------------------------- pg interval


def c_trunc_div(a: int, b: int) -> int:
    """C's integer division: the quotient truncated toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def double(x: Fraction) -> Fraction:
    """What a C double holds after an operation whose exact result is ``x``."""
    return Fraction(float(x))


def c_int(x: Fraction) -> int:
    """C's (int) cast: truncation toward zero."""
    return math.trunc(x)


def rint(x: Fraction) -> int:
    """C's rint() in the default mode: nearest, ties to even."""
    floor = math.floor(x)
    rest = x - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        return floor + 1
    return floor


def reference_avg_us(spans: list[int]) -> int | None:
    """PostgreSQL 15 AVG(interval) of ``finish - start`` spans, step by step."""
    if not spans:
        return None
    day_sum = time_sum = 0
    for span in spans:  # timestamp_mi + interval_justify_hours (TMODULO)
        days = c_trunc_div(span, US_PER_DAY)
        day_sum += days
        time_sum += span - days * US_PER_DAY
    n = Fraction(len(spans))
    day_quotient = double(Fraction(day_sum) / n)
    result_day = c_int(day_quotient)
    seconds = double(double(day_quotient - result_day) * 86400)
    sec_remainder = double(Fraction(rint(double(seconds * 1_000_000)), 1_000_000))  # TSROUND
    if abs(sec_remainder) >= 86400:
        whole = c_int(double(sec_remainder / 86400))
        result_day += whole
        sec_remainder = double(sec_remainder - whole * 86400)
    time_part = double(double(Fraction(time_sum)) / n)
    result_time = rint(double(time_part + double(sec_remainder * 1_000_000)))
    return result_day * US_PER_DAY + result_time


spans = st.lists(
    st.one_of(
        st.integers(-3 * US_PER_DAY, 3 * US_PER_DAY),
        st.integers(0, 120_000_000),
        st.builds(lambda d, us: d * US_PER_DAY + us, st.integers(0, 3), st.sampled_from([0, 1, 3])),
    ),
    max_size=60,
)


@settings(max_examples=500)
@given(spans)
def test_pg_interval_average_equals_slow_reference(values: list[int]) -> None:
    got = average_interval_us((span, 0) for span in values)
    assert got == reference_avg_us(values)


def test_pg_interval_reference_on_the_hand_worked_case() -> None:
    """The rule scenario's numbers: one 24 h span and six of 10 s."""
    values = [US_PER_DAY] + [10_000_000] * 6
    assert reference_avg_us(values) == 12_351_428_572
    assert average_interval_us((span, 0) for span in values) == 12_351_428_572
    assert round(Fraction(sum(values), len(values))) == 12_351_428_571  # the exact mean differs


@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(BUCKET_RANK)), st.integers(-5, 5), st.integers(1, 10**6)),
        unique_by=lambda t: t[2],
        max_size=40,
    )
)
def test_sorted_queue_is_bucket_priority_id_order(rows: list[tuple[str, int, int]]) -> None:
    items = [QueueItem(i, "c", "s", "cmd", bucket=b, priority=p) for b, p, i in rows]
    assert sorted_queue(items) == sorted(items, key=QueueItem.sort_key)


def test_queue_rows_beyond_bigint_still_come_in_workers_order() -> None:
    """A hand-made table whose priorities numpy cannot hold is sorted as the model sorts."""
    items = [
        QueueItem(1, "a", "s", "cmd", bucket="default", priority=2**70),
        QueueItem(2, "b", "s", "cmd", bucket="default", priority=-5),
        QueueItem(3, "c", "s", "cmd", bucket=BUCKETS[0], priority=2**70),
    ]
    assert QueueSimulator(items).rows() == sorted_queue(items)
    assert [q.id for q in QueueSimulator(items).rows()][-2:] == [2, 1]
