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
from dataclasses import dataclass, field, fields
from itertools import repeat
from operator import attrgetter
from typing import Any, NamedTuple

import numpy as np

from engines.bulk import bulk_allocation, columnwise_builder
from engines.model import (
    Candidate,
    CandidateKey,
    Dataset,
    Decision,
    ErrorInfo,
    NamedPublishPolicy,
    Schedule,
)
from engines.new.aggregates import (
    Aggregates,
    aggregates_from_dataset,
)
from engines.new.config import EngineConfig
from engines.new.dependencies import DependencyResolver
from engines.new.duration import DurationEstimate, DurationEstimator
from engines.new.success import SuccessEstimate, SuccessProbabilityEstimator
from engines.queue_sim import QueueOverflow, QueueSimulator

log = logging.getLogger("engines.new")

#: The legacy's PUBLISH_MODE_VALUE keys: any other mode makes it raise KeyError.
LEGACY_PUBLISH_MODES = frozenset({"skip", "build-only", "push", "propose", "attempt-push", "bts"})
#: A worth at or below zero would make the offset meaningless (the legacy asserts);
#: such a candidate is priced as if its worth were this small.
WORTH_FLOOR = 1e-6


class CandidateScore(NamedTuple):
    """The plan's score: its parts, and ``total`` = the queue offset (lower runs sooner).

    NamedTuples rather than frozen dataclasses here and below: equally
    immutable, and a bulk run builds one per candidate.
    """

    base_value: float | None
    publish_bonus: float
    first_run_bonus: float
    success_probability: float
    estimated_duration_us: int
    #: The named quantities behind ``total`` (cost, worth, multiplier, …); a fresh
    #: dict per candidate, which becomes its Decision's ``factors``.
    priority_factors: dict[str, Any]
    total: float


class Estimates(NamedTuple):
    """One candidate's run group and estimates, worked out for many candidates at once."""

    group: int | None
    #: (normalized codebase value, reason, what the legacy would raise)
    normalized: tuple[float, str, str | None]
    success: SuccessEstimate
    duration: DurationEstimate


class SchedulingDecision(NamedTuple):
    candidate: Candidate
    score: CandidateScore
    #: A list while the decision is being made; the model Decision gets a tuple.
    reasons: list[str]
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
        #: Every value is a double exactly, so dividing doubles divides the integers.
        self._exact = all(-(2**53) < v < 2**53 for v in self.values.values())

    def normalized_all(self, codebases: Sequence[str]) -> list[tuple[float, str, str | None]]:
        """:meth:`normalized` of many codebases, the division on an array."""
        if not self.max_value or not self._exact:  # (no values, or all 0: the same for all)
            return list(map(self.normalized, codebases))
        get, largest = self.values.get, self.max_value
        values = np.minimum(
            np.fromiter(map(get, codebases, repeat(0.0)), np.float64) / largest, 1.0
        )
        return list(zip(values.tolist(), repeat(""), repeat(None)))

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
    #: Install-deps verdicts computed elsewhere (a worker process), by failure_details text.
    verdicts: Mapping[str, tuple[bool, str | None]] | None = None
    #: Publish bonus per policy name, filled as candidates are decided.
    bonus_cache: dict[str | None, tuple[float, str, str | None, bool]] = field(default_factory=dict)


def plain_candidate_index(candidates: Sequence[Candidate]) -> dict[tuple[str, str], Candidate]:
    return {(c.codebase, c.suite): c for c in candidates if not c.change_set}


