"""Queue replay: drain each engine's queue with N simulated workers, on what really followed.

Workers take items in the engine's queue order (bucket, priority, id), each
as soon as one is free. An item's run takes the duration, and ends with the
outcome, of its candidate's real next run after the cut (see
:mod:`harness.comparison.backtest`); an item whose candidate did not run in the window
gets a (duration, outcome) pair drawn, with a seeded generator, from the
non-transient runs of its campaign in the window (all campaigns' when its
campaign had none, the visible history's when the window had none). The
draw is made once per candidate and cut, so every engine replays the same
world. The report states this assumption.

**Value** of a candidate: its value with the publish bonus (spec §2; a NULL
value counts 0, an unknown publish mode adds 0) times the normalized
codebase value (spec §3, floored at 0.1) — what the legacy's worth is
before the success probability, taken from the data, never from an engine.
A run delivers its candidate's value when it succeeds.

**Value per worker-hour**: the value delivered by successful runs that ended
within the horizon, divided by the worker-hours spent until then (N × the
horizon, or × the time the queue took to drain if it drained sooner).

**Top candidates**: the ``top`` candidates of highest value among those
whose real next run succeeded (the work that was really there to do), of
the rows the candidate query returns (a candidate without a codebase or a
publish policy can be queued by no engine). The
time to reach them is when the last of them ends in the replay; it is
``None`` when an engine never queued one of them.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engines.legacy.core import (
    MINIMUM_NORMALIZED_CODEBASE_VALUE,
    PUBLISH_MODE_VALUE,
)
from engines.model import Candidate, Dataset

US_PER_HOUR = 3600 * 1_000_000
CURVE_POINTS = 120


def candidate_values(dataset: Dataset, candidates: Sequence[Candidate]) -> np.ndarray:
    """The value of each candidate (see the module docstring), engine-independent."""
    values = {c.name: (c.value or 0) for c in dataset.codebases}
    top = max(values.values(), default=0)
    policies = dataset.policy_by_name
    out = np.zeros(len(candidates))
    for i, c in enumerate(candidates):
        policy = policies.get(c.publish_policy) if c.publish_policy else None
        bonus = 0
        if policy is not None and policy.per_branch_policy:
            bonus = sum(PUBLISH_MODE_VALUE.get(e.mode or "", 0) for e in policy.per_branch_policy)
        ncv = min(values.get(c.codebase, 0) / top, 1.0) if top > 0 else 1.0
        out[i] = ((c.value or 0) + bonus) * max(ncv, MINIMUM_NORMALIZED_CODEBASE_VALUE)
    return out


@dataclass(frozen=True)
class ReplayWorld:
    """Per candidate: the duration and outcome its run has in the replay, and whether observed."""

    duration_us: np.ndarray
    success: np.ndarray
    observed: np.ndarray
    value: np.ndarray
    #: Candidate indices of the top candidates, best first.
    top: np.ndarray


def build_world(
    *,
    campaign: np.ndarray,
    observed: np.ndarray,
    duration_us: np.ndarray,
    success: np.ndarray,
    eligible: np.ndarray,
    value: np.ndarray,
    pools: Mapping[int, tuple[np.ndarray, np.ndarray]],
    fallback: tuple[np.ndarray, np.ndarray],
    top: int,
    seed: Sequence[int],
) -> ReplayWorld:
    """Fill the unobserved candidates from their campaign's pool (seeded), pick the top set."""
    rng = np.random.default_rng(list(seed))
    duration = duration_us.astype(np.int64).copy()
    ok = success.astype(bool).copy()
    missing = np.flatnonzero(~observed)
    if len(missing):
        for camp in np.unique(campaign[missing]).tolist():
            rows = missing[campaign[missing] == camp]
            pool_d, pool_s = pools.get(int(camp), fallback)
            if len(pool_d) == 0:
                pool_d, pool_s = fallback
            if len(pool_d) == 0:
                duration[rows] = 0
                ok[rows] = False
                continue
            pick = rng.integers(0, len(pool_d), len(rows))
            duration[rows] = pool_d[pick]
            ok[rows] = pool_s[pick]
    real = np.flatnonzero(observed & success.astype(bool) & eligible)
    order = real[np.argsort(-value[real], kind="stable")]
    return ReplayWorld(duration, ok, observed.astype(bool), value, order[:top])


