"""The plan's section 4.1 orchestration modes, as library API.

* ``new`` — the new engine alone;
* ``fallback`` — the new engine, and every candidate it fails on (an error
  decision, or the whole run raising) is decided by the legacy instead; the
  queue is then rebuilt from the merged decisions in processing order, and
  the number of fallbacks is counted (result, notes, metrics);
* ``shadow`` — both engines run on the same data, their decisions and queues
  are compared, and the **legacy's** schedule is returned.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from engines.base import Engine
from engines.model import CandidateKey, Dataset, Decision, Schedule
from engines.queue_sim import QueueOverflow, QueueSimulator

log = logging.getLogger("engines.new.orchestrator")

RELATIVE_TOLERANCE = 1e-9


class OrchestrationMode(Enum):
    NEW_ONLY = "new"
    FALLBACK = "fallback"
    SHADOW = "shadow"


@dataclass(frozen=True)
class ShadowComparison:
    """How far the new engine's run is from the legacy's, candidate by candidate."""

    candidates: int
    compared: int
    differing: tuple[CandidateKey, ...]
    legacy_errors: int
    new_errors: int
    queue_order_equal: bool

    @property
    def agree(self) -> bool:
        return not self.differing and self.queue_order_equal


@dataclass(frozen=True)
class OrchestrationResult:
    mode: OrchestrationMode
    schedule: Schedule
    fallback_keys: tuple[CandidateKey, ...] = ()
    comparison: ShadowComparison | None = None
    #: The other engine's schedule (shadow: the new engine's).
    shadow_schedule: Schedule | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def fallback_count(self) -> int:
        return len(self.fallback_keys)


class SchedulingOrchestrator:
    def __init__(
        self,
        new_engine: Engine,
        legacy_engine: Engine,
        mode: OrchestrationMode | str,
        *,
        metrics: Any = None,
    ) -> None:
        self.new_engine = new_engine
        self.legacy_engine = legacy_engine
        self.mode = OrchestrationMode(mode)
        self.metrics = metrics

    def schedule_candidates(self, dataset: Dataset) -> OrchestrationResult:
        if self.mode is OrchestrationMode.NEW_ONLY:
            return OrchestrationResult(self.mode, self.new_engine.schedule(dataset))
        if self.mode is OrchestrationMode.FALLBACK:
            return self._fallback(dataset)
        return self._shadow(dataset)

    # ------------------------------------------------------------ fallback

    def _fallback(self, dataset: Dataset) -> OrchestrationResult:
        try:
            new = self.new_engine.schedule(dataset)
        except Exception as exc:
            log.warning(
                "new engine failed, falling back to the legacy for the whole run: %s",
                exc,
                extra={"mode": "fallback", "error": f"{type(exc).__name__}: {exc}"},
            )
            legacy = self.legacy_engine.schedule(dataset)
            keys = tuple(d.key for d in legacy.decisions)
            self._count(len(keys))
            legacy.notes.append(
                f"fallback: the new engine raised ({type(exc).__name__}: {exc}); "
                f"the legacy decided all {len(keys)} candidates"
            )
            return OrchestrationResult(self.mode, legacy, keys)
        failed = [d.key for d in new.decisions if d.error is not None]
        if not failed:
            return OrchestrationResult(self.mode, new)
        legacy = self.legacy_engine.schedule(dataset)
        by_key = {d.key: d for d in legacy.decisions}
        merged: list[Decision] = []
        for decision in new.decisions:
            if decision.error is None:
                merged.append(decision)
                continue
            replacement = by_key.get(decision.key, decision)
            reasons = (*replacement.reasons, "decided by the legacy: the new engine failed here")
            merged.append(_with(replacement, reasons=reasons))
        schedule = Schedule(
            engine=f"{new.engine}+fallback:{legacy.engine}",
            profile=new.profile,
            settings={
                **new.settings,
                "orchestration": {"mode": "fallback", "fallbacks": len(failed)},
            },
            as_of=new.as_of,
            decisions=merged,
            queue=_rebuild_queue(dataset, merged),
            timings={**new.timings, **{f"legacy_{k}": v for k, v in legacy.timings.items()}},
            provenance=new.provenance,
            notes=[
                *new.notes,
                f"fallback: the legacy decided {len(failed)} candidate(s) the new engine failed on",
            ],
        )
        self._count(len(failed))
        log.info(
            "fallback run: %d of %d candidates decided by the legacy",
            len(failed),
            len(merged),
            extra={"mode": "fallback", "fallbacks": len(failed), "candidate_count": len(merged)},
        )
        return OrchestrationResult(self.mode, schedule, tuple(failed))

    def _count(self, n: int) -> None:
        if self.metrics is not None and n:
            self.metrics.fallbacks.labels(self.new_engine.name).inc(n)

    # -------------------------------------------------------------- shadow

    def _shadow(self, dataset: Dataset) -> OrchestrationResult:
        started = time.perf_counter()
        new = self.new_engine.schedule(dataset)
        middle = time.perf_counter()
        legacy = self.legacy_engine.schedule(dataset)
        finished = time.perf_counter()
        comparison = compare_schedules(legacy, new)
        legacy.notes.append(
            f"shadow: {new.engine} ran alongside; {len(comparison.differing)} of "
            f"{comparison.compared} compared candidates differ; queue order "
            + ("equal" if comparison.queue_order_equal else "differs")
        )
        log.info(
            "shadow run compared",
            extra={
                "mode": "shadow",
                "candidate_count": comparison.candidates,
                "differing": len(comparison.differing),
                "queue_order_equal": comparison.queue_order_equal,
                "new_seconds": middle - started,
                "legacy_seconds": finished - middle,
            },
        )
        return OrchestrationResult(
            self.mode,
            legacy,
            comparison=comparison,
            shadow_schedule=new,
            timings={"new_seconds": middle - started, "legacy_seconds": finished - middle},
        )


def _close(a: float | int | None, b: float | int | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0)


def compare_schedules(legacy: Schedule, new: Schedule) -> ShadowComparison:
    """Per-candidate agreement on the numbers (relative 1e-9) and the queue order."""
    new_by_key = {d.key: d for d in new.decisions}
    differing: list[CandidateKey] = []
    compared = 0
    for old in legacy.decisions:
        if old.error is not None:
            continue
        d = new_by_key.get(old.key)
        compared += 1
        if d is None or d.error is not None:
            differing.append(old.key)
            continue
        same = (
            d.total_previous_runs == old.total_previous_runs
            and d.estimated_duration_us == old.estimated_duration_us
            and _close(d.success_probability, old.success_probability)
            and _close(d.offset, old.offset)
        )
        if not same:
            differing.append(old.key)
    return ShadowComparison(
        candidates=len(legacy.decisions),
        compared=compared,
        differing=tuple(differing),
        legacy_errors=sum(1 for d in legacy.decisions if d.error is not None),
        new_errors=sum(1 for d in new.decisions if d.error is not None),
        queue_order_equal=[q.key for q in legacy.queue] == [q.key for q in new.queue],
    )


def _with(decision: Decision, **changes: Any) -> Decision:
    from dataclasses import replace

    return replace(decision, **changes)


def _rebuild_queue(dataset: Dataset, decisions: list[Decision]) -> list[Any]:
    """Replay the queue adds of the merged decisions, in processing order."""
    queue = QueueSimulator(dataset.queue)
    for d in decisions:
        if d.bucket is None or d.offset is None:
            continue
        try:
            queue.add(
                codebase=d.codebase,
                campaign=d.campaign,
                command=d.command or "",
                offset=d.offset,
                bucket=d.bucket,
                context=d.context,
                estimated_duration_us=d.estimated_duration_us,
                refresh=False,
                requester="scheduler",
                change_set=None,
            )
        except QueueOverflow:
            continue
    return queue.rows()
