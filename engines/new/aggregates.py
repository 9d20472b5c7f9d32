"""Set-based data access: every per-(codebase, campaign) figure the engine needs, at once.

The legacy asks its database a few questions *per candidate*; at 100,000
candidates that is the whole cost. The new engine computes the same answers
for the whole candidate set in one pass:

* from a :class:`~engines.model.Dataset` (a snapshot): runs are turned into
  columns, grouped by (codebase, campaign) with one sort, and reduced with
  numpy (:func:`aggregates_from_dataset`);
* from a live PostgreSQL database: a handful of ``GROUP BY`` queries over
  the whole ``run`` table in one READ ONLY REPEATABLE READ transaction, never
  a query per candidate (:mod:`engines.new.aggregates_sql`).

Both produce the same :class:`Aggregates`. The legacy's per-run loop is kept
exact where it matters for parity: the mean duration is a float sum in
``start_time DESC`` order (a segmented *sequential* sum, since numpy's
pairwise summation would change the last bit) turned into a ``timedelta``,
and the AVG fallbacks follow PostgreSQL's interval AVG
(:mod:`engines.legacy.pg_interval`). Runs whose dependency relations must be
evaluated, a small minority, are handed to Python as :class:`DepsRun`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from engines.legacy.pg_interval import IntervalSum
from engines.model import US_PER_DAY, Dataset, Run, timedelta_to_us
from engines.new.config import EngineConfig

SUCCESS = "success"
WORKER_FAILURE = "worker-failure"
DEPS_UNSATISFIED = "install-deps-unsatisfied-dependencies"
INT64_MIN = np.iinfo(np.int64).min


class DepsRun(NamedTuple):
    """A counted install-deps failure with ``failure_details``: decided in Python.

    A NamedTuple: a bulk run builds one per install-deps failure (100,000s).
    """

    instigated_context: str | None
    context: str | None
    #: The decoded JSON value, or ``None`` when only ``text`` was read (decoded on demand).
    failure_details_value: Any
    #: Decay weight for the plan's estimator; 0.0 when the run is not relevant there.
    weight: float
    #: The JSON text as stored (snapshot Parquet, database), a cheap cache key.
    text: str | None = None

    @property
    def failure_details(self) -> Any:
        if self.failure_details_value is None and self.text is not None:
            return orjson.loads(self.text)
        return self.failure_details_value


@dataclass
class Aggregates:
    """Per-group figures; lists are indexed by ``group_index[(codebase, campaign)]``.

    ``total``/``successes``/``mean_us`` follow the legacy's run loop (runs with
    ``failure_transient`` true dropped, worker failures at least
    ``ignore_worker_failures_older_than_days`` old ignored). ``weight_sum`` and
    friends are the plan's decayed figures (window, transient result codes).
    """

    group_index: dict[tuple[str, str], int] = field(default_factory=dict)
    total: list[int] = field(default_factory=list)
    successes: list[int] = field(default_factory=list)
    #: Counted runs with both timestamps.
    timed: list[int] = field(default_factory=list)
    #: Float sum of the timed counted runs' seconds, added newest first (legacy order).
    seconds_sum: list[float] = field(default_factory=list)
    #: What makes the legacy raise on this group's runs (NULL timestamps), if anything.
    legacy_time_problem: list[str | None] = field(default_factory=list)
    deps_runs: dict[int, list[DepsRun]] = field(default_factory=dict)
    #: (group, context) pairs where a counted, non-deps run had that context,
    #: encoded as ``group * len(context_index) + context_index[context]``.
    context_index: dict[str, int] = field(default_factory=dict)
    context_hits: set[int] = field(default_factory=set)
    _means: dict[int, int | None] = field(default_factory=dict)
    #: Plan figures: Σ weights and Σ weights of successes over relevant runs.
    weight_sum: list[float] = field(default_factory=list)
    weighted_successes: list[float] = field(default_factory=list)
    relevant: list[int] = field(default_factory=list)
    median_us: list[int | None] = field(default_factory=list)
    median_n: list[int] = field(default_factory=list)
    #: PostgreSQL ``AVG(finish_time - start_time)`` per codebase / campaign (µs).
    codebase_avg_us: Mapping[str, int | None] = field(default_factory=dict)
    campaign_avg_us: Mapping[str, int | None] = field(default_factory=dict)
    codebase_median_us: Mapping[str, int | None] = field(default_factory=dict)
    codebase_median_n: Mapping[str, int] = field(default_factory=dict)
    debian_versions: Mapping[str, tuple[str, ...]] | None = None
    #: Where the figures came from ("dataset" or "database"), for reasons.
    origin: str = "dataset"

    def group(self, codebase: str, campaign: str) -> int | None:
        return self.group_index.get((codebase, campaign))

    def mean_us(self, group: int) -> int | None:
        """The legacy's mean duration of the group's timed counted runs (computed on demand)."""
        mean = self._means.get(group, -1)
        if mean == -1:
            count = self.timed[group]
            mean = legacy_mean_us(self.seconds_sum[group], count) if count else None
            self._means[group] = mean
        return mean

    def context_hit(self, group: int, context: str) -> bool:
        index = self.context_index.get(context)
        return index is not None and group * len(self.context_index) + index in self.context_hits

    def set_context_hits(self, pairs: Iterable[tuple[int, str]]) -> None:
        """Record the (group, context) hits (the database path)."""
        pairs = list(pairs)
        self.context_index = {c: i for i, c in enumerate(sorted({c for _, c in pairs}))}
        width = len(self.context_index)
        self.context_hits = {g * width + self.context_index[c] for g, c in pairs}


def legacy_mean_us(seconds_sum: float, count: int) -> int:
    """The legacy's ``timedelta(seconds=sum / n)``, rounded to whole microseconds."""
    return timedelta_to_us(timedelta(seconds=seconds_sum / count))


