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

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any, NamedTuple, TypeVar

import numpy as np
import orjson

from engines.new.aggregates import NO_DEPS, Aggregates, DepsOutcome, DepsRun
from engines.new.config import EngineConfig
from engines.new.dependencies import DependencyResolver

Key = TypeVar("Key", bound=Hashable)


class SuccessEstimate(NamedTuple):
    probability: float
    #: Runs the legacy counts (``total_previous_runs``).
    total: int
    successes: float
    multiplier: float
    deps_satisfied_runs: int
    reason: str
    #: What the legacy would have raised on these runs, if anything.
    legacy_failure: str | None = None
    #: A counted run had the candidate's context.
    same_context: bool = False


def details_verdict(resolver: DependencyResolver, details: Any) -> tuple[bool, str | None]:
    """(satisfied now, what the legacy would raise) for one decoded failure_details."""
    if not details:
        return False, None
    if not isinstance(details, dict):
        return False, (
            f"AttributeError: failure_details is a {type(details).__name__}, not an object"
        )
    relations = details.get("relations")
    if not relations:
        return False, None
    return resolver.verdict(relations)


def text_verdicts(
    texts: Iterable[str], debian_versions: Mapping[str, tuple[str, ...]] | None
) -> dict[str, tuple[bool, str | None]]:
    """:func:`details_verdict` of each failure_details JSON text, worked out ahead
    (in a worker, or a thread that would otherwise wait); campaign dependencies
    play no part in a verdict. A text whose verdict fails is left out: the
    engine meets the failure on the candidate, as it would have anyway."""
    resolver = DependencyResolver({}, debian_versions)
    verdicts: dict[str, tuple[bool, str | None]] = {}
    for text in set(texts):
        try:
            verdicts[text] = details_verdict(resolver, orjson.loads(text))
        except Exception:
            continue
    return verdicts


def _satisfied_note(runs: int) -> str:
    return f"; {runs} install-deps failure(s) now satisfied count as successes"


