"""The plan's ``SchedulingEngine``: a ``CandidateScore`` and a ``SchedulingDecision`` per candidate.

One code path serves both profiles; the configuration picks the estimator
methods and constants. The offset is the legacy's formula in its evaluation
order (``cost / ((ncv · p) · cv)`` with the sub-second part of the duration
counted twice in ``cost``), because that is what the Janitor's queue
understands and what parity demands; the plan's improvements live in the
estimators. Where the legacy would raise on a candidate, this engine still
decides it and its reasons say what the legacy would have done.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engines.model import (
    Candidate,
    CandidateKey,
    Dataset,
    Decision,
    ErrorInfo,
    NamedPublishPolicy,
    PolicyEntry,
    Schedule,
)
from engines.new.aggregates import Aggregates, aggregates_from_dataset
from engines.new.config import EngineConfig
from engines.new.dependencies import DependencyResolver
from engines.new.duration import DurationEstimator
from engines.new.success import SuccessProbabilityEstimator
from engines.queue_sim import QueueOverflow, QueueSimulator

log = logging.getLogger("engines.new")

#: The legacy's PUBLISH_MODE_VALUE keys: any other mode makes it raise KeyError.
LEGACY_PUBLISH_MODES = frozenset({"skip", "build-only", "push", "propose", "attempt-push", "bts"})
#: A worth at or below zero would make the offset meaningless (the legacy asserts);
#: such a candidate is priced as if its worth were this small.
WORTH_FLOOR = 1e-6


@dataclass(frozen=True, slots=True)
class PriorityFactor:
    name: str
    value: float


@dataclass(frozen=True, slots=True)
class CandidateScore:
    """The plan's score: its parts, and ``total`` = the queue offset (lower runs sooner)."""

    base_value: float | None
    publish_bonus: float
    first_run_bonus: float
    success_probability: float
    estimated_duration_us: int
    priority_factors: tuple[PriorityFactor, ...]
    total: float


@dataclass(frozen=True, slots=True)
class SchedulingDecision:
    candidate: Candidate
    score: CandidateScore
    reasons: tuple[str, ...]
    dependencies: tuple[CandidateKey, ...]
    #: Campaign dependencies that have not succeeded yet: the candidate is not queued.
    unmet_dependencies: tuple[str, ...] = ()
    total_previous_runs: int = 0
    value: float | None = None
    normalized_codebase_value: float | None = None
    context: str | None = None
    command: str | None = None
    #: What the legacy would have raised on this candidate, if anything.
    legacy_failure: str | None = None


class CodebaseNormalizer:
    """``min(value / max, 1.0)`` over every codebase (legacy §3), computed once per run."""

    def __init__(self, values: Sequence[tuple[str, int | None]], default: float) -> None:
        self.values = {name: (value or 0) for name, value in values}
        self.max_value = max(self.values.values()) if self.values else None
        self.default = default

    def normalized(self, codebase: str) -> tuple[float, str, str | None]:
        """(value, reason, what the legacy would raise)."""
        if self.max_value is None:
            return 1.0, "normalized codebase value 1.0: no codebase values known", None
        if self.max_value == 0:
            return (
                self.default,
                f"normalized codebase value {self.default:g}: every codebase value is 0 or NULL",
                "ZeroDivisionError: every codebase value is 0 or NULL",
            )
        value = min(self.values.get(codebase, 0.0) / self.max_value, 1.0)
        return value, "", None


@dataclass(frozen=True)
class EngineInputs:
    """Everything one bulk run reads, whichever way it was fetched."""

    as_of_us: int
    candidates: Sequence[Candidate]
    policies: Mapping[str, NamedPublishPolicy]
    normalizer: CodebaseNormalizer
    #: The candidate with an empty change set per (codebase, campaign): the legacy's re-read.
    plain_candidates: Mapping[tuple[str, str], Candidate]
    aggregates: Aggregates