#: Unit roundoff of IEEE doubles.
_U = 2.0**-53


def mean_if_unambiguous(span_sum_us: int, span_abs_us: int, count: int) -> int | None:
    """The legacy's rounded mean, when its float summation order cannot matter.

    The legacy adds ``span / 1e6`` newest first in floats, divides by the count
    and rounds to a microsecond. Its result differs from the exact mean
    ``span_sum / count`` by at most ~``(count + 5) · u · Σ|span| / count``
    microseconds (conversion, summation, division, ``timedelta``). When the
    exact mean is farther than that (times a safety factor of 4) from a half
    microsecond, both round to the same integer, whatever the order: return
    it. Otherwise (exact ties, which happen for about 1 group in ``count`` of
    even size) return ``None``: the ordered float sum must decide.
    """
    bound = 4.0 * (count + 5) * _U * span_abs_us / count + 1e-9
    twice = 2 * span_sum_us
    nearest = (twice + count) // (2 * count)  # round half up, exact integers
    # distance of the exact mean from the half-way point below/above `nearest`
    distance = abs(twice - (2 * nearest - 1) * count) / (2 * count)
    distance = min(distance, abs((2 * nearest + 1) * count - twice) / (2 * count))
    if distance <= bound:
        return None
    return nearest


def segmented_sequential_sum(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Σ values per group, added left to right exactly as a Python loop would.

    ``values`` must be ordered by group (contiguous groups). numpy's reductions
    sum pairwise, which changes the last bit of a float sum; here position k of
    every group is added in step k, vectorised across groups.
    """
    sums = np.zeros(n_groups, dtype=np.float64)
    if len(values) == 0:
        return sums
    counts = np.bincount(group, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    order = np.argsort(-counts, kind="stable")
    sorted_counts = counts[order]
    sorted_starts = starts[order]
    longest = int(sorted_counts[0]) if len(sorted_counts) else 0
    active = len(order)
    acc = np.zeros(len(order), dtype=np.float64)
    for k in range(longest):
        while active and sorted_counts[active - 1] <= k:
            active -= 1
        acc[:active] += values[sorted_starts[:active] + k]
    sums[order] = acc
    return sums


def _average_us(days: int, time: int, count: int) -> int | None:
    total = IntervalSum()
    total.days, total.time, total.count = days, time, count
    return total.average_us()


def _interval_fields(span: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``finish - start`` as PostgreSQL's (days, µs) interval fields (C truncation)."""
    days = np.where(span >= 0, span // US_PER_DAY, -((-span) // US_PER_DAY))
    return days, span - days * US_PER_DAY


def _unique_ints(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hash path is many times slower here)."""
    if len(values) == 0:
        return values
    ordered = np.sort(values)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _codes(array: pa.Array) -> tuple[np.ndarray, list[str]]:
    """A string column → (codes, dictionary); NULL → -1."""
    encoded = array.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


def _int_column(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    nulls = array.is_null().to_numpy(zero_copy_only=False)
    return array.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), nulls


@dataclass(frozen=True)
class RunColumns:
    """The run table as columns: what the vectorised aggregation reads.

    Built from Run tuples (:meth:`from_runs`) or straight from a Parquet
    run table (:meth:`from_arrow`), which skips building millions of Python
    objects. ``details`` gives one row's ``failure_details``, decoded only
    for the rows that need it (install-deps failures).
    """

    codebase: pa.Array
    suite: pa.Array
    result_code: pa.Array
    start: pa.Array
    finish: pa.Array
    transient: np.ndarray
    instigated_context: pa.Array
    context: pa.Array
    #: Row indices → their failure_details: (decoded values or None, JSON texts or None).
    details: Any  # Callable[[list[int]], tuple[list[Any], list[str | None]]]

    def __len__(self) -> int:
        return len(self.transient)

    @classmethod
    def from_runs(cls, runs: Sequence[Run]) -> RunColumns:
        def strings(i: int) -> pa.Array:
            return pa.array(list(map(itemgetter(i), runs)), pa.string())

        def ints(i: int) -> pa.Array:
            return pa.array(list(map(itemgetter(i), runs)), pa.int64())

        transient = pa.array(list(map(itemgetter(6), runs)), pa.bool_())
        return cls(
            codebase=strings(1),
            suite=strings(2),
            result_code=strings(3),
            start=ints(4),
            finish=ints(5),
            transient=transient.fill_null(False).to_numpy(zero_copy_only=False),
            instigated_context=strings(7),
            context=strings(8),
            details=lambda rows: ([runs[i].failure_details for i in rows], [None] * len(rows)),
        )

    @classmethod
    def from_arrow(cls, table: pa.Table) -> RunColumns:
        """From a run table in the snapshot's Parquet layout (``harness.run_table``)."""
        details = table.column("failure_details").combine_chunks()

        def decode(rows: list[int]) -> tuple[list[Any], list[str | None]]:
            texts = details.take(pa.array(rows, pa.int64())).to_pylist()
            return [None] * len(rows), texts

        def column(name: str) -> pa.Array:
            return table.column(name).combine_chunks()

        return cls(
            codebase=column("codebase"),
            suite=column("suite"),
            result_code=column("result_code"),
            start=column("start_time").cast(pa.int64()),
            finish=column("finish_time").cast(pa.int64()),
            transient=column("failure_transient").fill_null(False).to_numpy(zero_copy_only=False),
            instigated_context=column("instigated_context"),
            context=column("context"),
            details=decode,
        )

    @classmethod
    def read_parquet(cls, path: Any) -> RunColumns:
        import pyarrow.parquet as pq

        return cls.from_arrow(pq.read_table(path))


def aggregates_from_runs(
    runs: Sequence[Run],
    config: EngineConfig,
    as_of_us: int,
    contexts: Iterable[str],
    debian_versions: Mapping[str, tuple[str, ...]] | None,
) -> Aggregates:
    """Compute every group figure from run rows, vectorised (see the module docstring)."""
    if not runs:
        return Aggregates(debian_versions=debian_versions, origin="dataset")
    return aggregates_from_columns(
        RunColumns.from_runs(runs), config, as_of_us, contexts, debian_versions
    )


def aggregates_from_columns(
    columns: RunColumns,
    config: EngineConfig,
    as_of_us: int,
    contexts: Iterable[str],
    debian_versions: Mapping[str, tuple[str, ...]] | None,
) -> Aggregates:
    """The vectorised aggregation proper: one sort, then numpy reductions per group."""
    agg = Aggregates(debian_versions=debian_versions, origin="dataset")
    est = config.success_estimation
    keep = np.flatnonzero(~columns.transient)
    if len(keep) == 0:
        return agg
    take = pa.array(keep) if len(keep) < len(columns) else None

    def kept(array: pa.Array) -> pa.Array:
        return array if take is None else array.take(take)

    cb, cb_names = _codes(kept(columns.codebase))
    suite, suite_names = _codes(kept(columns.suite))
    code, code_names = _codes(kept(columns.result_code))
    start, start_null = _int_column(kept(columns.start))
    finish, finish_null = _int_column(kept(columns.finish))
    n_suites = max(len(suite_names), 1)
    key = cb * n_suites + suite
    # newest first, NULL start times first (PostgreSQL's DESC); ties keep the input order
    newest_first = np.where(start_null, INT64_MIN, -start)
    by_start = np.argsort(newest_first, kind="stable")
    order = by_start[np.argsort(key[by_start], kind="stable")]
    key_s = key[order]
    change = key_s[1:] != key_s[:-1]
    gid = np.concatenate(([0], np.cumsum(change))).astype(np.int64)
    n_groups = int(gid[-1]) + 1
    first = np.flatnonzero(np.concatenate(([True], change)))
    group_keys = key_s[first]
    agg.group_index = {
        (cb_names[int(k) // n_suites], suite_names[int(k) % n_suites]): g
        for g, k in enumerate(group_keys.tolist())
    }
    code_id = {name: i for i, name in enumerate(code_names)}
    code_s = code[order]
    start_s, snull_s = start[order], start_null[order]
    finish_s, fnull_s = finish[order], finish_null[order]
    age = as_of_us - start_s

    # --- the legacy's run loop
    threshold = round(est.ignore_worker_failures_older_than_days * US_PER_DAY)
    wf = code_s == code_id.get(WORKER_FAILURE, -2)
    wf_null = wf & snull_s
    counted = ~(wf & (snull_s | (age >= threshold)))
    timed = counted & ~snull_s & ~fnull_s
    untimed = counted & ~timed
    agg.total = np.bincount(gid[counted], minlength=n_groups).tolist()
    success = code_s == code_id.get(SUCCESS, -2)
    agg.successes = np.bincount(gid[counted & success], minlength=n_groups).tolist()
    timed_n = np.bincount(gid[timed], minlength=n_groups)
    agg.timed = timed_n.tolist()
    seconds = (finish_s[timed] - start_s[timed]).astype(np.float64) / 1e6
    sums = segmented_sequential_sum(seconds, gid[timed], n_groups)
    agg.seconds_sum = sums.tolist()
    problems: list[str | None] = [None] * n_groups
    for g in _unique_ints(gid[untimed]).tolist():
        problems[g] = "AttributeError: a counted run has a NULL start or finish time"
    for g in _unique_ints(gid[wf_null]).tolist():
        problems[g] = "TypeError: a worker failure has a NULL start time"
    agg.legacy_time_problem = problems

    # --- the plan's relevant runs and decay weights
    transient_codes = {code_id[c] for c in est.transient_result_codes if c in code_id}
    relevant = counted & ~snull_s
    if transient_codes:
        relevant &= ~np.isin(code_s, list(transient_codes))
    if est.historical_data_window_days is not None:
        relevant &= age <= round(est.historical_data_window_days * US_PER_DAY)
    if est.method == "decayed":
        weight = np.where(
            relevant, np.power(0.5, np.maximum(age, 0) / US_PER_DAY / est.half_life_days), 0.0
        )
    else:
        weight = relevant.astype(np.float64)  # unused by the legacy formula

    # --- install-deps failures: Python decides them (relations, Debian versions)
    deps = counted & (code_s == code_id.get(DEPS_UNSATISFIED, -2))
    deps_positions = np.flatnonzero(deps)
    is_deps_run = np.zeros(len(order), dtype=bool)
    if len(deps_positions):
        originals = keep[order[deps_positions]]
        ictx_all = kept(columns.instigated_context).take(pa.array(order[deps_positions]))
        ctx_all = kept(columns.context).take(pa.array(order[deps_positions]))
        ictx_list, ctx_list = ictx_all.to_pylist(), ctx_all.to_pylist()
        values, texts = columns.details(originals.tolist())
        for j, pos in enumerate(deps_positions.tolist()):
            value, text = values[j], texts[j]
            if value is None and text is None:
                continue
            is_deps_run[pos] = True
            agg.deps_runs.setdefault(int(gid[pos]), []).append(
                DepsRun(ictx_list[j], ctx_list[j], value, float(weight[pos]), text)
            )

    plain_relevant = relevant & ~is_deps_run
    agg.relevant = np.bincount(gid[relevant], minlength=n_groups).tolist()
    agg.weight_sum = np.bincount(
        gid[plain_relevant], weights=weight[plain_relevant], minlength=n_groups
    ).tolist()
    won = plain_relevant & success
    agg.weighted_successes = np.bincount(gid[won], weights=weight[won], minlength=n_groups).tolist()

    # --- same-context runs (counted, not decided in Python)
    wanted = sorted({c for c in contexts if c})
    if wanted:
        value_set = pa.array(wanted, pa.string())
        matchable = counted & ~is_deps_run
        hits: set[int] = set()
        width = len(wanted)
        for values in (kept(columns.instigated_context), kept(columns.context)):
            found = pc.index_in(values, value_set=value_set).fill_null(-1)
            index = found.to_numpy(zero_copy_only=False)[order]
            mask = matchable & (index >= 0)
            hits.update(_unique_ints(gid[mask] * width + index[mask]).tolist())
        agg.context_index = {c: i for i, c in enumerate(wanted)}
        agg.context_hits = hits

    # --- medians (the plan's DurationEstimator): sorted[n // 2] of relevant timed runs
    span = finish_s - start_s
    cb_s = key_s // n_suites
    if config.duration_estimation.method == "median":
        med_mask = relevant & timed
        agg.median_us, agg.median_n = _medians(gid[med_mask], span[med_mask], n_groups)
        cb_medians, cb_counts = _medians(cb_s[med_mask], span[med_mask], len(cb_names))
        agg.codebase_median_us = {cb_names[i]: m for i, m in enumerate(cb_medians) if cb_counts[i]}
        agg.codebase_median_n = {cb_names[i]: c for i, c in enumerate(cb_counts) if c}
    else:
        agg.median_us, agg.median_n = [None] * n_groups, [0] * n_groups
        # --- PostgreSQL AVG(finish_time - start_time) per codebase and per campaign
        both = ~snull_s & ~fnull_s
        days, time = _interval_fields(np.where(both, span, 0))
        agg.codebase_avg_us = _grouped_average(cb_s, days, time, both, cb_names)
        suite_s = key_s % n_suites
        agg.campaign_avg_us = _grouped_average(suite_s, days, time, both, suite_names)
    return agg


def _grouped_average(
    group: np.ndarray, days: np.ndarray, time: np.ndarray, mask: np.ndarray, names: list[str]
) -> dict[str, int | None]:
    """Exact integer field sums per group (sorted by group), then PostgreSQL's AVG."""
    order = np.argsort(group, kind="stable")
    g = group[order]
    starts = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
    day_sums = np.add.reduceat(days[order] * mask[order], starts).tolist()
    time_sums = np.add.reduceat(time[order] * mask[order], starts).tolist()
    counts = np.add.reduceat(mask[order].astype(np.int64), starts).tolist()
    out: dict[str, int | None] = {}
    for gi, d, t, c in zip(g[starts].tolist(), day_sums, time_sums, counts, strict=True):
        out[names[gi]] = _average_us(int(d), int(t), int(c))
    return out


def _medians(
    group: np.ndarray, values: np.ndarray, n_groups: int
) -> tuple[list[int | None], list[int]]:
    """sorted(values)[n // 2] per group (the plan's median index), or None."""
    counts = np.bincount(group, minlength=n_groups)
    if len(values) == 0:
        return [None] * n_groups, counts.tolist()
    order = np.lexsort((values, group))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    picked = values[order][np.minimum(starts + counts // 2, len(values) - 1)]
    return [
        int(v) if c else None for v, c in zip(picked.tolist(), counts.tolist(), strict=True)
    ], counts.tolist()


def aggregates_from_dataset(
    dataset: Dataset, config: EngineConfig, contexts: Iterable[str]
) -> Aggregates:
    return aggregates_from_runs(
        dataset.runs, config, dataset.as_of_us, contexts, dataset.debian_versions_by_source
    )
