"""The plan's ``SuccessProbabilityEstimator``: how likely is the next run to succeed.

Two methods, chosen by ``success_estimation.method``:

* ``legacy`` — the legacy's formula, bit for bit: ``(10·s + 1) / (10·t + 1)``
  times a context multiplier (0.5 without context, 0.1 once a counted run
  had the candidate's context, 1.0 without runs);
* ``decayed`` — the plan's: relevant runs (in the history window, not a
  transient failure by flag or by result code, old worker failures
  ignored) weigh ``0.5 ** (age / half_life)``; the weighted success rate is
  smoothed towards ``default_success_probability`` by ``prior_weight`` runs,
  multiplied by the same context factors, and clamped to [0, 1]. Without
  relevant runs the answer is ``default_success_probability``.

In both, an install-deps failure whose dependency relations are satisfied
now counts as a success (``count_satisfied_dependencies_as_success``).
"""

from __future__ import annotations

from dataclasses import dataclass

from engines.new.aggregates import Aggregates, DepsRun
from engines.new.config import EngineConfig
from engines.new.dependencies import DependencyResolver


@dataclass(frozen=True, slots=True)
class SuccessEstimate:
    probability: float
    #: Runs the legacy counts (``total_previous_runs``).
    total: int
    successes: float
    multiplier: float
    deps_satisfied_runs: int
    reason: str
    #: What the legacy would have raised on these runs, if anything.
    legacy_failure: str | None = None


@dataclass(frozen=True, slots=True)
class _DepsOutcome:
    satisfied_runs: int
    satisfied_weight: float
    other_weight: float
    same_context: bool
    legacy_failure: str | None


class SuccessProbabilityEstimator:
    def __init__(self, config: EngineConfig, resolver: DependencyResolver) -> None:
        self.settings = config.success_estimation
        self.resolver = resolver

    def estimate(self, agg: Aggregates, group: int | None, context: str | None) -> SuccessEstimate:
        s = self.settings
        if group is None:
            total, successes, same, deps = 0, 0, False, _DepsOutcome(0, 0.0, 0.0, False, None)
        else:
            total, successes = agg.total[group], agg.successes[group]
            same = bool(context) and (group, context) in agg.context_hits
            runs = agg.deps_runs.get(group)
            deps = self._deps(runs, context) if runs else _DepsOutcome(0, 0.0, 0.0, False, None)
            same = same or deps.same_context
        if s.method == "legacy":
            return self._legacy(total, successes, same, deps, context)
        return self._decayed(agg, group, total, same, deps, context)

    def _multiplier(self, context: str | None, same: bool) -> tuple[float, str]:
        s = self.settings
        if same:
            return (
                s.same_context_multiplier,
                f"×{s.same_context_multiplier:g}: a previous run had the same context",
            )
        if context is None:
            return (
                s.no_context_multiplier,
                f"×{s.no_context_multiplier:g}: the candidate has no context",
            )
        return 1.0, "×1 (context not seen in previous runs)"

    def _legacy(
        self, total: int, successes: int, same: bool, deps: _DepsOutcome, context: str | None
    ) -> SuccessEstimate:
        success = successes + deps.satisfied_runs
        if total == 0:
            multiplier, why = 1.0, "×1 (no previous runs)"
        else:
            multiplier, why = self._multiplier(context, same)
        probability = (success * 10 + 1) / (total * 10 + 1) * multiplier
        reason = f"probability ({success}×10+1)/({total}×10+1) {why} [legacy formula]"
        if deps.satisfied_runs:
            reason += (
                f"; {deps.satisfied_runs} install-deps failure(s) now satisfied count as successes"
            )
        return SuccessEstimate(
            probability,
            total,
            success,
            multiplier,
            deps.satisfied_runs,
            reason,
            deps.legacy_failure,
        )

    def _decayed(
        self,
        agg: Aggregates,
        group: int | None,
        total: int,
        same: bool,
        deps: _DepsOutcome,
        context: str | None,
    ) -> SuccessEstimate:
        s = self.settings
        weight = deps.satisfied_weight + deps.other_weight
        won = deps.satisfied_weight
        if group is not None:
            weight += agg.weight_sum[group]
            won += agg.weighted_successes[group]
        if not weight > 0.0:
            return SuccessEstimate(
                s.default_success_probability,
                total,
                0.0,
                1.0,
                deps.satisfied_runs,
                f"probability {s.default_success_probability:g}: default, no relevant runs "
                f"in the last {s.historical_data_window_days} days",
                deps.legacy_failure,
            )
        multiplier, why = self._multiplier(context, same)
        rate = (won + s.prior_weight * s.default_success_probability) / (weight + s.prior_weight)
        probability = min(1.0, max(0.0, rate * multiplier))
        reason = (
            f"probability {probability:.6g} = decayed success rate ({won:.4g} of weight "
            f"{weight:.4g}, half-life {s.half_life_days:g} d, prior {s.default_success_probability:g}"
            f"×{s.prior_weight:g}) {why}, clamped to [0, 1]"
        )
        return SuccessEstimate(
            probability, total, won, multiplier, deps.satisfied_runs, reason, deps.legacy_failure
        )

    def _deps(self, runs: list[DepsRun], context: str | None) -> _DepsOutcome:
        """The install-deps failures of one group, newest first, as the legacy walks them."""
        satisfied = 0
        satisfied_weight = other_weight = 0.0
        same = False
        legacy_failure: str | None = None
        count = self.settings.count_satisfied_dependencies_as_success
        for run in runs:
            details = run.failure_details
            ok = False
            if details:
                if not isinstance(details, dict):
                    legacy_failure = legacy_failure or (
                        f"AttributeError: failure_details is a {type(details).__name__}, not an object"
                    )
                else:
                    relations = details.get("relations")
                    if relations:
                        verdict = self.resolver.relations_verdict(relations)
                        if verdict.legacy_failure and legacy_failure is None:
                            legacy_failure = verdict.legacy_failure
                        ok = verdict.satisfied and count
            if ok:
                satisfied += 1
                satisfied_weight += run.weight
            else:
                other_weight += run.weight
                if context and context in (run.instigated_context, run.context):
                    same = True
        return _DepsOutcome(satisfied, satisfied_weight, other_weight, same, legacy_failure)