def plain_candidate_index(candidates: Sequence[Candidate]) -> dict[tuple[str, str], Candidate]:
    return {(c.codebase, c.suite): c for c in candidates if not c.change_set}


class SchedulingEngine:
    """Decides candidates; ``schedule(dataset)`` is the harness's Engine interface."""

    def __init__(self, config: EngineConfig, *, name: str, profile: str) -> None:
        self.config = config
        self.name = name
        self.profile = profile
        self.metrics: Any = None  # a SchedulingMetrics, when observability is wanted

    # ------------------------------------------------------------ entry points

    def schedule(self, dataset: Dataset) -> Schedule:
        """Decide every candidate row of ``dataset`` (live datasets: aggregates from SQL)."""
        started = time.perf_counter()
        candidates = dataset.joined_candidates
        contexts = _candidate_contexts(dataset.candidates)
        if dataset.live_dsn is not None:
            from engines.new.live import read_only_connection

            with read_only_connection(dataset.live_dsn) as conn:
                from engines.new.aggregates import aggregates_from_database

                agg = aggregates_from_database(
                    conn,
                    self.config,
                    dataset.as_of,
                    candidate_groups=[(c.codebase, c.suite) for c in candidates],
                )
        else:
            agg = aggregates_from_dataset(dataset, self.config, contexts)
        aggregated = time.perf_counter()
        inputs = EngineInputs(
            as_of_us=dataset.as_of_us,
            candidates=candidates,
            policies=dataset.policy_by_name,
            normalizer=CodebaseNormalizer(
                [(c.name, c.value) for c in dataset.codebases],
                self.config.scheduling.default_normalized_codebase_value,
            ),
            plain_candidates=plain_candidate_index(dataset.candidates),
            aggregates=agg,
        )
        return self.schedule_inputs(
            inputs,
            queue=QueueSimulator(dataset.queue),
            as_of=dataset,
            started=started,
            aggregated=aggregated,
        )

    def schedule_inputs(
        self,
        inputs: EngineInputs,
        *,
        queue: QueueSimulator,
        as_of: Dataset | Any,
        started: float,
        aggregated: float,
    ) -> Schedule:
        decisions = self.decide_all(inputs, queue)
        finished = time.perf_counter()
        timings = {
            "aggregate_seconds": aggregated - started,
            "decide_seconds": finished - aggregated,
        }
        schedule = Schedule(
            engine=self.name,
            profile=self.profile,
            settings={**self.config.settings(), "aggregates_from": inputs.aggregates.origin},
            as_of=as_of.as_of,
            decisions=decisions,
            queue=queue.rows(),
            timings=timings,
            provenance=getattr(as_of, "provenance", None),
            notes=_notes(decisions),
        )
        elapsed = finished - started
        log.info(
            "scheduled %d candidates in %.3fs",
            len(decisions),
            elapsed,
            extra={
                "engine": self.name,
                "profile": self.profile,
                "candidate_count": len(decisions),
                "duration_seconds": elapsed,
                "queued": sum(1 for d in decisions if d.bucket is not None),
                "errors": sum(1 for d in decisions if d.error is not None),
                "aggregates_from": inputs.aggregates.origin,
            },
        )
        if self.metrics is not None:
            self.metrics.record_run(schedule, elapsed)
        return schedule

    # ---------------------------------------------------------------- the run

    def decide_all(self, inputs: EngineInputs, queue: QueueSimulator) -> list[Decision]:
        agg = inputs.aggregates
        resolver = DependencyResolver(
            self.config.campaign_dependencies, agg.debian_versions, config_file=self.config.source
        )
        success = SuccessProbabilityEstimator(self.config, resolver)
        duration = DurationEstimator(self.config)
        candidates: Sequence[Candidate] = inputs.candidates
        if self.config.campaign_dependencies:
            # Campaigns others depend on first; the sort is stable, so the legacy
            # order is kept within a campaign rank.
            candidates = sorted(candidates, key=lambda c: resolver.campaign_rank(c.suite))
        out: list[Decision] = []
        for candidate in candidates:
            try:
                decision = self.decide(candidate, inputs, resolver, success, duration)
            except Exception as exc:  # one candidate's bug must not stop the run
                log.exception("new engine failed on %s", candidate.key.label())
                out.append(_failed(candidate, exc))
                continue
            out.append(self.queue_decision(decision, queue))
        return out

    def decide(
        self,
        candidate: Candidate,
        inputs: EngineInputs,
        resolver: DependencyResolver,
        success: SuccessProbabilityEstimator,
        duration: DurationEstimator,
    ) -> SchedulingDecision:
        """Score one candidate; never raises for bad data (reasons say what happened)."""
        cfg = self.config.scheduling
        reasons: list[str] = []
        legacy: list[str] = []
        policy = inputs.policies.get(candidate.publish_policy or "")
        entries = None if policy is None else policy.per_branch_policy
        bonus, bonus_reason, bonus_legacy = self._publish_bonus(entries)
        if bonus_legacy:
            legacy.append(bonus_legacy)
        value: float | None
        if candidate.value is None:
            if entries:
                value = bonus
                legacy.append(
                    "TypeError: the candidate's value is NULL and its policy adds a bonus"
                )
                reasons.append(
                    f"value {_num(value)} = publish bonus {bonus_reason} (value NULL: taken as 0)"
                )
            else:
                value = None
        else:
            value = candidate.value + bonus if entries else candidate.value
            reasons.append(
                f"value {_num(value)} = candidate value {candidate.value} + publish bonus {bonus_reason}"
            )

        context, command = candidate.context, candidate.command
        candidate_value = value
        if value is None or candidate.success_chance is None or command is None:
            plain = inputs.plain_candidates.get((candidate.codebase, candidate.suite))
            if plain is None:
                legacy.append(
                    f"CandidateUnavailable: no candidate {candidate.suite}/{candidate.codebase} "
                    "without a change set to re-read"
                )
            else:
                if candidate_value is None:
                    candidate_value = plain.value
                context = context if context is not None else plain.context
                command = command if command is not None else plain.command
                reasons.append(
                    "re-read the candidate row without change set (a field was NULL), as the legacy does"
                )
        if value is None:
            reasons.append(
                f"value {candidate_value if candidate_value is not None else 'NULL'}: candidate value "
                "NULL and no publish bonus"
                + ("; taken from the re-read row" if candidate_value is not None else "")
            )

        ncv, ncv_reason, ncv_legacy = inputs.normalizer.normalized(candidate.codebase)
        if ncv_legacy:
            legacy.append(ncv_legacy)
        agg = inputs.aggregates
        group = agg.group(candidate.codebase, candidate.suite)
        est = success.estimate(agg, group, context)
        if est.legacy_failure:
            legacy.append(est.legacy_failure)
        if group is not None and agg.legacy_time_problem[group]:
            legacy.append(str(agg.legacy_time_problem[group]))
        dur = duration.estimate(agg, group, candidate.codebase, candidate.suite)

        ncv_eff = max(cfg.minimum_normalized_codebase_value, ncv)
        first_run = 0.0
        if candidate_value is None:
            cv: float = 1.0
            cv_reason = "candidate value 1.0: value unknown (no first-run bonus)"
        elif est.total == 0:
            cv = candidate_value + cfg.first_run_bonus
            first_run = cfg.first_run_bonus
            cv_reason = f"candidate value {_num(cv)} = {_num(candidate_value)} + first-run bonus {cfg.first_run_bonus:g} (no previous runs)"
        else:
            cv = candidate_value
            cv_reason = f"candidate value {_num(cv)} (has previous runs: no first-run bonus)"
        us = dur.duration_us
        # The legacy's timedelta arithmetic: total_seconds(), plus .microseconds again.
        cost = cfg.minimum_cost_ms + (1000.0 * (us / 1_000_000) + (us % 1_000_000) / 1000.0)
        worth = ncv_eff * est.probability * cv
        if not cv > 0.0 or not worth > 0.0 or not cost > 0.0 or us < 0:
            legacy.append(f"AssertionError: cost {cost:g}, worth {worth:g} (must be > 0)")
            worth_used = max(worth, WORTH_FLOOR) if math.isfinite(worth) else WORTH_FLOOR
            cost = max(cost, cfg.minimum_cost_ms)
            reasons.append(f"worth {worth:g} ≤ 0: priced at worth {worth_used:g} (lowest priority)")
        else:
            worth_used = worth
        offset = cfg.bulk_schedule_offset + cost / worth_used
        if not command:
            legacy.append("AssertionError: the candidate has no command")

        required = resolver.required_campaigns(candidate.suite)
        unmet = tuple(dep for dep in required if not _succeeded(agg, candidate.codebase, dep))
        reasons.extend(
            [
                cv_reason,
                ncv_reason
                or f"normalized codebase value {ncv:.6g} = min(value / max value, 1) "
                f"→ {ncv_eff:.6g} (floor {cfg.minimum_normalized_codebase_value:g})",
                est.reason,
                f"previous runs {est.total}: runs of {candidate.codebase}/{candidate.suite} "
                "not transient, worker failures older than "
                f"{self.config.success_estimation.ignore_worker_failures_older_than_days:g} d ignored",
                dur.reason,
                f"offset {offset:.6g} = {cfg.bulk_schedule_offset:g} + cost {cost:.6g} ms / "
                f"worth {worth_used:.6g} (ncv {ncv_eff:.4g} × p {est.probability:.4g} × value {_num(cv)})",
            ]
        )
        if unmet:
            reasons.append(
                f"not queued: campaign(s) {', '.join(unmet)} have not succeeded on {candidate.codebase} yet"
            )
        elif required:
            reasons.append(f"campaign dependencies met: {', '.join(required)}")
        if legacy:
            reasons.append("the legacy would raise here: " + "; ".join(dict.fromkeys(legacy)))
        factors = (
            PriorityFactor("cost", cost),
            PriorityFactor("worth", worth_used),
            PriorityFactor("normalized_codebase_value_effective", ncv_eff),
            PriorityFactor("candidate_value_effective", float(cv)),
            PriorityFactor("success_probability", est.probability),
            PriorityFactor("context_multiplier", est.multiplier),
            PriorityFactor("successes", float(est.successes)),
            PriorityFactor("deps_satisfied_runs", float(est.deps_satisfied_runs)),
        )
        score = CandidateScore(
            base_value=None if candidate.value is None else float(candidate.value),
            publish_bonus=bonus,
            first_run_bonus=first_run,
            success_probability=est.probability,
            estimated_duration_us=us,
            priority_factors=factors,
            total=offset,
        )
        return SchedulingDecision(
            candidate=candidate,
            score=score,
            reasons=tuple(reasons),
            dependencies=tuple(CandidateKey(candidate.codebase, dep, None) for dep in required),
            unmet_dependencies=unmet,
            total_previous_runs=est.total,
            value=value,
            normalized_codebase_value=ncv,
            context=context,
            command=command,
            legacy_failure="; ".join(dict.fromkeys(legacy)) if legacy else None,
        )

    def _publish_bonus(
        self, entries: tuple[PolicyEntry, ...] | None
    ) -> tuple[float, str, str | None]:
        """(bonus, how it was made, what the legacy would raise)."""
        if entries is None:
            return 0.0, "0 (no per-branch policy)", "TypeError: the publish policy is NULL"
        values = self.config.publish_mode_values
        total = 0.0
        parts: list[str] = []
        legacy: str | None = None
        for entry in entries:
            mode = entry.mode
            if mode not in LEGACY_PUBLISH_MODES and legacy is None:
                legacy = f"KeyError: {mode!r} (the legacy has no value for this publish mode)"
            bonus = values.get(mode, 0.0) if mode is not None else 0.0
            total += bonus
            parts.append(f"{mode}={bonus:g}")
        return total, f"{total:g} ({', '.join(parts) or 'no entries'})", legacy

    def queue_decision(self, decision: SchedulingDecision, queue: QueueSimulator) -> Decision:
        """Add the decision to the simulated queue table and turn it into a model Decision."""
        c = decision.candidate
        score = decision.score
        factors: dict[str, Any] = {f.name: f.value for f in score.priority_factors}
        reasons = list(decision.reasons)
        bucket: str | None = None
        error: ErrorInfo | None = None
        if decision.unmet_dependencies:
            factors["unmet_dependencies"] = list(decision.unmet_dependencies)
        elif decision.legacy_failure and not self.config.scheduling.queue_legacy_failures:
            reasons.append(
                "not queued: the legacy would have raised on this candidate "
                "(scheduling.queue_legacy_failures is false)"
            )
        else:
            try:
                _, bucket, priority = queue.add(
                    codebase=c.codebase,
                    campaign=c.suite,
                    command=decision.command or c.command,
                    offset=score.total,
                    bucket="default",
                    context=decision.context,
                    estimated_duration_us=score.estimated_duration_us,
                    refresh=False,
                    requester="scheduler",
                    change_set=None,  # the bulk run never queues a change set
                )
                factors["priority"] = priority
                reasons.append(
                    f"priority {priority} = current queue minimum + trunc(offset {score.total:.6g})"
                )
            except QueueOverflow as exc:
                error = ErrorInfo(
                    type="engines.queue_sim.QueueOverflow", message=str(exc), phase="queue"
                )
        if decision.legacy_failure:
            factors["legacy_failure"] = decision.legacy_failure
        return Decision(
            codebase=c.codebase,
            campaign=c.suite,
            change_set=c.change_set,
            context=decision.context,
            command=decision.command,
            candidate_value=c.value,
            value=_int_if_whole(decision.value),
            publish_bonus=score.publish_bonus,
            first_run_bonus=score.first_run_bonus,
            normalized_codebase_value=decision.normalized_codebase_value,
            success_probability=score.success_probability,
            estimated_duration_us=score.estimated_duration_us,
            total_previous_runs=decision.total_previous_runs,
            offset=score.total,
            bucket=bucket,
            error=error,
            factors=factors,
            reasons=tuple(reasons),
        )


