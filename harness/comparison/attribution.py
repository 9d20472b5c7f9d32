"""Why an offset moved: the exact split of log(offset_b / offset_a) into factors.

The legacy's offset is ``cost / (ncv_eff × probability × cv_eff)`` with the
legacy's own cost function and constants (imported from
:mod:`engines.legacy.core`, never restated here):

* ``cost = MINIMUM_COST + (1000·S + U/1000)``: ``S`` the duration in seconds,
  ``U`` its sub-second microseconds (the legacy counts them twice);
* ``ncv_eff = max(MINIMUM_NORMALIZED_CODEBASE_VALUE, ncv if not None else
  DEFAULT_NORMALIZED_CODEBASE_VALUE)``;
* ``cv_eff = value + FIRST_RUN_BONUS`` when ``total_previous_runs == 0``, else
  ``value`` (1.0 when the value is None).

Hence ``log(offset_b/offset_a) = log(cost_b/cost_a) − log(ncv_b/ncv_a) −
log(p_b/p_a) − log(cv_b/cv_a)``, exactly. The factor values are taken from the
engines' own ``Decision.factors`` (keys ``cost``,
``normalized_codebase_value_effective``, ``success_probability``,
``candidate_value_effective``) when both are there, and recomputed from the
decision's fields otherwise. Whatever the four factors do not explain (an
engine whose offset is not cost ÷ worth, or that adds a constant) is the
``residual``, so the contributions always sum to the observed log-ratio and
an engine bug outside the four factors still shows up, as residual.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engines.legacy.core import (
    DEFAULT_NORMALIZED_CODEBASE_VALUE,
    FIRST_RUN_BONUS,
    MINIMUM_NORMALIZED_CODEBASE_VALUE,
    PUBLISH_MODE_VALUE,
)
from engines.legacy.core import duration_cost as legacy_duration_cost
from engines.model import Decision
from harness.comparison.comparison_model import (
    FACTORS,
    Attribution,
    ErrorRule,
    FactorContribution,
    RunCount,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
#: Decision.factors key per factor (``duration`` is attributed through the cost).
FACTOR_KEYS: Mapping[str, str] = {
    "duration": "cost",
    "normalized_codebase_value": "normalized_codebase_value_effective",
    "success_probability": "success_probability",
    "candidate_value": "candidate_value_effective",
}
#: +1: the factor is in the numerator of the offset, -1: in the denominator.
SIGNS: Mapping[str, float] = {
    "duration": 1.0,
    "normalized_codebase_value": -1.0,
    "success_probability": -1.0,
    "candidate_value": -1.0,
}
MAIN_FACTORS: tuple[str, ...] = tuple(FACTOR_KEYS)
#: a residual smaller than this (relative to the movement) is rounding, not a cause
RESIDUAL_EPSILON = 1e-9
#: how closely factors must reproduce an offset (log scale) to be trusted
CONSISTENCY = 1e-9


def duration_cost(duration_us: float) -> float:
    """The legacy's cost of a duration (NaN for an unknown one)."""
    if duration_us != duration_us:
        return float("nan")
    return legacy_duration_cost(int(duration_us))


def recomputed_factors(d: Decision) -> dict[str, float]:
    """The four factors rebuilt from the decision's fields (NaN where unknown)."""
    nan = float("nan")
    cost = nan if d.estimated_duration_us is None else duration_cost(d.estimated_duration_us)
    ncv = d.normalized_codebase_value
    ncv_eff = max(
        MINIMUM_NORMALIZED_CODEBASE_VALUE, DEFAULT_NORMALIZED_CODEBASE_VALUE if ncv is None else ncv
    )
    if d.value is None:
        cv = 1.0
    elif d.total_previous_runs is None:
        cv = nan
    elif d.total_previous_runs == 0:
        cv = d.value + FIRST_RUN_BONUS
    else:
        cv = d.value
    p = nan if d.success_probability is None else d.success_probability
    return {
        "duration": cost,
        "normalized_codebase_value": ncv_eff,
        "success_probability": p,
        "candidate_value": float(cv),
    }


def _reported(factors: Mapping[str, Any]) -> dict[str, float] | None:
    out = {}
    for name, key in FACTOR_KEYS.items():
        value = factors.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        out[name] = float(value)
    return out


