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
(:mod:`engines.legacy.pg_interval`). Install-deps failures depend on their
dependency relations: given their verdicts (by run-table row from a
snapshot's worker, or by ``failure_details`` text), they are decided per group
on arrays (:meth:`ContextRuns.settle_deps`); otherwise they are handed to the
engine as :class:`DepsRun` lists, decided as it goes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import orjson
import pyarrow as pa

from engines.grouping import group_order, newest_first, run_starts
from engines.legacy.pg_interval import codebase_and_campaign_averages
from engines.model import US_PER_DAY, Dataset, Run, timedelta_to_us
from engines.new.config import EngineConfig

SUCCESS = "success"
WORKER_FAILURE = "worker-failure"
DEPS_UNSATISFIED = "install-deps-unsatisfied-dependencies"
#: A row's verdict code where it has none (no install-deps failure details, or
#: its verdict failed: the engine then meets the failure itself).
UNKNOWN_VERDICT = -1

#: failure_details text → (satisfied now, what the legacy would raise).
TextVerdicts = Mapping[str, tuple[bool, str | None]]


@dataclass(frozen=True)
class RowVerdicts:
    """Install-deps verdicts by run-table row: ``outcomes[codes[row]]``, or
    :data:`UNKNOWN_VERDICT`. Only a handful of outcomes are distinct."""

    codes: np.ndarray
    outcomes: list[tuple[bool, str | None]]

    def by_text(self, details: pa.ChunkedArray | pa.Array) -> dict[str, tuple[bool, str | None]]:
        """The same verdicts by text, given the run table's ``failure_details``
        (for a caller that filters the table, which renumbers its rows)."""
        rows = np.flatnonzero(self.codes != UNKNOWN_VERDICT)
        texts = details.take(pa.array(rows, pa.int64())).to_pylist()
        outcomes = self.outcomes
        return dict(zip(texts, map(outcomes.__getitem__, self.codes[rows].tolist()), strict=True))


def verdict_codes(
    texts: Sequence[str | None], verdicts: TextVerdicts
) -> tuple[np.ndarray, list[tuple[bool, str | None]]]:
    """Each text's code into the distinct outcomes its verdicts come to, and
    those outcomes; :data:`UNKNOWN_VERDICT` for a text without a verdict."""
    outcomes: list[tuple[bool, str | None]] = []
    index: dict[tuple[bool, str | None], int] = {}

    def code(text: str | None) -> int:
        verdict = None if text is None else verdicts.get(text)
        if verdict is None:
            return UNKNOWN_VERDICT
        found = index.get(verdict)
        if found is None:
            found = index[verdict] = len(outcomes)
            outcomes.append(verdict)
        return found

    return np.fromiter(map(code, texts), dtype=np.int32, count=len(texts)), outcomes


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


class DepsOutcome(NamedTuple):
    """What one group's install-deps failures add to its success estimate."""

    satisfied_runs: int
    satisfied_weight: float
    other_weight: float
    #: An unsatisfied failure had the candidate's context (decided per candidate).
    same_context: bool
    legacy_failure: str | None


NO_DEPS = DepsOutcome(0, 0.0, 0.0, False, None)


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
    #: Worker failures skipped for their age (the legacy's "ignored" runs).
    ignored: list[int] = field(default_factory=list)
    #: Counted runs with both timestamps.
    timed: list[int] = field(default_factory=list)
    #: Float sum of the timed counted runs' seconds, added newest first (legacy order).
    seconds_sum: list[float] = field(default_factory=list)
    #: What makes the legacy raise on this group's runs (NULL timestamps), if anything.
    legacy_time_problem: list[str | None] = field(default_factory=list)
    deps_runs: dict[int, list[DepsRun]] = field(default_factory=dict)
    #: Groups whose install-deps failures were decided ahead, all at once
    #: (:meth:`ContextRuns.settle_deps` on a snapshot, ``fold_deps`` in
    #: :mod:`engines.new.success` on a live database): their outcome, the
    #: contexts of the unsatisfied ones being in ``context_hits``. A group is
    #: here or in ``deps_runs``, never both.
    deps_outcomes: dict[int, DepsOutcome] = field(default_factory=dict)
    #: (group, context) pairs where a counted, non-deps run had that context,
    #: encoded as ``group * len(context_index) + context_index[context]``, sorted.
    context_index: dict[str, int] = field(default_factory=dict)
    context_hits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _means: dict[int, int | None] = field(default_factory=dict)
    #: Plan figures: Σ weights and Σ weights of successes over relevant runs.
    weight_sum: list[float] = field(default_factory=list)
    weighted_successes: list[float] = field(default_factory=list)
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

    @property
    def known_means(self) -> Mapping[int, int | None]:
        """The means :meth:`mean_us` has at hand (worked out in bulk, or asked for before)."""
        return self._means

    def context_hit(self, group: int, context: str) -> bool:
        index = self.context_index.get(context)
        if index is None:
            return False
        key = group * len(self.context_index) + index
        hits = self.context_hits
        at = int(np.searchsorted(hits, key))
        return at < len(hits) and int(hits[at]) == key

    def set_context_hits(self, pairs: Iterable[tuple[int, str]]) -> None:
        """Record the (group, context) hits (the database path)."""
        pairs = list(pairs)
        self.context_index = {c: i for i, c in enumerate(sorted({c for _, c in pairs}))}
        width = len(self.context_index)
        keys = [g * width + self.context_index[c] for g, c in pairs]
        self.context_hits = _unique_ints(np.array(keys, dtype=np.int64))


def legacy_mean_us(seconds_sum: float, count: int) -> int:
    """The legacy's ``timedelta(seconds=sum / n)``, rounded to whole microseconds."""
    return timedelta_to_us(timedelta(seconds=seconds_sum / count))


def legacy_means_us(seconds_sums: np.ndarray, counts: np.ndarray) -> list[int | None]:
    """:func:`legacy_mean_us` of many groups at once (``counts`` > 0).

    ``timedelta`` splits float seconds with ``modf`` into whole seconds, whole
    microseconds and a leftover, which it rounds half away from zero, or to
    the even total when exactly half: the same steps on arrays. Means too
    large for that to be obviously exact go through :func:`legacy_mean_us`
    itself; ``None`` where even that fails (no timedelta holds them), so that
    the failure surfaces on the candidate, as the legacy's would.
    """
    mean = seconds_sums / counts
    seconds_frac, seconds = np.modf(mean)
    leftover, micros = np.modf(seconds_frac * 1e6)
    total = seconds.astype(np.int64) * 1_000_000 + micros.astype(np.int64)
    away = np.sign(leftover) * np.floor(np.abs(leftover) + 0.5)
    odd = np.mod(total, 2)
    halfway = (leftover + odd) * 0.5
    to_even = 2.0 * np.sign(halfway) * np.floor(np.abs(halfway) + 0.5) - odd
    total += np.where(np.abs(leftover) == 0.5, to_even, away).astype(np.int64)
    means: list[int | None] = total.tolist()
    for i in np.flatnonzero(~(np.abs(mean) < 1e12)).tolist():
        try:
            means[i] = legacy_mean_us(float(seconds_sums[i]), int(counts[i]))
        except (OverflowError, ValueError):
            means[i] = None
    return means


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


def _unique_ints(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hash path is many times slower here)."""
    if len(values) == 0:
        return values
    ordered = np.sort(values)
    return ordered[run_starts(ordered)]


@dataclass(frozen=True)
class CodedStrings:
    """A string column as dictionary codes: ``names[codes[i]]``, code -1 for NULL.

    Grouping, filtering and matching then work on integers; the strings of
    two million runs are never built.
    """

    codes: np.ndarray
    names: list[str]

    @classmethod
    def from_arrow(cls, column: pa.Array | pa.ChunkedArray) -> CodedStrings:
        """From a string or dictionary column, in one chunk or many."""
        if isinstance(column, pa.ChunkedArray):
            if pa.types.is_dictionary(column.type):
                # chunks read from Parquet row groups each have their own dictionary
                column = pa.table({"c": column}).unify_dictionaries().column("c")
            else:
                column = column.combine_chunks()
        if not pa.types.is_dictionary(column.type):
            column = column.dictionary_encode()
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        if not chunks:
            return cls(np.zeros(0, dtype=np.int64), [])
        parts = [
            (c.indices.fill_null(-1) if c.null_count else c.indices).to_numpy(zero_copy_only=False)
            for c in chunks
        ]
        codes = np.concatenate(parts)  # Arrow's own index width (int32): half the memory
        return cls(codes, chunks[0].dictionary.to_pylist())

    def lookup(self, table: Mapping[str, int]) -> np.ndarray:
        """Per row: ``table[name]``, or -1 for a name not in ``table`` and for NULL."""
        per_code = np.array([table.get(name, -1) for name in self.names] + [-1], dtype=np.int64)
        return per_code[self.codes]

    def strings(self, rows: np.ndarray) -> list[str | None]:
        names = self.names
        return [None if code < 0 else names[code] for code in self.codes[rows].tolist()]


def _int_column(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(values with NULL as 0, NULL mask)."""
    if not array.null_count:
        values = array.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        return values, np.zeros(len(values), dtype=bool)
    nulls = array.is_null().to_numpy(zero_copy_only=False)
    return array.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False), nulls