@dataclass(frozen=True)
class ReplayResult:
    engine: str
    workers: int
    horizon_us: int
    queued: int
    runs_in_horizon: int
    successes_in_horizon: int
    value_in_horizon: float
    worker_hours: float
    value_per_worker_hour: float
    drained_us: int
    top_wanted: int
    top_reached: int
    top_reached_us: int | None
    #: (hours, cumulative value) at evenly spaced times up to the horizon or the drain.
    curve: tuple[tuple[float, float], ...]

    def to_json(self) -> dict[str, object]:
        return {
            "engine": self.engine,
            "workers": self.workers,
            "queued": self.queued,
            "runs_in_horizon": self.runs_in_horizon,
            "successes_in_horizon": self.successes_in_horizon,
            "value_in_horizon": self.value_in_horizon,
            "worker_hours": self.worker_hours,
            "value_per_worker_hour": self.value_per_worker_hour,
            "drained_hours": self.drained_us / US_PER_HOUR,
            "top_wanted": self.top_wanted,
            "top_reached": self.top_reached,
            "top_reached_hours": (
                None if self.top_reached_us is None else self.top_reached_us / US_PER_HOUR
            ),
            "curve": [list(point) for point in self.curve],
        }


def replay(
    engine: str, queue: np.ndarray, world: ReplayWorld, *, workers: int, horizon_us: int
) -> ReplayResult:
    """Drain ``queue`` (candidate indices, in order) with ``workers`` workers."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    n = len(queue)
    durations = world.duration_us[queue].tolist() if n else []
    ends = np.zeros(n, dtype=np.int64)
    free = [0] * min(workers, max(n, 1))
    heapq.heapify(free)
    # One heap operation per item: the earliest-free worker takes the next item.
    for i, d in enumerate(durations):
        t = heapq.heappop(free) + d
        ends[i] = t
        heapq.heappush(free, t)
    success = world.success[queue] if n else np.zeros(0, bool)
    value = np.where(success, world.value[queue], 0.0) if n else np.zeros(0)
    drained = int(ends.max()) if n else 0
    within = ends <= horizon_us
    value_h = float(value[within].sum())
    span = min(horizon_us, drained) if n else 0
    worker_hours = workers * span / US_PER_HOUR
    order = np.argsort(ends, kind="stable")
    cumulative = np.cumsum(value[order])
    # Up to the horizon, or to when the queue drained if sooner (flat afterwards).
    times = np.linspace(0, min(horizon_us, drained) if n else horizon_us, CURVE_POINTS + 1)
    upto = np.searchsorted(ends[order], times, side="right")
    curve = tuple(
        (float(t / US_PER_HOUR), float(cumulative[k - 1]) if k else 0.0)
        for t, k in zip(times.tolist(), upto.tolist(), strict=True)
    )
    position = {int(c): i for i, c in enumerate(queue.tolist())}
    top_ends = [int(ends[position[int(c)]]) for c in world.top.tolist() if int(c) in position]
    reached = len(top_ends)
    wanted = len(world.top)
    return ReplayResult(
        engine=engine,
        workers=workers,
        horizon_us=horizon_us,
        queued=n,
        runs_in_horizon=int(within.sum()),
        successes_in_horizon=int((within & success).sum()),
        value_in_horizon=value_h,
        worker_hours=worker_hours,
        value_per_worker_hour=value_h / worker_hours if worker_hours > 0 else 0.0,
        drained_us=drained,
        top_wanted=wanted,
        top_reached=reached,
        top_reached_us=max(top_ends) if reached == wanted and wanted else None,
        curve=curve,
    )