def _failed(candidate: Candidate, exc: Exception) -> Decision:
    """The new engine's own failure on one candidate (the orchestrator may fall back)."""
    kind = type(exc)
    return Decision(
        codebase=candidate.codebase,
        campaign=candidate.suite,
        change_set=candidate.change_set,
        context=candidate.context,
        command=candidate.command,
        candidate_value=candidate.value,
        error=ErrorInfo(
            type=f"{kind.__module__}.{kind.__qualname__}", message=str(exc), phase="new-engine"
        ),
        reasons=(f"the new engine failed: {kind.__name__}: {exc}",),
    )


def _succeeded(agg: Aggregates, codebase: str, campaign: str) -> bool:
    group = agg.group(codebase, campaign)
    return group is not None and agg.successes[group] > 0


def _candidate_contexts(candidates: Sequence[Candidate]) -> set[str]:
    return {c.context for c in candidates if c.context}


def _num(value: float | int | None) -> str:
    if value is None:
        return "NULL"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _int_if_whole(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _notes(decisions: Sequence[Decision]) -> list[str]:
    differing = sum(1 for d in decisions if "legacy_failure" in d.factors)
    if not differing:
        return []
    return [
        f"{differing} candidate(s) would make the legacy raise; the new engine decided them "
        "anyway (see each decision's reasons)"
    ]