#: The run table's string columns the aggregation groups, filters or matches on.
CODED_COLUMNS = ("codebase", "suite", "result_code", "instigated_context", "context")
#: Columns the production schema declares NOT NULL.
NOT_NULL_COLUMNS = ("codebase", "suite", "result_code")
#: Every column the aggregation reads from a Parquet run table.
PARQUET_COLUMNS = (*CODED_COLUMNS, "start_time", "finish_time", "failure_transient")


@dataclass(frozen=True)
class RunColumns:
    """The run table as columns: what the vectorised aggregation reads.

    Built from Run tuples (:meth:`from_runs`) or straight from a Parquet
    run table (:meth:`read_parquet`), which reads the string columns as
    dictionary codes and skips building millions of Python objects.
    ``details`` gives the ``failure_details`` of some rows, decoded only for
    the rows that need it (install-deps failures).
    """

    codebase: CodedStrings
    suite: CodedStrings
    result_code: CodedStrings
    instigated_context: CodedStrings
    context: CodedStrings
    #: µs since the epoch, 0 where NULL, and the NULL masks.
    start: np.ndarray
    start_null: np.ndarray
    finish: np.ndarray
    finish_null: np.ndarray
    transient: np.ndarray
    #: Row indices → their failure_details: (decoded values or None, JSON texts or None).
    details: Any  # Callable[[list[int]], tuple[list[Any], list[str | None]]]
    #: Per row: whether failure_details is there (not NULL).
    has_details: np.ndarray

    def __len__(self) -> int:
        return len(self.transient)

    @classmethod
    def from_runs(cls, runs: Sequence[Run]) -> RunColumns:
        def strings(i: int) -> CodedStrings:
            return CodedStrings.from_arrow(pa.array(list(map(itemgetter(i), runs)), pa.string()))

        def ints(i: int) -> tuple[np.ndarray, np.ndarray]:
            return _int_column(pa.array(list(map(itemgetter(i), runs)), pa.int64()))

        transient = pa.array(list(map(itemgetter(6), runs)), pa.bool_())
        start, start_null = ints(4)
        finish, finish_null = ints(5)
        return cls(
            codebase=strings(1),
            suite=strings(2),
            result_code=strings(3),
            instigated_context=strings(7),
            context=strings(8),
            start=start,
            start_null=start_null,
            finish=finish,
            finish_null=finish_null,
            transient=transient.fill_null(False).to_numpy(zero_copy_only=False),
            details=lambda rows: ([runs[i].failure_details for i in rows], [None] * len(rows)),
            has_details=np.fromiter(
                (run.failure_details is not None for run in runs), dtype=bool, count=len(runs)
            ),
        )

    @classmethod
    def from_arrow(cls, table: pa.Table) -> RunColumns:
        """From a run table in the snapshot's Parquet layout (``harness.data.run_table``)."""
        missing = [
            name for name in (*PARQUET_COLUMNS, "failure_details") if name not in table.column_names
        ]
        if missing:
            raise ValueError(f"the run table has no column(s) {', '.join(missing)}")
        details = table.column("failure_details")

        def decode(rows: list[int]) -> tuple[list[Any], list[str | None]]:
            texts = details.take(pa.array(rows, pa.int64())).to_pylist()
            return [None] * len(rows), texts

        def times(name: str) -> tuple[np.ndarray, np.ndarray]:
            return _int_column(table.column(name).cast(pa.int64()))

        start, start_null = times("start_time")
        finish, finish_null = times("finish_time")
        coded = {name: CodedStrings.from_arrow(table.column(name)) for name in CODED_COLUMNS}
        for name in NOT_NULL_COLUMNS:
            row = np.flatnonzero(coded[name].codes < 0)
            if len(row):
                raise ValueError(
                    f"row {int(row[0])}: column {name} is NULL (the schema says NOT NULL)"
                )
        return cls(
            **coded,
            start=start,
            start_null=start_null,
            finish=finish,
            finish_null=finish_null,
            transient=table.column("failure_transient")
            .fill_null(False)
            .to_numpy(zero_copy_only=False),
            details=decode,
            has_details=details.is_valid().to_numpy(zero_copy_only=False),
        )

    @classmethod
    def read_parquet(cls, path: Any) -> RunColumns:
        """Read only what the aggregation needs; string columns arrive as dictionaries."""
        import pyarrow.parquet as pq

        table = pq.read_table(
            path,
            columns=[*PARQUET_COLUMNS, "failure_details"],
            read_dictionary=CODED_COLUMNS,
            use_threads=False,
        )
        return cls.from_arrow(table)


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
    agg, context_runs = aggregate_run_columns(columns, config, as_of_us)
    context_runs.complete(
        agg, contexts, debian_versions=debian_versions, verdicts=None, config=config
    )
    return agg