def _explains(values: Mapping[str, float], offset: float | None) -> bool:
    """Whether cost / (ncv × p × cv) reproduces the decision's offset."""
    if offset is None or not math.isfinite(offset) or offset <= 0:
        return False
    worth = (
        values["normalized_codebase_value"]
        * values["success_probability"]
        * values["candidate_value"]
    )
    cost = values["duration"]
    if not (math.isfinite(cost) and math.isfinite(worth) and cost > 0 and worth > 0):
        return False
    return abs(math.log(cost / worth) - math.log(offset)) <= CONSISTENCY


def decision_factors(d: Decision) -> tuple[dict[str, float], bool]:
    """The factor values and whether they are the ones the engine reported.

    The engine's own factors are preferred, but only when they reproduce its
    offset: an engine (or a wrapper injecting a bug) may change a field and the
    offset without updating ``factors``; then the factors recomputed from the
    decision's fields are used. When neither reproduces the offset, the
    recomputed ones are used and the residual carries the rest.
    """
    reported = _reported(d.factors) if d.factors else None
    if reported is not None and _explains(reported, d.offset):
        return reported, True
    recomputed = recomputed_factors(d)
    if (
        reported is not None
        and not _explains(recomputed, d.offset)
        and not all(math.isfinite(v) for v in recomputed.values())
    ):
        return reported, True
    return recomputed, False


@dataclass
class FactorTable:
    """Factor values for aligned pairs: ``a[f]``/``b[f]`` arrays per factor,
    ``reported_*``: the engine gave them itself."""

    a: dict[str, FloatArray]
    b: dict[str, FloatArray]
    reported_a: BoolArray
    reported_b: BoolArray


def factor_table(decisions_a: Sequence[Decision], decisions_b: Sequence[Decision]) -> FactorTable:
    def collect(decisions: Sequence[Decision]) -> tuple[dict[str, FloatArray], BoolArray]:
        n = len(decisions)
        cols = {name: np.empty(n, dtype=np.float64) for name in MAIN_FACTORS}
        reported = np.zeros(n, dtype=bool)
        for i, d in enumerate(decisions):
            values, rep = decision_factors(d)
            reported[i] = rep
            for name in MAIN_FACTORS:
                cols[name][i] = values[name]
        return cols, reported

    a, ra = collect(decisions_a)
    b, rb = collect(decisions_b)
    return FactorTable(a, b, ra, rb)


@dataclass
class Contributions:
    """Vectorised attribution: ``log_ratio`` per pair, ``parts[f]`` per factor
    (residual included), ``valid`` where everything was positive and finite,
    ``dominant`` the index into :data:`FACTORS` (-1: nothing moved)."""

    log_ratio: FloatArray
    parts: dict[str, FloatArray]
    valid: BoolArray
    dominant: npt.NDArray[np.int64]

    def weights(self) -> dict[str, FloatArray]:
        total = np.zeros_like(self.log_ratio)
        for part in self.parts.values():
            total += np.abs(part)
        with np.errstate(divide="ignore", invalid="ignore"):
            return {
                name: np.where(total > 0, np.abs(part) / np.where(total > 0, total, 1.0), 0.0)
                for name, part in self.parts.items()
            }


