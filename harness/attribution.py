"""Why an offset moved: the exact split of log(offset_b / offset_a) into factors.

The legacy's offset is ``cost / (ncv_eff × probability × cv_eff)`` with

* ``cost = 20000 + (1000·S + U/1000)``: ``S`` the duration in seconds, ``U``
  its sub-second microseconds (the legacy counts them twice);
* ``ncv_eff = max(0.1, ncv if not None else 0.5)``;
* ``cv_eff = value + 100`` when ``total_previous_runs == 0``, else ``value``
  (1.0 when the value is None).

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

from engines.model import Decision
from harness.comparison_model import FACTORS, Attribution, FactorContribution

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MINIMUM_COST = 20_000.0
FIRST_RUN_BONUS = 100.0
DEFAULT_NCV = 0.5
MINIMUM_NCV = 0.1
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
    if duration_us != duration_us:
        return float("nan")
    us = int(duration_us)
    return MINIMUM_COST + us / 1000.0 + (us % 1_000_000) / 1000.0


def recomputed_factors(d: Decision) -> dict[str, float]:
    """The four factors rebuilt from the decision's fields (NaN where unknown)."""
    nan = float("nan")
    cost = nan if d.estimated_duration_us is None else duration_cost(d.estimated_duration_us)
    ncv = d.normalized_codebase_value
    ncv_eff = max(MINIMUM_NCV, DEFAULT_NCV if ncv is None else ncv)
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


def attribution_for(i: int, contrib: Contributions, table: FactorTable) -> Attribution | None:
    """The :class:`Attribution` of pair ``i`` (``None`` when the offsets do not allow one)."""
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
    return Attribution(
        log_ratio=total,
        contributions=tuple(items),
        dominant=None if dom < 0 else FACTORS[dom],
        source=source,
    )


def _clean(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def attribute(a: Decision, b: Decision) -> Attribution | None:
    """The attribution of one pair of decisions (convenience for tests and tools)."""
    table = factor_table([a], [b])
    oa = np.array([np.nan if a.offset is None else a.offset])
    ob = np.array([np.nan if b.offset is None else b.offset])
    return attribution_for(0, contributions(oa, ob, table), table)
