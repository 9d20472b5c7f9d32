"""A whole backtest: every cut, every engine, scores with CIs and the queue replay.

source → cuts (:mod:`harness.comparison.backtest`) → each engine's decisions at each
cut → scored rows (:mod:`harness.comparison.forecast_scores`) and replays
(:mod:`harness.comparison.queue_replay`) → :class:`BacktestResult`, which the report
renderers (:mod:`reports.backtest_report`) and the metrics read.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from engines.model import datetime_to_us
from harness.comparison.backtest import (
    TRUTH_ENGINE,
    BacktestSettings,
    BacktestSource,
    CutDecisions,
    column_engine,
    decide_at,
    outcomes_after,
    reduce_schedule,
    resolve_engines,
)
from harness.comparison.forecast_scores import (
    BootstrapResult,
    Forecasts,
    ReliabilityBin,
    ScoredRows,
    brier_decomposition,
    paired_bootstrap,
    reliability_bins,
)
from harness.comparison.queue_replay import ReplayResult, build_world, candidate_values, replay
from harness.errors import InputError

TRUTH_BASE = "new:parity"


@dataclass(frozen=True)
class CutResult:
    cut: datetime
    decisions: dict[str, CutDecisions]
    candidates_ran: int
    scored: int
    successes: int
    replays: dict[str, ReplayResult]
    sampled_in_replay: int
    notes: tuple[str, ...] = ()


@dataclass
class BacktestResult:
    source: str
    settings: BacktestSettings
    source_as_of: datetime
    engines: list[str]
    campaigns: list[str]
    cuts: list[CutResult]
    rows: ScoredRows
    bootstrap: BootstrapResult
    #: engine → reliability bins over every scored row.
    reliability: dict[str, list[ReliabilityBin]]
    #: engine → (within-bin variance, within-bin covariance) over every row.
    within_bin: dict[str, tuple[float, float]]
    assumptions: list[str]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


#: What forked workers read (set just before the pool forks, so they share it).
_SHARED: dict[str, Any] = {}


def _decide(task: tuple[int, str]) -> tuple[tuple[int, str], CutDecisions]:
    """One engine at one cut, reduced to arrays (cheap to send back from a worker)."""
    from engines.base import get_engine

    c_index, name = task
    state = _SHARED
    source: BacktestSource = state["source"]
    cut: datetime = state["settings"].cuts[c_index]
    started = time.perf_counter()
    cpu_started = time.process_time()
    if name == TRUTH_ENGINE:  # re-priced on a parity schedule
        from harness.comparison.backtest_truth import truth_schedule

        schedule = truth_schedule(
            decide_at(get_engine(TRUTH_BASE), source, cut), state["truth"], cut
        )
    else:
        schedule = decide_at(state["engines"][name], source, cut)
    probability, duration, queue, errors = reduce_schedule(
        schedule, state["key_index"], state["plain_index"]
    )
    seconds = time.perf_counter() - started
    return task, CutDecisions(
        name,
        probability,
        duration,
        queue,
        errors,
        seconds,
        tuple(schedule.notes),
        time.process_time() - cpu_started,
    )


def decide_all_cuts(
    source: BacktestSource,
    settings: BacktestSettings,
    engines: list[tuple[str, Any]],
    truth: Any,
    key_index: dict[Any, int],
    plain_index: dict[tuple[str, str], int],
    *,
    jobs: int,
    say: Callable[[str], None],
) -> dict[tuple[int, str], CutDecisions]:
    """Every (cut, engine) decision; with ``jobs`` > 1, in forked worker processes.

    Each cut is independent, so the work spreads over processes that share
    the loaded source copy-on-write (forked after loading; Run tuples are
    loaded first when an engine needs them, so that no worker reads them again).
    """
    _SHARED.update(
        source=source,
        settings=settings,
        engines=dict(engines),
        truth=truth,
        key_index=key_index,
        plain_index=plain_index,
    )
    # The slow engines first, so that the pool ends together.
    tasks = sorted(
        ((c, name) for c in range(len(settings.cuts)) for name, _ in engines),
        key=lambda t: column_engine(dict(engines)[t[1]]) is not None or t[1] == TRUTH_ENGINE,
    )
    out: dict[tuple[int, str], CutDecisions] = {}
    try:
        if jobs <= 1 or len(tasks) <= 1 or "fork" not in mp.get_all_start_methods():
            for task in tasks:
                key, decided = _decide(task)
                out[key] = decided
                say(f"{settings.cuts[key[0]].isoformat()} {key[1]}: {decided.seconds:.1f}s")
            return out
        if any(e is not None and column_engine(e) is None for _, e in engines):
            _ = source.history.runs  # load the tuples once, before forking
        gc.collect()
        gc.freeze()  # workers then do not touch (and copy) the loaded objects' pages
        # A pool whose worker dies (out of memory) says so, instead of waiting forever.
        with ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=mp.get_context("fork")) as pool:
            try:
                for future in as_completed([pool.submit(_decide, task) for task in tasks]):
                    key, decided = future.result()
                    out[key] = decided
                    say(f"{settings.cuts[key[0]].isoformat()} {key[1]}: {decided.seconds:.1f}s")
            except BrokenProcessPool as exc:
                raise RuntimeError(
                    "a backtest worker process died (out of memory?); try fewer --jobs"
                ) from exc
        return out
    finally:
        _SHARED.clear()


def run_backtest(
    source: BacktestSource,
    settings: BacktestSettings,
    *,
    truth: Any = None,
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> BacktestResult:
    """Run the whole backtest (see the module docstring)."""
    say = progress or (lambda _: None)
    started = time.perf_counter()
    base = source.base
    engines = resolve_engines(settings.engines)
    names = [name for name, _ in engines]
    if TRUTH_ENGINE in names and truth is None:
        raise InputError(
            "the truth engine needs the generator's truth.jsonl.gz beside the source",
            field="engines",
        )
    for cut in settings.cuts:
        if cut > base.as_of:
            raise InputError(
                f"cut {cut.isoformat()} is after the source's as_of {base.as_of.isoformat()}: "
                "nothing is known there",
                field="--at",
            )
    candidates = base.candidates
    keys = [c.key for c in candidates]
    key_index = {k: i for i, k in enumerate(keys)}
    plain_index = {(k.codebase, k.campaign): i for i, k in enumerate(keys) if not k.change_set}
    history = source.history
    pair_of = np.array([history.pair_index.get((k.codebase, k.campaign), -1) for k in keys])
    campaigns = sorted({k.campaign for k in keys} | {p[1] for p in history.pairs})
    campaign_index = {c: i for i, c in enumerate(campaigns)}
    cand_campaign = np.array([campaign_index[k.campaign] for k in keys], dtype=np.int64)
    pair_campaign = np.array([campaign_index[p[1]] for p in history.pairs], dtype=np.int64)
    values = candidate_values(base, candidates)
    # Only rows the candidate query returns can be queued by any engine: the top set's pool.
    joined = np.zeros(len(keys), dtype=bool)
    joined[[key_index[c.key] for c in base.joined_candidates]] = True
    horizon_us = settings.horizon_us

    cut_results: list[CutResult] = []
    row_parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("cluster", "outcome", "actual", "campaign", "cut")
    }
    forecast_parts: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {
        n: ([], []) for n in names
    }
    if any(column_engine(e) is not None for _, e in engines) or truth is not None:
        source.verdicts = source.collect_verdicts()
    t_decide = time.perf_counter()
    all_decisions = decide_all_cuts(
        source, settings, engines, truth, key_index, plain_index, jobs=jobs, say=say
    )
    t_decided = time.perf_counter()
    for c_index, cut in enumerate(settings.cuts):
        cut_us = datetime_to_us(cut)
        notes: list[str] = []
        if cut_us + horizon_us > datetime_to_us(base.as_of):
            notes.append(
                f"the horizon ends after the source's as_of ({base.as_of.isoformat()}): "
                "runs after that are unknown, so fewer candidates are scored at this cut"
            )
        decided = {name: all_decisions[(c_index, name)] for name in names}
        outcomes = outcomes_after(history, cut_us, horizon_us)
        # Candidates without any run point at one padding slot past the pairs.
        pad = np.where(pair_of >= 0, pair_of, len(history.pairs))
        ran = np.r_[outcomes.ran, False][pad]
        success = ran & np.r_[outcomes.success, False][pad]
        actual = np.where(ran, np.r_[outcomes.duration_us, 0][pad], 0)
        scoreable = ran & (actual > 0)
        for d in decided.values():
            scoreable &= np.isfinite(d.probability) & (d.duration_us > 0)
        rows = np.flatnonzero(scoreable)
        row_parts["cluster"].append(rows)
        row_parts["outcome"].append(success[rows].astype(float))
        row_parts["actual"].append(actual[rows])
        row_parts["campaign"].append(cand_campaign[rows])
        row_parts["cut"].append(np.full(len(rows), c_index, dtype=np.int64))
        for name, d in decided.items():
            forecast_parts[name][0].append(d.probability[rows])
            forecast_parts[name][1].append(d.duration_us[rows])

        # The replay's world: observed next runs, else a draw from the campaign's window runs.
        w_camp = pair_campaign[outcomes.window_pair] if len(outcomes.window_pair) else np.zeros(0)
        pools = {
            int(camp): (
                outcomes.window_duration_us[w_camp == camp],
                outcomes.window_success[w_camp == camp],
            )
            for camp in np.unique(w_camp).tolist()
        }
        fallback = (outcomes.window_duration_us, outcomes.window_success)
        if len(fallback[0]) == 0:
            visible = history.visible(cut_us) & ~history.transient & ~history.start_null
            fallback = (
                (history.finish - history.start)[visible],
                history.success[visible],
            )
            notes.append("no run in the window: the replay draws from the visible history instead")
        world = build_world(
            campaign=cand_campaign,
            observed=ran,
            duration_us=actual,
            success=success,
            eligible=joined,
            value=values,
            pools=pools,
            fallback=fallback,
            top=settings.top,
            seed=(settings.seed, c_index),
        )
        replays = {
            name: replay(name, d.queue, world, workers=settings.workers, horizon_us=horizon_us)
            for name, d in decided.items()
        }
        queued = np.unique(np.concatenate([d.queue for d in decided.values()]))
        cut_results.append(
            CutResult(
                cut=cut,
                decisions=decided,
                candidates_ran=int(ran.sum()),
                scored=len(rows),
                successes=int(success[rows].sum()),
                replays=replays,
                sampled_in_replay=int((~ran[queued]).sum()) if len(queued) else 0,
                notes=tuple(notes),
            )
        )

    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    cluster = cat(row_parts["cluster"], np.int64)
    # Renumber the candidates that were scored, so the bootstrap draws only among them.
    _, cluster = np.unique(cluster, return_inverse=True)
    scored = ScoredRows(
        cluster=cluster.astype(np.int64),
        outcome=cat(row_parts["outcome"], float),
        actual_us=cat(row_parts["actual"], np.int64),
        forecasts={
            n: Forecasts(cat(forecast_parts[n][0], float), cat(forecast_parts[n][1], np.int64))
            for n in names
        },
        groups={
            "campaign": (cat(row_parts["campaign"], np.int64), campaigns),
            "cut": (cat(row_parts["cut"], np.int64), [c.isoformat() for c in settings.cuts]),
        },
    )
    t_scores = time.perf_counter()
    boot = paired_bootstrap(
        scored, resamples=settings.resamples, confidence=settings.confidence, seed=settings.seed
    )
    t_booted = time.perf_counter()
    say(f"bootstrap ({settings.resamples} resamples): {t_booted - t_scores:.1f}s")
    reliability = {
        n: reliability_bins(scored.forecasts[n].probability, scored.outcome) for n in names
    }
    within: dict[str, tuple[float, float]] = {}
    for n in names:
        parts = brier_decomposition(scored.forecasts[n].probability, scored.outcome)
        within[n] = (parts.within_bin_variance, parts.within_bin_covariance)
    assumptions = [
        "a cut at T sees only runs that finished before T; as_of is T; the queue starts empty "
        "(the recorded queue is from after T); candidates are the recorded table as it is "
        "(they have no timestamps)",
        f"outcome: a candidate's next run that started at or after T, finished within "
        f"{settings.horizon} and was not a transient failure; success means result_code "
        "'success'",
        "scored: candidates with such a run that every engine decided (a probability and a "
        "positive duration); the bootstrap resamples candidates (all their cuts together), the "
        "same resample for every engine",
        "queue replay: items whose candidate had no next run in the window get a duration and "
        "outcome drawn (seeded) from their campaign's runs in the window; value of a success = "
        "candidate value with publish bonus × normalized codebase value (floored at 0.1)",
    ]
    return BacktestResult(
        source=source.spec,
        settings=settings,
        source_as_of=base.as_of,
        engines=names,
        campaigns=campaigns,
        cuts=cut_results,
        rows=scored,
        bootstrap=boot,
        reliability=reliability,
        within_bin=within,
        assumptions=assumptions,
        timings={
            "decide_seconds": t_decided - t_decide,
            "outcomes_and_replay_seconds": t_scores - t_decided,
            "bootstrap_seconds": t_booted - t_scores,
            "backtest_seconds": time.perf_counter() - started,
        },
    )