class SuccessProbabilityEstimator:
    def __init__(
        self,
        config: EngineConfig,
        resolver: DependencyResolver,
        verdicts: Mapping[str, tuple[bool, str | None]] | None = None,
    ) -> None:
        """``verdicts``: relation verdicts already known, by failure_details text."""
        self.settings = config.success_estimation
        self.resolver = resolver
        s = self.settings
        self._why = {
            "same": f"× {s.same_context_multiplier:g}: a previous run had the candidate's context",
            "none": f"× {s.no_context_multiplier:g}: the candidate has no context",
            "plain": "× 1: the candidate's context was not seen in previous runs",
            "first": "× 1: no previous runs",
        }
        self._legacy_reason = {
            key: f"probability = (10 × successes + 1) / (10 × previous runs + 1) {why} "
            "[legacy formula]"
            for key, why in self._why.items()
        }
        self._decayed_reason = {
            key: "probability = decayed success rate (weight 0.5^(age / "
            f"{s.half_life_days:g} days), runs of the last {s.historical_data_window_days} days, "
            f"transient result codes ignored, prior {s.default_success_probability:g} × "
            f"{s.prior_weight:g} run(s)) {why}, clamped to [0, 1]"
            for key, why in self._why.items()
        }
        self._default_reason = (
            f"probability {s.default_success_probability:g}: the default, no relevant runs "
            f"in the last {s.historical_data_window_days} days"
        )
        self._verdicts: dict[str | bytes, tuple[bool, str | None]] = {}
        if verdicts:
            self._verdicts.update(verdicts)

    def estimate(self, agg: Aggregates, group: int | None, context: str | None) -> SuccessEstimate:
        s = self.settings
        if group is None:
            total, successes, same, deps = 0, 0, False, NO_DEPS
        else:
            total, successes = agg.total[group], agg.successes[group]
            same = bool(context) and agg.context_hit(group, context)  # type: ignore[arg-type]
            runs = agg.deps_runs.get(group)
            if runs:
                deps = self._deps(runs, context)
                same = same or deps.same_context
            else:  # decided ahead, or none
                deps = agg.deps_outcomes.get(group, NO_DEPS)
        if s.method == "legacy":
            return self._legacy(total, successes, same, deps, context)
        return self._decayed(agg, group, total, same, deps, context)

    def estimate_all(
        self, agg: Aggregates, groups: Sequence[int | None], contexts: Sequence[str | None]
    ) -> list[SuccessEstimate]:
        """:meth:`estimate` of many candidates: the legacy formula on arrays, except
        where install-deps failures are left to walk (those one by one, as is the
        decayed method). Same numbers, same order of operations."""
        n = len(groups)
        if self.settings.method != "legacy" or n == 0 or not agg.total:
            return list(map(self.estimate, repeat(agg), groups, contexts))
        s = self.settings
        group = np.fromiter((-1 if g is None else g for g in groups), dtype=np.int64, count=n)
        known = group >= 0
        at = np.where(known, group, 0)
        total = np.where(known, np.asarray(agg.total, dtype=np.int64)[at], 0)
        successes = np.where(known, np.asarray(agg.successes, dtype=np.int64)[at], 0)
        outcomes = [NO_DEPS if g is None else agg.deps_outcomes.get(g, NO_DEPS) for g in groups]
        satisfied = np.fromiter((o.satisfied_runs for o in outcomes), dtype=np.int64, count=n)
        index, width = agg.context_index, len(agg.context_index)
        at_context = np.fromiter(
            (index.get(c, -1) if c else -1 for c in contexts), dtype=np.int64, count=n
        )
        matched = known & (at_context >= 0)
        same = matched & np.isin(group * width + at_context, agg.context_hits)
        without = np.fromiter((c is None for c in contexts), dtype=np.bool_, count=n)
        why = np.where(total == 0, 0, np.where(same, 1, np.where(without, 2, 3)))
        factors = np.array([1.0, s.same_context_multiplier, s.no_context_multiplier, 1.0])
        multiplier = factors[why]
        success = successes + satisfied
        probability = (success * 10 + 1) / (total * 10 + 1) * multiplier
        reasons = [self._legacy_reason[key] for key in ("first", "same", "none", "plain")]
        out = list(
            map(
                tuple.__new__,
                repeat(SuccessEstimate),
                zip(
                    probability.tolist(),
                    total.tolist(),
                    success.tolist(),
                    multiplier.tolist(),
                    satisfied.tolist(),
                    [
                        reasons[w] + _satisfied_note(k) if k else reasons[w]
                        for w, k in zip(why.tolist(), satisfied.tolist(), strict=True)
                    ],
                    [o.legacy_failure for o in outcomes],
                    (same & (total > 0)).tolist(),
                    strict=True,
                ),
            )
        )
        walk = agg.deps_runs
        if walk:
            for i, g in enumerate(groups):
                if g in walk:
                    out[i] = self.estimate(agg, g, contexts[i])
        return out

    def _multiplier(self, context: str | None, same: bool) -> tuple[float, str]:
        s = self.settings
        if same:
            return s.same_context_multiplier, "same"
        if context is None:
            return s.no_context_multiplier, "none"
        return 1.0, "plain"

    def _legacy(
        self, total: int, successes: int, same: bool, deps: DepsOutcome, context: str | None
    ) -> SuccessEstimate:
        success = successes + deps.satisfied_runs
        if total == 0:
            multiplier, why = 1.0, "first"
        else:
            multiplier, why = self._multiplier(context, same)
        probability = (success * 10 + 1) / (total * 10 + 1) * multiplier
        reason = self._legacy_reason[why]
        if deps.satisfied_runs:
            reason += _satisfied_note(deps.satisfied_runs)
        return SuccessEstimate(
            probability,
            total,
            success,
            multiplier,
            deps.satisfied_runs,
            reason,
            deps.legacy_failure,
            same and total > 0,
        )

    def _decayed(
        self,
        agg: Aggregates,
        group: int | None,
        total: int,
        same: bool,
        deps: DepsOutcome,
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
                self._default_reason,
                deps.legacy_failure,
                same,
            )
        multiplier, why = self._multiplier(context, same)
        rate = (won + s.prior_weight * s.default_success_probability) / (weight + s.prior_weight)
        probability = min(1.0, max(0.0, rate * multiplier))
        reason = self._decayed_reason[why]
        if deps.satisfied_runs:
            reason += _satisfied_note(deps.satisfied_runs)
        return SuccessEstimate(
            probability,
            total,
            won,
            multiplier,
            deps.satisfied_runs,
            reason,
            deps.legacy_failure,
            same,
        )

    def _decoded_verdict(self, details: Any) -> tuple[bool, str | None]:
        """The verdict on failure_details held decoded (Run tuples), cached by its JSON.

        Real relations repeat a lot: a cache hit skips walking them again.
        """
        try:
            key = orjson.dumps(details)
        except TypeError:  # not JSON-encodable: decided uncached
            return details_verdict(self.resolver, details)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = details_verdict(self.resolver, details)
        return verdict

    def _deps(self, runs: list[DepsRun], context: str | None) -> DepsOutcome:
        """The install-deps failures of one group, newest first, as the legacy walks them."""
        outcome, contexts = walk_deps(
            runs, self._verdict, self.settings.count_satisfied_dependencies_as_success
        )
        if context and context in contexts:
            return outcome._replace(same_context=True)
        return outcome

    def _verdict(self, run: DepsRun) -> tuple[bool, str | None]:
        """One failure's verdict: known ahead, or worked out (and kept) by its stored JSON text."""
        text = run.text
        if text is None:
            return self._decoded_verdict(run.failure_details_value)
        verdict = self._verdicts.get(text)
        if verdict is None:
            verdict = self._verdicts[text] = details_verdict(self.resolver, orjson.loads(text))
        return verdict