def contributions(offset_a: FloatArray, offset_b: FloatArray, table: FactorTable) -> Contributions:
    """Split ``log(offset_b/offset_a)`` per pair; invalid pairs get zeros."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        valid = np.isfinite(offset_a) & np.isfinite(offset_b) & (offset_a > 0) & (offset_b > 0)
        log_ratio = np.where(valid, np.log(offset_b) - np.log(offset_a), 0.0)
        parts: dict[str, FloatArray] = {}
        explained = np.zeros_like(log_ratio)
        factor_ok = valid.copy()
        for name in MAIN_FACTORS:
            fa, fb = table.a[name], table.b[name]
            ok = np.isfinite(fa) & np.isfinite(fb) & (fa > 0) & (fb > 0)
            factor_ok &= ok
            part = np.where(ok, SIGNS[name] * (np.log(fb) - np.log(fa)), 0.0)
            parts[name] = part
            explained += part
        residual = log_ratio - explained
        scale = np.abs(log_ratio)
        for part in parts.values():
            scale = scale + np.abs(part)
        residual = np.where(np.abs(residual) <= RESIDUAL_EPSILON * (1.0 + scale), 0.0, residual)
        parts["residual"] = np.where(valid, residual, 0.0)
        for name in MAIN_FACTORS:
            parts[name] = np.where(valid, parts[name], 0.0)
    stacked = np.abs(np.stack([parts[name] for name in FACTORS], axis=1))
    dominant = np.where(stacked.max(axis=1) > 0, stacked.argmax(axis=1), -1).astype(np.int64)
    del factor_ok
    return Contributions(log_ratio, parts, valid, dominant)


def attribution_for(
    i: int, contrib: Contributions, table: FactorTable, runs_changed: bool = False
) -> Attribution | None:
    """The :class:`Attribution` of pair ``i`` (``None`` when the offsets do not allow one);
    ``runs_changed``: the run counts differ (see :func:`cause_of`)."""
    if not contrib.valid[i]:
        return None
    total = float(contrib.log_ratio[i])
    magnitudes = {name: abs(float(contrib.parts[name][i])) for name in FACTORS}
    spread = sum(magnitudes.values())
    items = []
    for name in FACTORS:
        part = float(contrib.parts[name][i])
        items.append(
            FactorContribution(
                factor=name,
                a=None if name == "residual" else _clean(table.a[name][i]),
                b=None if name == "residual" else _clean(table.b[name][i]),
                log_ratio=part + 0.0,  # + 0.0: no negative zeros in reports
                share=(part / total if total != 0 else 0.0) + 0.0,
                weight=magnitudes[name] / spread if spread > 0 else 0.0,
            )
        )
    dom = int(contrib.dominant[i])
    ra, rb = bool(table.reported_a[i]), bool(table.reported_b[i])
    source = "factors" if ra and rb else "recomputed" if not (ra or rb) else "mixed"
    dominant = None if dom < 0 else FACTORS[dom]
    return Attribution(
        log_ratio=total,
        contributions=tuple(items),
        dominant=dominant,
        source=source,
        cause=cause_of(dominant, runs_changed),
    )


#: the factors that follow from which runs counted
RUN_FACTORS = frozenset({"duration", "success_probability"})


def cause_of(dominant: str | None, runs_changed: bool) -> str | None:
    """What to blame: probability and duration both follow from the runs that
    counted, so when those counts changed the split between the two is no
    cause of its own (it is whatever the changed runs happened to weigh):
    the cause is ``run_counts``."""
    if runs_changed and dominant in RUN_FACTORS:
        return "run_counts"
    return dominant


# ------------------------------------------------------------------ run counts

#: (name in the report, Decision.factors key) of the run counts behind the
#: probability and duration; ``previous_runs`` is the decision's own field.
RUN_COUNT_KEYS: tuple[tuple[str, str], ...] = (
    ("previous_runs", "total_previous_runs"),
    ("successes", "successes"),
    ("ignored_worker_failures", "ignored_worker_failures"),
    ("same_context", "same_context"),
    ("deps_satisfied_runs", "deps_satisfied_runs"),
)


def _count(d: Decision, key: str) -> float | None:
    value = d.total_previous_runs if key == "total_previous_runs" else d.factors.get(key)
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def run_counts(a: Decision, b: Decision) -> tuple[RunCount, ...]:
    """The run counts of both decisions, where at least one engine reported them."""
    out = []
    for name, key in RUN_COUNT_KEYS:
        ca, cb = _count(a, key), _count(b, key)
        if ca is not None or cb is not None:
            out.append(RunCount(name, ca, cb))
    return tuple(out)


#: the counts that say *which runs counted*; ``successes`` is shown, not used
#: (an engine that weighs runs reports a weighted sum there)
WHICH_RUNS: tuple[tuple[str, str], ...] = tuple(
    (name, key) for name, key in RUN_COUNT_KEYS if name != "successes"
)


def runs_changed(a: Decision, b: Decision) -> bool:
    """Whether a count of which runs counted, reported by both engines, differs."""
    for _name, key in WHICH_RUNS:
        ca, cb = _count(a, key), _count(b, key)
        if ca is not None and cb is not None and ca != cb:
            return True
    return False


# ------------------------------------------------------------------ error pairs


def _assertion_rule(message: str, other: Decision) -> tuple[str, str]:
    """The input behind one of the legacy's offset assertions (spec §6)."""
    if "Probability of success" in message or "estimated_probability_of_success(0" in message:
        p = other.success_probability
        shown = "" if p is None else f" (the other engine: {p:g})"
        return f"success probability 0 makes the worth 0{shown}", "success_probability"
    if "normalized codebase value" in message or "normalized_codebase_value(0" in message:
        return "a normalized codebase value of 0", "normalized_codebase_value"
    if "candidate value is" in message or "candidate_value(0" in message:
        return f"a candidate value <= 0 (value {other.value})", "candidate_value"
    if "Estimated cost" in message or "estimated duration < 0" in message:
        d = other.estimated_duration_us
        return f"a negative estimated duration ({d} µs on the other side)", "duration"
    if "Estimated value" in message:
        return (
            "a worth of 0 (probability × codebase value × candidate value)",
            "success_probability",
        )
    return "an empty command (the legacy asserts one)", "candidate_row"