@dataclass(frozen=True)
class ContextRuns:
    """What :func:`aggregate_run_columns` leaves to do once the other tables are read.

    The run table is aggregated while the candidate table is still being
    read: matching the candidates' contexts, and deciding the install-deps
    failures (which needs the Debian versions, or verdicts worked out
    elsewhere), wait for them. :meth:`complete` does both.
    """

    columns: RunColumns
    #: Run-table row of each position in group order, and its group.
    rows: np.ndarray
    gid: np.ndarray
    #: Counted runs whose context counts (plain runs, unsatisfied install-deps
    #: failures once decided); filled in by :meth:`settle_deps`.
    matchable: np.ndarray
    deps: PendingDeps

    def complete(
        self,
        agg: Aggregates,
        contexts: Iterable[str],
        *,
        debian_versions: Mapping[str, tuple[str, ...]] | None,
        verdicts: TextVerdicts | RowVerdicts | None,
        config: EngineConfig,
    ) -> None:
        agg.debian_versions = debian_versions
        count = config.success_estimation.count_satisfied_dependencies_as_success
        self.settle_deps(agg, verdicts, count)
        self.record_hits(agg, contexts)

    def settle_deps(
        self,
        agg: Aggregates,
        verdicts: TextVerdicts | RowVerdicts | None,
        count_satisfied: bool,
    ) -> None:
        """Decide the install-deps failures of every group whose verdicts are all known.

        The same walk as the estimator's, on arrays: a failure satisfied now
        counts as a success (``count_satisfied``), the others weigh as
        failures and their contexts count; the first failure the legacy would
        raise on, newest first, is the group's. ``np.bincount`` adds weights
        in input order, as the walk does. Groups with a verdict unknown here
        are left to the engine as :class:`DepsRun` lists.
        """
        deps = self.deps
        n = len(deps.positions)
        if n == 0:
            return
        if verdicts is None:
            agg.deps_runs = deps.runs_by_group(np.ones(n, dtype=bool))
            return
        codes, outcomes = deps.codes(verdicts)
        unknown = codes == UNKNOWN_VERDICT
        if unknown.any():
            unknown = np.isin(deps.groups, _unique_ints(deps.groups[unknown]))
            agg.deps_runs = deps.runs_by_group(unknown)
        known = np.flatnonzero(~unknown)
        if not len(known):
            return
        known_codes = codes[known]
        groups, weights = deps.groups[known], deps.weights[known]
        satisfied_now = np.array([bool(o[0]) for o in outcomes] or [False], dtype=np.bool_)
        won = satisfied_now[known_codes] & count_satisfied
        first = run_starts(groups)
        slot = np.cumsum(first) - 1  # the group's place among these groups
        width = int(slot[-1]) + 1
        satisfied = np.bincount(slot[won], minlength=width).tolist()
        satisfied_weight = np.bincount(slot[won], weights[won], minlength=width).tolist()
        other_weight = np.bincount(slot[~won], weights[~won], minlength=width).tolist()
        legacy: list[str | None] = [None] * width
        raises = np.array([bool(o[1]) for o in outcomes] or [False], dtype=np.bool_)
        failing = np.flatnonzero(raises[known_codes])
        for i, c in zip(  # newest first wins
            reversed(failing.tolist()), reversed(known_codes[failing].tolist()), strict=True
        ):
            legacy[int(slot[i])] = outcomes[c][1]
        agg.deps_outcomes = dict(
            zip(
                groups[first].tolist(),
                map(
                    DepsOutcome,
                    satisfied,
                    satisfied_weight,
                    other_weight,
                    repeat(False, width),
                    legacy,
                ),
                strict=True,
            )
        )
        self.matchable[deps.positions[known[~won]]] = True

    def record_hits(self, agg: Aggregates, contexts: Iterable[str]) -> None:
        wanted = sorted({c for c in contexts if c})
        if not wanted:
            return
        wanted_index = {c: i for i, c in enumerate(wanted)}
        width = len(wanted)
        keys = []
        for values in (self.columns.instigated_context, self.columns.context):
            index = values.lookup(wanted_index)[self.rows]
            mask = self.matchable & (index >= 0)
            keys.append(self.gid[mask] * width + index[mask])
        agg.context_index = wanted_index
        agg.context_hits = _unique_ints(np.concatenate(keys))