def walk_deps(
    runs: Iterable[DepsRun],
    verdict: Callable[[DepsRun], tuple[bool, str | None]],
    count_satisfied: bool,
) -> tuple[DepsOutcome, set[str | None]]:
    """A group's install-deps failures, newest first: their outcome (without the
    candidate's context), and the contexts of those that count as failures
    (a candidate with one of them had its context seen)."""
    satisfied = 0
    satisfied_weight = other_weight = 0.0
    legacy_failure: str | None = None
    contexts: set[str | None] = set()
    for run in runs:
        satisfied_now, failure = verdict(run)
        if failure and legacy_failure is None:
            legacy_failure = failure
        if satisfied_now and count_satisfied:
            satisfied += 1
            satisfied_weight += run.weight
        else:
            other_weight += run.weight
            contexts.add(run.instigated_context)
            contexts.add(run.context)
    return DepsOutcome(satisfied, satisfied_weight, other_weight, False, legacy_failure), contexts


class _Unknown(Exception):
    """A failure whose verdict is not known ahead."""


def fold_deps(
    deps: Mapping[Key, list[DepsRun]],
    verdicts: Mapping[str, tuple[bool, str | None]],
    count_satisfied: bool,
) -> dict[Key, tuple[DepsOutcome, set[str | None]]]:
    """:func:`walk_deps` of every group whose verdicts are all known, ahead of the
    engine (a live run does it while its last query runs); the others are left out."""

    def known(run: DepsRun) -> tuple[bool, str | None]:
        verdict = None if run.text is None else verdicts.get(run.text)
        if verdict is None:
            raise _Unknown
        return verdict

    folded: dict[Key, tuple[DepsOutcome, set[str | None]]] = {}
    for key, runs in deps.items():
        try:
            folded[key] = walk_deps(runs, known, count_satisfied)
        except _Unknown:
            continue
    return folded
