"""The plan's section 4.1 orchestration modes, as library API.

* ``new`` — the new engine alone;
* ``fallback`` — the new engine, and every candidate it fails on (an error
  decision, or the whole run raising) is decided by the legacy instead; the
  queue is then rebuilt from the merged decisions in processing order, and
  the number of fallbacks is counted (result, notes, metrics);
* ``shadow`` — an experiment in the manner of GitHub's Scientist: the legacy
  is the *control*, the new engine the *candidate*. The control's schedule is
  always returned, whatever the candidate does: an exception of the
  candidate, whole-run or on one candidate, is caught, logged, counted
  (metrics, result, the schedule's notes) and never propagated. The two run
  in a random order (seedable), the candidate only on a sampled share of runs,
  and their schedules are compared by the harness's own comparator
  (:class:`harness.comparison.shadow.HarnessComparator`: tolerances, waivers, noise).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from engines.base import Engine
from engines.model import CandidateKey, Dataset, Decision, Schedule
from engines.queue_sim import QueueOverflow, QueueSimulator

if TYPE_CHECKING:
    from harness.comparison.comparison_model import Comparison

log = logging.getLogger("engines.new.orchestrator")

#: ``(control engine, dataset, control schedule, candidate schedule) -> comparison``.
Comparator = Callable[[Engine, Dataset, Schedule, Schedule], "Comparison"]


class OrchestrationMode(Enum):
    NEW_ONLY = "new"
    FALLBACK = "fallback"
    SHADOW = "shadow"


@dataclass(frozen=True)
class CandidateFailure:
    """The new engine raised: on the whole run (``key`` None) or on one candidate."""

    error: str
    key: CandidateKey | None = None

    @property
    def scope(self) -> str:
        return "run" if self.key is None else "candidate"

    @property
    def where(self) -> str:
        return "whole run" if self.key is None else self.key.label()


@dataclass(frozen=True)
class OrchestrationResult:
    mode: OrchestrationMode
    schedule: Schedule
    fallback_keys: tuple[CandidateKey, ...] = ()
    #: Shadow: the harness comparator's verdict on the new engine's schedule
    #: (``None`` when the new engine did not run, raised, or the comparison failed).
    comparison: Comparison | None = None
    #: The other engine's schedule (shadow: the new engine's).
    shadow_schedule: Schedule | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: Every exception of the new engine this run survived.
    failures: tuple[CandidateFailure, ...] = ()
    #: Shadow: whether the sample chose this run for the new engine.
    sampled: bool = True
    #: Shadow: which engine ran first (``("control", "candidate")`` or reversed).
    order: tuple[str, ...] = ()
    #: Shadow: the comparator itself raised (the control's schedule still stands).
    comparison_error: str | None = None

    @property
    def fallback_count(self) -> int:
        return len(self.fallback_keys)

    @property
    def run_failed(self) -> bool:
        return any(f.key is None for f in self.failures)

    @property
    def candidate_failures(self) -> int:
        return sum(1 for f in self.failures if f.key is not None)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class SchedulingOrchestrator:
    """Runs the new engine under one mode. Shadow-only knobs: ``comparator``
    (default: the harness comparator, default tolerances, no waivers, no
    noise), ``sample`` (percent of runs on which the new engine runs at all)
    and ``seed`` (the order and the sample; ``None``: fresh randomness)."""

    def __init__(
        self,
        new_engine: Engine,
        legacy_engine: Engine,
        mode: OrchestrationMode | str,
        *,
        metrics: Any = None,
        comparator: Comparator | None = None,
        sample: float = 100.0,
        seed: int | None = None,
    ) -> None:
        self.new_engine = new_engine
        self.legacy_engine = legacy_engine
        self.mode = OrchestrationMode(mode)
        self.metrics = metrics
        self.comparator = comparator
        self.sample = sample
        self.rng = random.Random(seed)

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
            failure = CandidateFailure(_describe(exc))
            self._record_failures((failure,))
            log.debug("the new engine's traceback", exc_info=True)
            legacy = self.legacy_engine.schedule(dataset)
            keys = tuple(d.key for d in legacy.decisions)
            self._count(len(keys))
            legacy.notes.append(
                f"fallback: the new engine raised ({failure.error}); "
                f"the legacy decided all {len(keys)} candidates"
            )
            return OrchestrationResult(self.mode, legacy, keys, failures=(failure,))
        failures = tuple(
            CandidateFailure(f"{d.error.type}: {d.error.message}", d.key)
            for d in new.decisions
            if d.error is not None
        )
        failed = [f.key for f in failures if f.key is not None]
        if not failed:
            return OrchestrationResult(self.mode, new)
        self._record_failures(failures)
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
        return OrchestrationResult(self.mode, schedule, tuple(failed), failures=failures)

    def _count(self, n: int) -> None:
        if self.metrics is not None and n:
            self.metrics.fallbacks.labels(self.new_engine.name).inc(n)

    def _record_failures(self, failures: tuple[CandidateFailure, ...]) -> None:
        """The metric and the log line of the new engine's exceptions."""
        if not failures:
            return
        mode = self.mode.value
        for scope in ("run", "candidate"):
            n = sum(1 for f in failures if f.scope == scope)
            if n and self.metrics is not None:
                self.metrics.new_engine_failures.labels(self.new_engine.name, mode, scope).inc(n)
        first = failures[0]
        log.warning(
            "%s: the new engine %s failed %d time(s), first (%s): %s",
            mode,
            self.new_engine.name,
            len(failures),
            first.where,
            first.error,
            extra={"mode": mode, "scope": first.scope, "failures": len(failures)},
        )

    # -------------------------------------------------------------- shadow

    def _shadow(self, dataset: Dataset) -> OrchestrationResult:
        sampled = self.rng.random() * 100.0 < self.sample
        order = ("candidate", "control") if self.rng.random() < 0.5 else ("control", "candidate")
        timings: dict[str, float] = {}
        control: Schedule | None = None
        candidate: Schedule | None = None
        failures: tuple[CandidateFailure, ...] = ()
        for role in order if sampled else ("control",):
            started = time.perf_counter()
            if role == "control":
                control = self.legacy_engine.schedule(dataset)
                timings["legacy_seconds"] = time.perf_counter() - started
                continue
            try:
                candidate = self.new_engine.schedule(dataset)
            except Exception as exc:
                failures = (CandidateFailure(_describe(exc)),)
                log.debug("the new engine's traceback", exc_info=True)
            timings["new_seconds"] = time.perf_counter() - started
        assert control is not None
        if candidate is not None:
            failures = _candidate_failures(control, candidate)
        self._record_failures(failures)
        comparison: Comparison | None = None
        comparison_error: str | None = None
        if candidate is not None:
            started = time.perf_counter()
            try:
                comparison = (self.comparator or _default_comparator)(
                    self.legacy_engine, dataset, control, candidate
                )
            except Exception as exc:
                comparison_error = _describe(exc)
                log.warning(
                    "shadow: comparing the two schedules failed: %s",
                    comparison_error,
                    extra={"mode": "shadow", "error": comparison_error},
                )
            timings["compare_seconds"] = time.perf_counter() - started
        self._record_shadow(sampled, failures, comparison, comparison_error)
        control.notes.append(
            _shadow_note(self.new_engine.name, sampled, failures, comparison, comparison_error)
        )
        log.info(
            "shadow run",
            extra={
                "mode": "shadow",
                "candidate_count": len(control.decisions),
                "sampled": sampled,
                "order": "→".join(order) if sampled else "control",
                "failures": len(failures),
                "verdict": None if comparison is None else comparison.verdict,
                "real_divergences": None if comparison is None else comparison.real,
                **timings,
            },
        )
        return OrchestrationResult(
            self.mode,
            control,
            comparison=comparison,
            shadow_schedule=candidate,
            timings=timings,
            failures=failures,
            sampled=sampled,
            order=order if sampled else ("control",),
            comparison_error=comparison_error,
        )

    def _record_shadow(
        self,
        sampled: bool,
        failures: tuple[CandidateFailure, ...],
        comparison: Comparison | None,
        comparison_error: str | None,
    ) -> None:
        if self.metrics is None:
            return
        if not sampled:
            outcome = "skipped"
        elif any(f.key is None for f in failures) or comparison_error is not None:
            outcome = "failed"
        else:
            outcome = "compared"
        name = self.new_engine.name
        self.metrics.shadow_runs.labels(name, outcome).inc()
        if comparison is not None:
            self.metrics.shadow_divergences.labels(name).inc(comparison.real)