class SchedulingEngine:
    """Decides candidates; ``schedule(dataset)`` is the harness's Engine interface."""

    def __init__(self, config: EngineConfig, *, name: str, profile: str) -> None:
        self.config = config
        self.name = name
        self.profile = profile
        self.metrics: Any = None  # a SchedulingMetrics, when observability is wanted
        s, e = config.scheduling, config.success_estimation
        self._r_first_run = (
            f"candidate value = value + first-run bonus {s.first_run_bonus:g} (no previous runs)"
        )
        self._r_ncv = (
            "normalized codebase value = min(codebase value / largest codebase value, 1), "
            f"floored at {s.minimum_normalized_codebase_value:g} for the offset"
        )
        self._r_runs = (
            "previous runs: this codebase and campaign's runs, failure_transient not true, "
            f"worker failures at least {e.ignore_worker_failures_older_than_days:g} day(s) old ignored"
        )
        self._r_offset = (
            f"offset = {s.bulk_schedule_offset:g} + cost / worth; cost = {s.minimum_cost_ms:g} ms + "
            "1000 × duration in seconds + its sub-second µs / 1000 (counted twice, as the legacy); "
            "worth = normalized codebase value × probability × candidate value"
        )

    # ------------------------------------------------------------ entry points

    def schedule(self, dataset: Dataset) -> Schedule:
        """Decide every candidate row of ``dataset``, aggregating its runs in memory.

        Reading a live database or a snapshot directory is the front door's
        business (:mod:`engines.new.engine`); this module only decides.
        """
        with bulk_allocation(freeze=True):
            started = time.perf_counter()
            contexts = _candidate_contexts(dataset.candidates)
            agg = aggregates_from_dataset(dataset, self.config, contexts)
            return self.schedule_aggregated(dataset, agg, started=started)

    def schedule_aggregated(
        self,
        dataset: Dataset,
        agg: Aggregates,
        *,
        started: float,
        verdicts: Mapping[str, tuple[bool, str | None]] | None = None,
    ) -> Schedule:
        """Decide ``dataset``'s candidates once the aggregates are known (any source).

        The cyclic GC waits meanwhile, whoever the caller: the run builds
        hundreds of thousands of objects, none of them cyclic.
        """
        with bulk_allocation(freeze=True):
            return self._schedule_aggregated(dataset, agg, started=started, verdicts=verdicts)

    def _schedule_aggregated(
        self,
        dataset: Dataset,
        agg: Aggregates,
        *,
        started: float,
        verdicts: Mapping[str, tuple[bool, str | None]] | None,
    ) -> Schedule:
        aggregated = time.perf_counter()
        inputs = EngineInputs(
            as_of_us=dataset.as_of_us,
            candidates=dataset.joined_candidates,
            policies=dataset.policy_by_name,
            normalizer=CodebaseNormalizer(
                [(c.name, c.value) for c in dataset.codebases],
                self.config.scheduling.default_normalized_codebase_value,
            ),
            plain_candidates=plain_candidate_index(dataset.candidates),
            aggregates=agg,
            verdicts=verdicts,
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
        rows = queue.rows()
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
            queue=rows,
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
        success = SuccessProbabilityEstimator(self.config, resolver, inputs.verdicts)
        duration = DurationEstimator(self.config)
        candidates: Sequence[Candidate] = inputs.candidates
        if self.config.campaign_dependencies:
            # Campaigns others depend on first; the sort is stable, so the legacy
            # order is kept within a campaign rank.
            candidates = sorted(candidates, key=lambda c: resolver.campaign_rank(c.suite))
        try:
            known: list[Any] = self._estimate_all(candidates, inputs, success, duration)
        except Exception:  # a row the bulk estimates choke on: each candidate on its own
            log.debug("new engine: bulk estimates failed, deciding one by one", exc_info=True)
            known = [None] * len(candidates)
        rows: list[tuple[Any, ...]] = []  # each Decision's fields, built all at once below
        failed: list[Decision] = []
        for candidate, estimates in zip(candidates, known, strict=True):
            try:
                decision = self.decide(
                    candidate, inputs, resolver, success, duration, estimates=estimates
                )
            except Exception as exc:  # one candidate's bug must not stop the run
                # the traceback for whoever debugs; one summary line for everyone else
                log.debug("new engine failed on %s", candidate.key.label(), exc_info=True)
                failed.append(_failed(candidate, exc))
                rows.append(_DECISION_FIELDS(failed[-1]))
                continue
            rows.append(self._queued_fields(decision, queue))
        out: list[Decision] = _build_decisions(list(zip(*rows, strict=True))) if rows else []
        if failed:
            first = failed[0]
            log.warning(
                "new engine failed on %d candidate(s) (recorded as error decisions), first %s: %s",
                len(failed),
                first.key.label(),
                first.reasons[0],
                extra={"candidate_failures": len(failed)},
            )
        return out

    def _estimate_all(
        self,
        candidates: Sequence[Candidate],
        inputs: EngineInputs,
        success: SuccessProbabilityEstimator,
        duration: DurationEstimator,
    ) -> list[Estimates]:
        """Every candidate's :class:`Estimates`, worked out together (the estimators'
        bulk methods), for :meth:`decide` to take instead of asking one by one."""
        agg = inputs.aggregates
        codebases = [c.codebase for c in candidates]
        campaigns = [c.suite for c in candidates]
        index = agg.group_index
        groups = [index.get(key) for key in zip(codebases, campaigns, strict=True)]
        # a re-read only ever fills in a missing context, and needs a field to be NULL
        contexts = [
            c.context
            if c.context is not None
            or (c.value is not None and c.success_chance is not None and c.command is not None)
            else self._reread(c, inputs)[1]
            for c in candidates
        ]
        return list(
            map(
                tuple.__new__,
                repeat(Estimates),
                zip(
                    groups,
                    inputs.normalizer.normalized_all(codebases),
                    success.estimate_all(agg, groups, contexts),
                    duration.estimate_all(agg, groups, codebases, campaigns),
                    strict=True,
                ),
            )
        )

    def _bonus(
        self, inputs: EngineInputs, policy: str | None
    ) -> tuple[float, str, str | None, bool]:
        """:meth:`_publish_bonus`, once per policy and run."""
        cached = inputs.bonus_cache.get(policy)
        if cached is None:
            cached = inputs.bonus_cache[policy] = self._publish_bonus(inputs.policies, policy)
        return cached

    def _reread(
        self, candidate: Candidate, inputs: EngineInputs
    ) -> tuple[Candidate | None, str | None]:
        """The row without change set the legacy re-reads when a field it needs is
        NULL (``None`` when it does not, or finds none), and the context it ends up with."""
        has_entries = self._bonus(inputs, candidate.publish_policy)[3]
        context = candidate.context
        if (
            (candidate.value is None and not has_entries)
            or candidate.success_chance is None
            or candidate.command is None
        ):
            plain = inputs.plain_candidates.get((candidate.codebase, candidate.suite))
            if plain is not None and context is None:
                context = plain.context
            return plain, context
        return None, context

    def decide(
        self,
        candidate: Candidate,
        inputs: EngineInputs,
        resolver: DependencyResolver,
        success: SuccessProbabilityEstimator,
        duration: DurationEstimator,
        *,
        estimates: Estimates | None = None,
    ) -> SchedulingDecision:
        """Score one candidate; never raises for bad data (reasons say what happened).

        Reasons name the rule or fallback behind each number; the numbers
        themselves are in the decision's fields and factors. Most reasons are
        shared constant strings, which keeps 100,000 decisions cheap.
        ``estimates``: this candidate's, worked out in bulk (else asked for here).
        """
        cfg = self.config.scheduling
        reasons: list[str] = []
        legacy: list[str] = []
        bonus, bonus_reason, bonus_legacy, has_entries = self._bonus(
            inputs, candidate.publish_policy
        )
        if bonus_legacy:
            legacy.append(bonus_legacy)
        value: float | None
        if candidate.value is None:
            if has_entries:
                value = bonus
                legacy.append(_LEGACY_NULL_VALUE)
                reasons.append(_R_VALUE_NULL + bonus_reason)
            else:
                value = None
        else:
            value = candidate.value + bonus if has_entries else candidate.value
            reasons.append(bonus_reason)

        command = candidate.command
        candidate_value = value
        if value is None or candidate.success_chance is None or command is None:
            plain, context = self._reread(candidate, inputs)
            if plain is None:
                legacy.append(
                    f"CandidateUnavailable: no candidate {candidate.suite}/{candidate.codebase} "
                    "without a change set to re-read"
                )
            else:
                if candidate_value is None:
                    candidate_value = plain.value
                if command is None:
                    command = plain.command
                reasons.append(_R_REREAD)
        else:
            context = candidate.context
        if value is None:
            reasons.append(_R_VALUE_REREAD if candidate_value is not None else _R_VALUE_UNKNOWN)

        agg = inputs.aggregates
        if estimates is None:
            group = agg.group_index.get((candidate.codebase, candidate.suite))
            ncv, ncv_reason, ncv_legacy = inputs.normalizer.normalized(candidate.codebase)
            est = success.estimate(agg, group, context)
            dur = duration.estimate(agg, group, candidate.codebase, candidate.suite)
        else:
            group, (ncv, ncv_reason, ncv_legacy), est, dur = estimates
        if ncv_legacy:
            legacy.append(ncv_legacy)
        if est.legacy_failure:
            legacy.append(est.legacy_failure)
        if group is not None:
            problem = agg.legacy_time_problem[group]
            if problem:
                legacy.append(problem)

        minimum = cfg.minimum_normalized_codebase_value
        ncv_eff = ncv if ncv > minimum else minimum
        first_run = 0.0
        if candidate_value is None:
            cv: float = 1.0
            cv_reason = _R_CV_UNKNOWN
        elif est.total == 0:
            cv = candidate_value + cfg.first_run_bonus
            first_run = cfg.first_run_bonus
            cv_reason = self._r_first_run
        else:
            cv = candidate_value
            cv_reason = _R_CV_PLAIN
        us = dur.duration_us
        # The legacy's timedelta arithmetic: total_seconds(), plus .microseconds again.
        cost = cfg.minimum_cost_ms + (1000.0 * (us / 1_000_000) + (us % 1_000_000) / 1000.0)
        worth = ncv_eff * est.probability * cv
        worth_used = worth
        if not cv > 0.0 or not worth > 0.0 or not cost > 0.0 or us < 0:
            legacy.append(f"AssertionError: cost {cost:g}, worth {worth:g} (must be > 0)")
            worth_used = max(worth, WORTH_FLOOR) if math.isfinite(worth) else WORTH_FLOOR
            cost = max(cost, cfg.minimum_cost_ms)
            reasons.append(f"worth {worth:g} ≤ 0: priced at worth {worth_used:g} (lowest priority)")
        offset = cfg.bulk_schedule_offset + cost / worth_used
        if not command:
            legacy.append("AssertionError: the candidate has no command")

        required = resolver.required_campaigns(candidate.suite)
        unmet = (
            tuple(dep for dep in required if not _succeeded(agg, candidate.codebase, dep))
            if required
            else ()
        )
        reasons += (
            cv_reason,
            ncv_reason or self._r_ncv,
            est.reason,
            self._r_runs,
            dur.reason,
            self._r_offset,
        )
        if unmet:
            reasons.append(
                f"not queued: campaign(s) {', '.join(unmet)} have not succeeded on "
                f"{candidate.codebase} yet"
            )
        elif required:
            reasons.append(f"campaign dependencies met: {', '.join(required)}")
        legacy_failure = None
        if legacy:
            legacy_failure = "; ".join(dict.fromkeys(legacy))
            reasons.append("the legacy would raise here: " + legacy_failure)
        # Positional here and below (a third of the cost of keywords, 100,000 times).
        score = CandidateScore(
            None if candidate.value is None else float(candidate.value),  # base_value
            bonus,
            first_run,
            est.probability,
            us,  # estimated_duration_us
            {  # priority_factors
                "cost": cost,
                "worth": worth_used,
                "normalized_codebase_value_effective": ncv_eff,
                "candidate_value_effective": float(cv),
                "success_probability": est.probability,
                "context_multiplier": est.multiplier,
                "successes": float(est.successes),
                "deps_satisfied_runs": float(est.deps_satisfied_runs),
                "same_context": est.same_context,
                "ignored_worker_failures": 0 if group is None else agg.ignored[group],
                "duration_source": dur.source,
            },
            offset,  # total
        )
        return SchedulingDecision(
            candidate,
            score,
            reasons,
            tuple(CandidateKey(candidate.codebase, dep, None) for dep in required)
            if required
            else (),  # dependencies
            unmet,  # unmet_dependencies
            est.total,  # total_previous_runs
            value,
            ncv,  # normalized_codebase_value
            context,
            command,
            legacy_failure,
        )

    def _publish_bonus(
        self, policies: Mapping[str, NamedPublishPolicy], name: str | None
    ) -> tuple[float, str, str | None, bool]:
        """(bonus, reason, what the legacy would raise, has entries) of one policy."""
        policy = policies.get(name or "")
        entries = None if policy is None else policy.per_branch_policy
        result: tuple[float, str, str | None, bool]
        if entries is None:
            result = (
                0.0,
                "value: candidate value, no publish bonus (the policy has no per-branch entries)",
                "TypeError: the publish policy's per_branch_policy is NULL",
                False,
            )
        else:
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
            reason = (
                f"value: candidate value + publish bonus {total:g} of policy {name} "
                f"({', '.join(parts) or 'no entries'})"
            )
            result = (total, reason, legacy, bool(entries))
        return result

    def queue_decision(self, decision: SchedulingDecision, queue: QueueSimulator) -> Decision:
        """Add the decision to the simulated queue table and turn it into a model Decision."""
        return Decision(*self._queued_fields(decision, queue))

    def _queued_fields(
        self, decision: SchedulingDecision, queue: QueueSimulator
    ) -> tuple[Any, ...]:
        """:meth:`queue_decision`, but the Decision's fields, in order (a bulk run
        builds its Decisions all at once: :func:`engines.bulk.columnwise_builder`)."""
        c = decision.candidate
        score = decision.score
        factors = score.priority_factors  # this decision's own: no copy
        reasons = decision.reasons
        bucket: str | None = None
        error: ErrorInfo | None = None
        if decision.unmet_dependencies:
            factors["unmet_dependencies"] = list(decision.unmet_dependencies)
        elif decision.legacy_failure and not self.config.scheduling.queue_legacy_failures:
            reasons.append(_R_NOT_QUEUED_LEGACY)
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
                reasons.append(_R_PRIORITY)
            except QueueOverflow as exc:
                error = ErrorInfo(
                    type="engines.queue_sim.QueueOverflow", message=str(exc), phase="queue"
                )
        if decision.legacy_failure:
            factors["legacy_failure"] = decision.legacy_failure
        return (
            c.codebase,
            c.suite,
            c.change_set,
            decision.context,
            decision.command,
            c.value,  # candidate_value
            _int_if_whole(decision.value),
            score.publish_bonus,
            score.first_run_bonus,
            decision.normalized_codebase_value,
            score.success_probability,
            score.estimated_duration_us,
            decision.total_previous_runs,
            score.total,  # offset
            bucket,
            error,
            factors,
            tuple(reasons),
        )


_DECISION_NAMES = tuple(f.name for f in fields(Decision))
_DECISION_FIELDS = attrgetter(*_DECISION_NAMES)
_build_decisions = columnwise_builder(Decision, _DECISION_NAMES)

_LEGACY_NULL_VALUE = "TypeError: the candidate's value is NULL and its policy adds a bonus"
_R_VALUE_NULL = "candidate value NULL, taken as 0; "
_R_REREAD = "re-read the candidate row without change set (a field was NULL), as the legacy does"
_R_VALUE_REREAD = "value NULL and no publish bonus: candidate value taken from the re-read row"
_R_VALUE_UNKNOWN = "value NULL and no publish bonus"
_R_CV_UNKNOWN = "candidate value 1.0: the value is unknown (and no first-run bonus)"
_R_CV_PLAIN = "candidate value = value (previous runs exist: no first-run bonus)"
_R_PRIORITY = "priority = current queue minimum + trunc(offset) (queue table semantics)"
_R_NOT_QUEUED_LEGACY = (
    "not queued: the legacy would have raised on this candidate "
    "(scheduling.queue_legacy_failures is false)"
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