def aggregate_run_columns(
    columns: RunColumns, config: EngineConfig, as_of_us: int
) -> tuple[Aggregates, ContextRuns]:
    """Every group figure but the context hits (and without Debian versions)."""
    agg = Aggregates(origin="dataset")
    est = config.success_estimation
    keep = np.flatnonzero(~columns.transient)
    nothing = np.zeros(0, dtype=np.int64)
    if len(keep) == 0:
        no_deps = PendingDeps.of(columns, nothing, nothing, nothing, np.zeros(0))
        return agg, ContextRuns(columns, nothing, nothing, np.zeros(0, dtype=bool), no_deps)
    cb_names, suite_names = columns.codebase.names, columns.suite.names
    code_names = columns.result_code.names
    start, start_null = columns.start[keep], columns.start_null[keep]
    n_suites = max(len(suite_names), 1)
    key = columns.codebase.codes[keep].astype(np.int64) * n_suites + columns.suite.codes[keep]
    # newest first, NULL start times first (PostgreSQL's DESC); ties keep the input order
    order = group_order(key, newest_first(start, start_null))
    rows_s = keep[order]  # the run-table rows in group order
    key_s = key[order]
    starts = run_starts(key_s)
    gid = np.cumsum(starts, dtype=np.int64) - 1
    n_groups = int(gid[-1]) + 1
    first = np.flatnonzero(starts)
    group_keys = key_s[first]
    group_codebases = map(cb_names.__getitem__, (group_keys // n_suites).tolist())
    group_campaigns = map(suite_names.__getitem__, (group_keys % n_suites).tolist())
    pairs = zip(group_codebases, group_campaigns, strict=True)
    agg.group_index = dict(zip(pairs, range(n_groups), strict=True))  # built in C
    code_id = {name: i for i, name in enumerate(code_names)}
    code_s = columns.result_code.codes[rows_s]
    start_s, snull_s = start[order], start_null[order]
    finish_s, fnull_s = columns.finish[rows_s], columns.finish_null[rows_s]
    age = as_of_us - start_s
    span = finish_s - start_s
    cb_s = key_s // n_suites
    averaging = None
    if config.duration_estimation.method != "median":
        # numpy lets the GIL go: the averages are summed beside the rest
        helper = ThreadPoolExecutor(1, thread_name_prefix="averages")
        averaging = helper.submit(
            codebase_and_campaign_averages,
            span,
            ~snull_s & ~fnull_s,
            cb_s,
            key_s % n_suites,
            cb_names,
            suite_names,
        )
        helper.shutdown(wait=False)

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
    agg.ignored = np.bincount(gid[~counted & ~snull_s], minlength=n_groups).tolist()
    timed_n = np.bincount(gid[timed], minlength=n_groups)
    agg.timed = timed_n.tolist()
    seconds = (finish_s[timed] - start_s[timed]).astype(np.float64) / 1e6
    sums = segmented_sequential_sum(seconds, gid[timed], n_groups)
    agg.seconds_sum = sums.tolist()
    with_times = np.flatnonzero(timed_n)
    agg._means = {
        group: mean
        for group, mean in zip(
            with_times.tolist(), legacy_means_us(sums[with_times], timed_n[with_times]), strict=True
        )
        if mean is not None  # left to mean_us, which raises on the candidate
    }
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

    # --- install-deps failures: decided later, with the Debian versions (ContextRuns)
    deps = counted & (code_s == code_id.get(DEPS_UNSATISFIED, -2))
    pending = PendingDeps.of(columns, rows_s, np.flatnonzero(deps), gid, weight)
    is_deps_run = np.zeros(len(order), dtype=bool)
    is_deps_run[pending.positions] = True

    plain_relevant = relevant & ~is_deps_run
    agg.weight_sum = np.bincount(
        gid[plain_relevant], weights=weight[plain_relevant], minlength=n_groups
    ).tolist()
    won = plain_relevant & success
    agg.weighted_successes = np.bincount(gid[won], weights=weight[won], minlength=n_groups).tolist()

    # --- medians (the plan's DurationEstimator): sorted[n // 2] of relevant timed runs
    if averaging is None:
        med_mask = relevant & timed
        med_span, med_gid, med_cb = span[med_mask], gid[med_mask], cb_s[med_mask]
        agg.median_us, agg.median_n = grouped_medians(
            med_gid, med_span, np.bincount(med_gid, minlength=n_groups)
        )
        cb_medians, cb_counts = grouped_medians(
            med_cb, med_span, np.bincount(med_cb, minlength=len(cb_names))
        )
        agg.codebase_median_us = {cb_names[i]: m for i, m in enumerate(cb_medians) if cb_counts[i]}
        agg.codebase_median_n = {cb_names[i]: c for i, c in enumerate(cb_counts) if c}
    else:
        agg.median_us, agg.median_n = [None] * n_groups, [0] * n_groups
        agg.codebase_avg_us, agg.campaign_avg_us = averaging.result()
    return agg, ContextRuns(columns, rows_s, gid, counted & ~is_deps_run, pending)


@dataclass(frozen=True)
class PendingDeps:
    """The counted install-deps failures with ``failure_details``, in group order.

    Their texts are read from the run table only where they are needed: with
    a worker's verdicts by row, only for a group one of whose verdicts is unknown.
    """

    columns: RunColumns
    #: Their places in group order, their run-table rows, groups and decay weights.
    positions: np.ndarray
    rows: np.ndarray
    groups: np.ndarray
    weights: np.ndarray

    @classmethod
    def of(
        cls,
        columns: RunColumns,
        rows: np.ndarray,
        positions: np.ndarray,
        gid: np.ndarray,
        weight: np.ndarray,
    ) -> PendingDeps:
        """``positions`` index the group-ordered runs (``rows`` maps them back to the
        run table); runs without ``failure_details`` are left out (they count as
        plain failures)."""
        originals = rows[positions]
        present = columns.has_details[originals]
        if not present.all():
            positions, originals = positions[present], originals[present]
        return cls(columns, positions, originals, gid[positions], weight[positions])

    def codes(self, verdicts: TextVerdicts | RowVerdicts) -> tuple[np.ndarray, list[Any]]:
        """Each failure's verdict code (:data:`UNKNOWN_VERDICT` where none is known)
        and the outcomes the codes index, from verdicts by row or by text."""
        if isinstance(verdicts, RowVerdicts):
            return verdicts.codes[self.rows], verdicts.outcomes
        _, texts = self.columns.details(self.rows.tolist())
        return verdict_codes(texts, verdicts)

    def runs_by_group(self, chosen: np.ndarray) -> dict[int, list[DepsRun]]:
        """Group → its ``chosen`` failures as :class:`DepsRun`, newest first."""
        picked = np.flatnonzero(chosen)
        if not len(picked):
            return {}
        originals = self.rows[picked]
        values, texts = self.columns.details(originals.tolist())
        runs = list(
            map(
                DepsRun,
                self.columns.instigated_context.strings(originals),
                self.columns.context.strings(originals),
                values,
                self.weights[picked].tolist(),
                texts,
            )
        )
        # one slice of runs per group
        groups = self.groups[picked]
        bounds = np.flatnonzero(np.append(run_starts(groups), True))
        starts, ends = bounds[:-1].tolist(), bounds[1:].tolist()
        return {
            g: runs[a:b] for g, a, b in zip(groups[bounds[:-1]].tolist(), starts, ends, strict=True)
        }


def grouped_medians(
    group: np.ndarray, values: np.ndarray, counts: np.ndarray
) -> tuple[list[int | None], list[int]]:
    """sorted(values of g)[counts[g] // 2] per group g (the plan's median index), or None.

    ``counts`` is ``np.bincount(group)`` over every group.
    """
    if len(values) == 0:
        return [None] * len(counts), counts.tolist()
    low = int(values.min())
    value_bits = (int(values.max()) - low).bit_length()
    if value_bits + len(counts).bit_length() <= 62:
        # one plain sort of (group, value) packed into an int64: several times
        # faster than np.lexsort
        packed = (group << value_bits) | (values - low)
        packed.sort()
        ordered = (packed & ((1 << value_bits) - 1)) + low
    else:
        ordered = values[np.lexsort((values, group))]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    picked = ordered[np.minimum(starts + counts // 2, len(values) - 1)]
    return [
        int(v) if c else None for v, c in zip(picked.tolist(), counts.tolist(), strict=True)
    ], counts.tolist()


def aggregates_from_dataset(
    dataset: Dataset, config: EngineConfig, contexts: Iterable[str]
) -> Aggregates:
    return aggregates_from_runs(
        dataset.runs, config, dataset.as_of_us, contexts, dataset.debian_versions_by_source
    )