def _default_comparator(
    control_engine: Engine, dataset: Dataset, control: Schedule, candidate: Schedule
) -> Comparison:
    from harness.comparison.shadow import HarnessComparator

    return HarnessComparator()(control_engine, dataset, control, candidate)


def _candidate_failures(control: Schedule, candidate: Schedule) -> tuple[CandidateFailure, ...]:
    """The candidate's error decisions the control does not share (same key, same error
    type): those are the new engine's own exceptions, not a mirror of the legacy's."""
    control_errors = {d.key: d.error.type for d in control.decisions if d.error is not None}
    return tuple(
        CandidateFailure(f"{d.error.type}: {d.error.message}", d.key)
        for d in candidate.decisions
        if d.error is not None and control_errors.get(d.key) != d.error.type
    )


def _shadow_note(
    name: str,
    sampled: bool,
    failures: tuple[CandidateFailure, ...],
    comparison: Comparison | None,
    comparison_error: str | None,
) -> str:
    if not sampled:
        return f"shadow: {name} did not run (not sampled this run); this is the legacy's schedule"
    whole = next((f for f in failures if f.key is None), None)
    if whole is not None:
        return (
            f"shadow: {name} raised ({whole.error}); nothing compared; "
            "this is the legacy's schedule"
        )
    parts = [f"shadow: {name} ran alongside"]
    if failures:
        parts.append(f"it failed on {len(failures)} candidate(s)")
    if comparison is not None:
        parts.append(
            f"comparison {comparison.verdict.upper()}: {comparison.real} real, "
            f"{comparison.noise} noise, {comparison.waived} waived divergence(s)"
        )
    if comparison_error is not None:
        parts.append(f"the comparison failed ({comparison_error})")
    return "; ".join(parts) + "; this is the legacy's schedule"


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