#: (substring of "type: message", input in words, cause), first match wins
_RULES: tuple[tuple[str, str, str], ...] = (
    (
        "push-derived",
        "publish mode 'push-derived', which the legacy's publish-bonus table does not know",
        "publish_policy",
    ),
    (
        "object is not iterable",
        "a publish policy whose per_branch_policy is NULL",
        "publish_policy",
    ),
    (
        "'NoneType' and 'int'",
        "a NULL candidate value with publish-policy entries",
        "candidate_value",
    ),
    (
        "CandidateUnavailable",
        "a NULL value/success_chance/command on a candidate that exists "
        "only with a change set (the re-read finds no row)",
        "candidate_row",
    ),
    (
        "ZeroDivisionError",
        "every codebase value NULL or 0 (the maximum divides)",
        "codebase_values",
    ),
    (
        "debversion",
        "a dependency constraint with an operator PostgreSQL's debversion lacks (<< or >>)",
        "dependencies",
    ),
    (
        "syntax error at or near",
        "a dependency constraint with an operator that is not SQL",
        "dependencies",
    ),
    (
        "all_debian_versions",
        "no all_debian_versions table (dependencies cannot be checked)",
        "dependencies",
    ),
    ("has no attribute 'get'", "run failure_details that are not a JSON object", "dependencies"),
    ("total_seconds", "a counted run with a NULL start or finish time", "run_data"),
    ("'datetime.datetime' and 'NoneType'", "a worker failure with a NULL start time", "run_data"),
    ("OutOfRange", "a priority beyond PostgreSQL's bigint", "queue"),
    ("QueueOverflow", "a priority beyond PostgreSQL's bigint", "queue"),
    ("KeyError", "a publish mode the legacy does not know", "publish_policy"),
)


def error_rule(a: Decision, b: Decision) -> ErrorRule:
    """The input and cause behind an error pair (A raised, B raised, or both with
    different types), from the error and the other side's decision."""
    side = "both" if a.error is not None and b.error is not None else "A" if a.error else "B"
    raised, other = (a, b) if a.error is not None else (b, a)
    assert raised.error is not None
    text = f"{raised.error.type}: {raised.error.message}"
    if raised.error.type.endswith("AssertionError"):
        what, cause = _assertion_rule(raised.error.message, other)
        return ErrorRule(what, cause, side)
    for needle, what, cause in _RULES:
        if needle in text:
            if cause == "publish_policy" and needle == "KeyError":
                mode = raised.error.message.strip("'\"")
                known = ", ".join(sorted(PUBLISH_MODE_VALUE))
                what = f"publish mode {mode!r}, which the legacy does not know (known: {known})"
            return ErrorRule(what, cause, side)
    hint = other.factors.get("legacy_failure") if other.factors else None
    if isinstance(hint, str) and hint:
        return ErrorRule(f"the other engine says: {hint}", "residual", side)
    return ErrorRule(f"{text.splitlines()[0][:160]}", "residual", side)


def _clean(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def attribute(a: Decision, b: Decision) -> Attribution | None:
    """The attribution of one pair of decisions (convenience for tests and tools)."""
    table = factor_table([a], [b])
    oa = np.array([np.nan if a.offset is None else a.offset])
    ob = np.array([np.nan if b.offset is None else b.offset])
    return attribution_for(0, contributions(oa, ob, table), table)
