"""Point-in-time replay: cut the data at T, let each engine decide, score against what followed.

What a cut at T is, exactly (the README's backtest section says the same):

* **Runs**: only runs that had *finished* before T (``finish_time < T``) are
  visible. A run that started before T but finished at or after T was still
  going at T: it is neither seen by the engines nor scored. A run with no
  finish time never finished and is never visible.
* **as_of** = T (the worker-failure age rule and the decay weights use it).
* **Candidates** have no timestamps: the recorded candidate table is used
  as it is, in the recorded row order (a candidate added after T is decided
  as if it had existed; one removed before the recording is missing).
* **Queue**: empty. The recorded queue is the queue at the *recording*, after
  T, and its rows have no time; a bulk run on an empty queue is the one
  reproducible starting point (it only shifts every priority by a constant).

What "really happened" after T, up to the horizon H: for each candidate's
(codebase, campaign), its **next run** — the first run, by start time, that
started at or after T, finished by T + H and was not a transient failure
(``failure_transient`` true runs are retried; the engines' estimators drop
them too). It *succeeded* when its ``result_code`` is ``success``, exactly
what the legacy counts (spec §5); any other code, worker failures that are
not transient included, is a failure. Its duration is ``finish − start``.
Candidates with no such run are not scored (nothing to score against).

Engines that can work from columns (the new engine) are handed the cut run
table as Arrow columns; others get a :class:`~engines.model.Dataset` of
Run tuples, selected by index from the tuples loaded once. Either way the
engine sees exactly the visible runs, in the recorded order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engines.base import Engine, get_engine
from engines.bulk import bulk_allocation
from engines.legacy.memory import MemoryData
from engines.model import (
    US_PER_SECOND,
    CandidateKey,
    Dataset,
    Run,
    Schedule,
    datetime_to_us,
)
from harness.data.run_table import REPEATING, SCHEMA, read_runs
from harness.data.snapshot import load_snapshot, run_table_file
from harness.data.sources import is_dsn, open_source, snapshot_path
from harness.errors import InputError, SourceError

SUCCESS = "success"
TRUTH_ENGINE = "truth"


# ---------------------------------------------------------------- the run history


@dataclass
class RunHistory:
    """The source's run table once, as columns for cutting (tuples only if needed).

    ``pair`` numbers each run's (codebase, campaign); ``pairs`` lists them.
    Times are µs since the epoch; NULL times are flagged in the masks.
    """

    start: np.ndarray
    start_null: np.ndarray
    finish: np.ndarray
    finish_null: np.ndarray
    transient: np.ndarray
    success: np.ndarray
    pair: np.ndarray
    pairs: list[tuple[str, str]]
    table: pa.Table | None = None
    _runs: Sequence[Run] | None = None
    _load_runs: Callable[[], Sequence[Run]] | None = None
    pair_index: dict[tuple[str, str], int] = field(default_factory=dict)
    _legacy_order: np.ndarray | None = None
    _codes: dict[int, tuple[list[str], np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.pair_index:
            self.pair_index = {p: i for i, p in enumerate(self.pairs)}

    def __len__(self) -> int:
        return len(self.start)

    @property
    def runs(self) -> Sequence[Run]:
        """The Run tuples, in table order (read on first use: engines without a column path)."""
        if self._runs is None:
            assert self._load_runs is not None
            # Frozen: collections while engines decide would rescan millions of tuples.
            with bulk_allocation(freeze=True):
                self._runs = self._load_runs()
        return self._runs

    def legacy_order(self) -> np.ndarray:
        """Rows by (codebase, campaign), newest first, NULL starts first, table order on ties."""
        if self._legacy_order is None:
            index = np.arange(len(self.start))
            self._legacy_order = np.lexsort((index, -self.start, ~self.start_null, self.pair))
        return self._legacy_order

    def codebase_codes(self) -> tuple[list[str], np.ndarray]:
        """Codebase names and each run's index into them."""
        return self._name_codes(0)

    def campaign_codes(self) -> tuple[list[str], np.ndarray]:
        return self._name_codes(1)

    def _name_codes(self, field: int) -> tuple[list[str], np.ndarray]:
        if field not in self._codes:
            names = sorted({p[field] for p in self.pairs})
            index = {name: i for i, name in enumerate(names)}
            per_pair = np.array([index[p[field]] for p in self.pairs], dtype=np.int64)
            self._codes[field] = (names, per_pair[self.pair] if len(self.pair) else self.pair)
        return self._codes[field]

    def visible(self, cut_us: int) -> np.ndarray:
        """Rows that had finished before the cut."""
        return ~self.finish_null & (self.finish < cut_us)

    @classmethod
    def from_runs(cls, runs: Sequence[Run]) -> RunHistory:
        n = len(runs)
        start = np.fromiter((r.start_us or 0 for r in runs), np.int64, n)
        finish = np.fromiter((r.finish_us or 0 for r in runs), np.int64, n)
        pairs: dict[tuple[str, str], int] = {}
        pair = np.fromiter(
            (pairs.setdefault((r.codebase, r.suite), len(pairs)) for r in runs), np.int64, n
        )
        return cls(
            start=start,
            start_null=np.fromiter((r.start_us is None for r in runs), bool, n),
            finish=finish,
            finish_null=np.fromiter((r.finish_us is None for r in runs), bool, n),
            transient=np.fromiter((r.failure_transient is True for r in runs), bool, n),
            success=np.fromiter((r.result_code == SUCCESS for r in runs), bool, n),
            pair=pair,
            pairs=list(pairs),
            _runs=runs,
        )

    @classmethod
    def from_parquet(cls, path: Path) -> RunHistory:
        try:
            table = pq.read_table(path, columns=SCHEMA.names, read_dictionary=REPEATING)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"cannot read Parquet: {exc}", file=str(path)) from exc
        for name in ("codebase", "suite", "result_code"):
            if table.column(name).null_count:
                raise InputError("expected a string, got null", file=str(path), field=name)
        table = table.unify_dictionaries().combine_chunks()

        def times(name: str) -> tuple[np.ndarray, np.ndarray]:
            column = table.column(name).cast(pa.int64())
            null = column.is_null().to_numpy(zero_copy_only=False)
            return column.fill_null(0).to_numpy(), null

        start, start_null = times("start_time")
        finish, finish_null = times("finish_time")
        codebase = table.column("codebase").chunk(0) if table.num_rows else None
        suite = table.column("suite").chunk(0) if table.num_rows else None
        code = table.column("result_code").chunk(0) if table.num_rows else None
        if codebase is None or suite is None or code is None:
            pair = np.zeros(0, np.int64)
            pairs: list[tuple[str, str]] = []
            success = np.zeros(0, bool)
        else:
            cb = codebase.indices.to_numpy().astype(np.int64)
            su = suite.indices.to_numpy().astype(np.int64)
            combined = cb * max(len(suite.dictionary), 1) + su
            unique, pair = np.unique(combined, return_inverse=True)
            cb_names = codebase.dictionary.to_pylist()
            su_names = suite.dictionary.to_pylist()
            width = max(len(su_names), 1)
            pairs = [(cb_names[int(u) // width], su_names[int(u) % width]) for u in unique]
            names = code.dictionary.to_pylist()
            success_codes = np.array([name == SUCCESS for name in names], dtype=bool)
            success = success_codes[code.indices.to_numpy()]
        transient = table.column("failure_transient").fill_null(False)
        return cls(
            start=start,
            start_null=start_null,
            finish=finish,
            finish_null=finish_null,
            transient=transient.to_numpy(zero_copy_only=False).astype(bool),
            success=success,
            pair=pair.astype(np.int64),
            pairs=pairs,
            table=table,
            _load_runs=lambda: read_runs(path),
        )


@dataclass
class BacktestSource:
    """Everything of the source but the runs (``base``), and the run history."""

    spec: str
    base: Dataset
    history: RunHistory
    #: The snapshot path, where the source is one (for the generator's truth).
    path: Path | None
    #: Install-deps verdicts of the whole run table (they do not depend on time).
    verdicts: dict[str, tuple[bool, str | None]] | None = None
    worker: Any = None

    def collect_verdicts(self) -> dict[str, tuple[bool, str | None]] | None:
        """The verdict worker's answer (``None``: the new engine works them out itself)."""
        if self.worker is None:
            return None
        try:
            by_row = self.worker.verdicts()
        finally:
            self.worker.stop()
            self.worker = None
        if by_row is None or self.history.table is None:
            return None
        # by text: each cut filters the run table, which renumbers its rows
        verdicts: dict[str, tuple[bool, str | None]] = by_row.by_text(
            self.history.table.column("failure_details")
        )
        return verdicts

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None


def source_from_dataset(dataset: Dataset, spec: str = "memory") -> BacktestSource:
    """A dataset already in memory as a backtest source (its runs are the history)."""
    base = replace(dataset, runs=(), queue=(), live_dsn=None)
    return BacktestSource(spec, base, RunHistory.from_runs(dataset.runs), None)


def open_backtest_source(spec: str, *, verdict_worker: bool = False) -> BacktestSource:
    """Load SOURCE once; a Parquet run table is read as columns, not tuples.

    ``verdict_worker`` starts the new engine's install-deps verdict worker on
    the other core while the tables load (Parquet sources only).
    """
    if is_dsn(spec):
        # Engines must compute from the cut runs, never query the live database.
        return source_from_dataset(open_source(spec), spec)
    path = snapshot_path(spec)
    runs_file = run_table_file(path) if path.is_dir() else None
    if runs_file is not None and runs_file.suffix == ".parquet":
        worker = None
        if verdict_worker:
            from engines.new.verdict_worker import VerdictWorker

            worker = VerdictWorker(runs_file, path)
        try:
            with bulk_allocation(freeze=True):
                base = load_snapshot(path, runs=False)
            history = RunHistory.from_parquet(runs_file)
        except BaseException:
            if worker is not None:
                worker.stop()
            raise
        return BacktestSource(spec, replace(base, queue=()), history, path, worker=worker)
    source = source_from_dataset(load_snapshot(path), spec)
    source.path = path
    return source


# ---------------------------------------------------------------- cuts


def cut_dataset(source: BacktestSource, cut: datetime, *, with_runs: bool = True) -> Dataset:
    """The dataset as an engine at ``cut`` would have seen it (see the module docstring)."""
    base = replace(source.base, as_of=cut, queue=(), live_dsn=None)
    if not with_runs:
        return base
    rows = np.flatnonzero(source.history.visible(datetime_to_us(cut)))
    runs = source.history.runs
    if len(rows) == 0:
        selected: tuple[Run, ...] = ()
    elif len(rows) == 1:
        selected = (runs[int(rows[0])],)
    else:
        selected = itemgetter(*rows.tolist())(runs)
    return replace(base, runs=selected)


@dataclass(frozen=True)
class CutDecisions:
    """One engine's decisions at one cut, reduced to what the backtest scores.

    Indexed like :attr:`Backtest.keys` (every candidate key of the source);
    NaN / -1 where the engine did not decide (an error, or no such row).
    ``queue`` holds candidate indices in the order workers take them.
    """

    engine: str
    probability: np.ndarray
    duration_us: np.ndarray
    queue: np.ndarray
    errors: int
    seconds: float
    notes: tuple[str, ...] = ()
    #: CPU time of the decision (the wall time stretches on a busy machine).
    cpu_seconds: float = 0.0


def reduce_schedule(
    schedule: Schedule, key_index: dict[CandidateKey, int], plain_index: dict[tuple[str, str], int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(probability, duration, queue as candidate indices, error count) of a schedule."""
    n = len(key_index)
    probability = np.full(n, np.nan)
    duration = np.full(n, -1, dtype=np.int64)
    errors = 0
    for d in schedule.decisions:
        i = key_index.get(d.key)
        if i is None:
            continue
        if d.error is not None or d.success_probability is None:
            errors += 1
            probability[i] = np.nan
            continue
        probability[i] = d.success_probability
        if d.estimated_duration_us is not None:
            duration[i] = d.estimated_duration_us
    queue = []
    for item in schedule.queue:
        i = key_index.get(item.key)
        if i is None:
            i = plain_index.get((item.codebase, item.suite))
        if i is not None:
            queue.append(i)
    return probability, duration, np.asarray(queue, dtype=np.int64), errors


def column_engine(engine: Engine | None) -> Any:
    """The new engine (or any engine with its aggregate-then-decide interface), else None."""
    if engine is not None and hasattr(engine, "schedule_aggregated") and hasattr(engine, "config"):
        return engine
    return None


def decide_at(engine: Engine, source: BacktestSource, cut: datetime) -> Schedule:
    """Run ``engine`` on the data as it stood at ``cut``."""
    # Deciding builds 100,000s of acyclic records: the cyclic GC only slows it down.
    with bulk_allocation():
        return _decide_at(engine, source, cut)


def _decide_at(engine: Engine, source: BacktestSource, cut: datetime) -> Schedule:
    from engines.legacy import LegacyEngine

    if isinstance(engine, LegacyEngine) and engine.backend == "memory":
        return _legacy_at(engine, source, cut)
    fast = column_engine(engine)
    if fast is None:
        return engine.schedule(cut_dataset(source, cut))
    from engines.new.aggregates import RunColumns, aggregate_run_columns

    started = time.perf_counter()
    cut_us = datetime_to_us(cut)
    dataset = cut_dataset(source, cut, with_runs=False)
    mask = source.history.visible(cut_us)
    if source.history.table is not None:
        columns = RunColumns.from_arrow(source.history.table.filter(pa.array(mask)))
    else:
        runs = source.history.runs
        columns = RunColumns.from_runs([runs[i] for i in np.flatnonzero(mask).tolist()])
    agg, context_runs = aggregate_run_columns(columns, fast.config, cut_us)
    context_runs.complete(
        agg,
        (c.context for c in dataset.candidates if c.context),
        debian_versions=dataset.debian_versions_by_source,
        verdicts=source.verdicts,
        config=fast.config,
    )
    schedule: Schedule = fast.schedule_aggregated(
        dataset, agg, started=started, verdicts=source.verdicts
    )
    return schedule


def _legacy_at(engine: Any, source: BacktestSource, cut: datetime) -> Schedule:
    """The legacy's memory backend at a cut, its run groups and averages taken from columns.

    The backend groups every run in Python and averages durations run by run
    for each codebase without runs of its own; at each cut that was most of a
    second… and of the legacy's time. Here the groups come from one order of
    the whole table computed once (newest first, NULL starts first, table
    order on ties: ``ORDER BY start_time DESC``), and the averages are the
    exact integer AVG the new engine computes. The algorithm itself
    (:func:`engines.legacy.core.run_legacy`) is the legacy's, untouched; a
    test holds the result to the plain backend's on the cut dataset.
    """
    from engines.legacy.core import run_legacy
    from engines.legacy.pg_interval import codebase_and_campaign_averages

    h = source.history
    cut_us = datetime_to_us(cut)
    dataset = cut_dataset(source, cut, with_runs=False)
    counted = h.visible(cut_us) & ~h.transient
    order = h.legacy_order()
    chosen = order[counted[order]]
    runs = h.runs
    ordered: tuple[Run, ...] = ()
    if len(chosen) == 1:
        ordered = (runs[int(chosen[0])],)
    elif len(chosen) > 1:
        ordered = itemgetter(*chosen.tolist())(runs)
    pair = h.pair[chosen]
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]]) if len(pair) else pair
    ends = np.r_[starts[1:], len(pair)] if len(pair) else pair
    groups = {
        h.pairs[p]: ordered[a:b]
        for p, a, b in zip(pair[starts].tolist(), starts.tolist(), ends.tolist(), strict=True)
    }
    cb_names, cb_of_run = h.codebase_codes()
    su_names, su_of_run = h.campaign_codes()
    averages = codebase_and_campaign_averages(
        h.finish - h.start,
        counted & ~h.start_null & ~h.finish_null,
        cb_of_run,
        su_of_run,
        cb_names,
        su_names,
    )
    data = _CutMemoryData(dataset, groups, *averages)
    schedule: Schedule = run_legacy(data, dataset, engine_name=engine.name, backend="memory")
    return schedule


class _CutMemoryData(MemoryData):
    """:class:`MemoryData` whose run groups and AVG fallbacks were computed on columns."""

    def __init__(
        self,
        dataset: Dataset,
        groups: Mapping[tuple[str, str], Sequence[Run]],
        by_codebase: Mapping[str, int | None],
        by_campaign: Mapping[str, int | None],
    ) -> None:
        super().__init__(dataset)  # a dataset without runs: nothing to group here
        self._runs = groups
        self._by_codebase = by_codebase
        self._by_campaign = by_campaign

    def avg_duration_us(
        self, *, codebase: str | None = None, campaign: str | None = None
    ) -> int | None:
        if codebase is not None:
            return self._by_codebase.get(codebase)
        if campaign is not None:
            return self._by_campaign.get(campaign)
        raise ValueError("avg_duration_us needs a codebase or a campaign")


# ---------------------------------------------------------------- what followed


@dataclass(frozen=True)
class Outcomes:
    """What really happened after one cut, per (codebase, campaign) of the history.

    ``ran`` marks pairs with a next run in the window; ``success`` and
    ``duration_us`` describe it. ``window_*`` are every non-transient run in
    the window (the campaign distributions the queue replay samples from).
    """

    ran: np.ndarray
    success: np.ndarray
    duration_us: np.ndarray
    window_pair: np.ndarray
    window_success: np.ndarray
    window_duration_us: np.ndarray


def outcomes_after(history: RunHistory, cut_us: int, horizon_us: int) -> Outcomes:
    """Each pair's next run in ``[cut, cut + horizon]`` (see the module docstring)."""
    h = history
    window = (
        ~h.start_null
        & ~h.finish_null
        & ~h.transient
        & (h.start >= cut_us)
        & (h.finish <= cut_us + horizon_us)
    )
    rows = np.flatnonzero(window)
    n_pairs = len(h.pairs)
    ran = np.zeros(n_pairs, dtype=bool)
    success = np.zeros(n_pairs, dtype=bool)
    duration = np.zeros(n_pairs, dtype=np.int64)
    if len(rows):
        order = rows[np.lexsort((h.start[rows], h.pair[rows]))]
        pair = h.pair[order]
        first = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
        chosen = order[first]
        p = h.pair[chosen]
        ran[p] = True
        success[p] = h.success[chosen]
        duration[p] = h.finish[chosen] - h.start[chosen]
    return Outcomes(
        ran=ran,
        success=success,
        duration_us=duration,
        window_pair=h.pair[rows],
        window_success=h.success[rows],
        window_duration_us=h.finish[rows] - h.start[rows],
    )


# ---------------------------------------------------------------- settings


def parse_horizon(text: str) -> timedelta:
    """``14d``, ``36h``, ``90m``, ``3600s`` or a bare number of days."""
    value = text.strip().lower()
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    try:
        if value and value[-1] in units:
            seconds = float(value[:-1]) * units[value[-1]]
        else:
            seconds = float(value) * 86400
    except ValueError as exc:
        raise InputError(
            f"expected a duration such as 14d, 36h or 90m, got {text!r}", field="horizon"
        ) from exc
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"expected a positive duration, got {text!r}", field="horizon")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class BacktestSettings:
    cuts: tuple[datetime, ...]
    horizon: timedelta = timedelta(days=14)
    engines: tuple[str, ...] = ("legacy", "new")
    workers: int = 10
    top: int = 100
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0

    @property
    def horizon_us(self) -> int:
        return round(self.horizon.total_seconds() * US_PER_SECOND)

    def to_json(self) -> dict[str, Any]:
        return {
            "cuts": [c.isoformat() for c in self.cuts],
            "horizon_seconds": self.horizon.total_seconds(),
            "engines": list(self.engines),
            "workers": self.workers,
            "top": self.top,
            "bootstrap_resamples": self.resamples,
            "confidence": self.confidence,
            "seed": self.seed,
        }


def resolve_engines(names: Sequence[str]) -> list[tuple[str, Engine | None]]:
    """Engines by name; ``truth`` (the generator's truth) is built per source later."""
    out: list[tuple[str, Engine | None]] = []
    seen: set[str] = set()
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name in seen:
            raise InputError(f"engine {name!r} given twice", field="engines")
        seen.add(name)
        if name == TRUTH_ENGINE:
            out.append((name, None))
            continue
        if name.startswith("legacy:sql"):
            raise SourceError(
                "legacy:sql asks the live database, which holds the runs after the cut: "
                "backtest the legacy with legacy (memory), which decides from the cut data"
            )
        out.append((name, get_engine(name)))
    if not out:
        raise InputError("no engine given", field="engines")
    return out
