"""Compare two schedules: align by key, compare fields under tolerances, classify, explain.

The entry point is :func:`compare_schedules`; it returns a
:class:`~harness.comparison.comparison_model.Comparison` (see that module for every field).
It runs in stages, one function each, every stage returning a small frozen
record the next ones read (numpy columns inside, one row per aligned pair).

Rules, in order, for each numeric field of each candidate both engines decided:

1. **Equal**: both ``None``, bit-equal, both NaN, or the same infinity. NaN
   against NaN is *equal*: both engines produced the same (odd) result, and the
   comparator judges agreement, not sanity. NaN or an infinity against anything
   else is a divergence (``nonfinite_mismatch``), as is ``None`` against a
   value (``null_mismatch``).
2. **Tolerated**: ``|b−a| <= absolute`` or ``|b−a| <= relative·max(|a|,|b|)``
   (:mod:`harness.comparison.tolerances`).
3. Otherwise **divergent**, and then: *noise* when the reference re-run in
   B's row order reproduces B, or when the difference is no larger than what
   the reference did to that candidate's field against itself
   (:mod:`harness.comparison.noise`); *waived* when an active waiver covers it
   (:mod:`harness.comparison.waivers`); otherwise *real*.

Worker order is compared as such: two candidates with the same bucket and
priority on both sides that workers take in another order (their ids, i.e.
insertion order) are a ``tie_order`` divergence, unless the settings say ties
are unordered. Candidates present on one side only (``presence``), an error on
one side only or a different error type (``error``), and differences in the
non-numeric fields (``structure``, explained by deepdiff) are divergences
classified the same way. Each divergent candidate is counted under one kind
(:data:`~harness.comparison.comparison_model.KINDS`): error, presence, numeric, order,
tie order, in that precedence. Objects are built only for the ``top_n``
candidates kept in the result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from deepdiff import DeepDiff

from engines.model import BUCKETS, Decision, Schedule
from harness.comparison import attribution as attr
from harness.comparison.alignment import (
    STRUCTURE_FIELDS,
    Alignment,
    Key,
    Side,
    align,
    decision_key,
    side_from_schedule,
    structure_mismatch,
    structures_differ,
)
from harness.comparison.comparison_model import (
    CAUSES,
    DECISION_FIELDS,
    FACTORS,
    KINDS,
    NUMERIC_FIELDS,
    CampaignSummary,
    CandidateDiff,
    Comparison,
    Counts,
    DiffKind,
    Distribution,
    ErrorMismatch,
    FieldDelta,
    FieldStats,
    Histogram,
    KeyRef,
    KindCount,
    PlotData,
    QueueHeadRow,
    RankMetrics,
    RunInfo,
    Status,
    Verdict,
)
from harness.comparison.noise import (
    NoiseProfile,
    field_beyond_noise,
    field_deltas,
    within_own_noise,
)
from harness.comparison.ranking import rank_metrics_of, tie_groups
from harness.comparison.tolerances import Settings, default_settings
from harness.comparison.waivers import Waiver, WaiverSet

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
StatusArray = npt.NDArray[np.int8]

NONE, NOISE, WAIVED, REAL = 0, 1, 2, 3
STATUS_NAMES: dict[int, Status] = {NOISE: "noise", WAIVED: "waived", REAL: "real"}
PLOT_SAMPLE = 2000
_ERROR_KINDS: tuple[DiffKind, ...] = ("error_vs_value", "value_vs_error", "error_mismatch")
#: the numbers of a candidate's queue row (its position is the ``order`` kind)
_QUEUE_NUMBERS = ("queue_priority", "queue_bucket")
#: category codes per pair, in :data:`KINDS` order (0: none)
_KIND_CODE = {name: k + 1 for k, name in enumerate(KINDS)}


# --------------------------------------------------------------------- records


@dataclass(frozen=True)
class _Rows:
    """Who is compared: the aligned pairs' keys, campaigns and who decided."""

    n: int
    keys: list[Key]
    campaigns: list[str]
    codebases: list[str]
    noise_index: IntArray | None
    ok_a: BoolArray
    ok_b: BoolArray
    both_ok: BoolArray


@dataclass(frozen=True)
class _Classifier:
    """What turns a divergence mask into statuses: noise, waivers, row context."""

    profile: NoiseProfile | None
    waivers: WaiverSet
    campaigns: Sequence[str]
    codebases: Sequence[str]

    def classify(
        self, name: str, divergent: BoolArray, explained: BoolArray
    ) -> tuple[StatusArray, IntArray]:
        """Status per row: noise (``explained``), waived, or real."""
        status = np.zeros(divergent.shape, dtype=np.int8)
        real = divergent & ~explained
        status[divergent & explained] = NOISE
        waiver = (
            self.waivers.apply(name, self.campaigns, self.codebases, real)
            if self.waivers
            else np.full(divergent.shape, -1, dtype=np.int64)
        )
        waived = waiver >= 0
        status[real & waived] = WAIVED
        status[real & ~waived] = REAL
        return status, waiver


@dataclass(frozen=True)
class _OrderRef:
    """B against the reference re-run in B's row order, per aligned pair:
    ``agrees[f]`` B's field f equals (within tolerance) the order run's;
    ``present``: the key is in the order run at all."""

    present: BoolArray
    agrees: dict[str, BoolArray]
    same_error: BoolArray
    same_structure: BoolArray
    same_ties: BoolArray
    extra_keys: frozenset[Key]
    missing_keys: frozenset[Key]


@dataclass(frozen=True)
class _Field:
    status: StatusArray
    waiver: IntArray
    delta: FloatArray
    rel: FloatArray
    noise: FloatArray


@dataclass(frozen=True)
class _Numeric:
    fields: dict[str, _Field]
    stats: tuple[FieldStats, ...]


@dataclass(frozen=True)
class _Flags:
    """A yes/no divergence per row (structure, tie order, errors)."""

    divergent: BoolArray
    status: StatusArray
    waiver: IntArray


@dataclass(frozen=True)
class _Structure:
    flags: _Flags
    names: dict[int, tuple[str, ...]]
    counts: dict[str, int]


@dataclass(frozen=True)
class _Errors:
    flags: _Flags
    kind: npt.NDArray[np.int8]  # 1 error_vs_value, 2 value_vs_error, 3 different types
    same: BoolArray


@dataclass(frozen=True)
class _Presence:
    missing_keys: list[Key]
    extra_keys: list[Key]
    missing_status: StatusArray
    missing_waiver: IntArray
    extra_status: StatusArray
    extra_waiver: IntArray


@dataclass(frozen=True)
class _Ties:
    """Worker order inside tie groups, per aligned pair: ``differs`` (whatever
    the settings), the status (no divergence when ties are unordered), and
    exact ranks among the keys queued on both sides (0: not queued on both)."""

    flags: _Flags
    differs: BoolArray
    rank_a: IntArray
    rank_b: IntArray


@dataclass(frozen=True)
class _Pairs:
    """Per aligned pair: worst status, kind code, log offset ratio, severity."""

    status: StatusArray
    kind: npt.NDArray[np.int8]
    log_ratio: FloatArray
    valid_offsets: BoolArray
    severity: FloatArray
    numbers_moved: BoolArray


@dataclass(frozen=True)
class _Attribution:
    positions: IntArray  # pair index per attributed row
    row: IntArray  # per pair: its row in the table (-1: not attributed)
    table: attr.FactorTable
    contrib: attr.Contributions
    weights: dict[str, FloatArray]
    runs_changed: BoolArray  # per attributed row
    cause: IntArray  # per attributed row: index into CAUSES (-1: none)
    error_cause: IntArray  # per pair: index into CAUSES for error pairs (-1: none)


@dataclass(frozen=True)
class _Verdict:
    verdict: Verdict
    reason: str
    real: int
    noise: int
    waived: int
    kinds: tuple[KindCount, ...]


# ----------------------------------------------------------------- small helpers


def _noise_for(
    profile: NoiseProfile | None, idx: IntArray | None, name: str, *, relative: bool = False
) -> FloatArray | None:
    if profile is None or idx is None:
        return None
    values = (profile.relative if relative else profile.fields)[name]
    return np.where(idx >= 0, values[np.maximum(idx, 0)], 0.0)


def _noise_flags(
    profile: NoiseProfile | None, idx: IntArray | None, flags: str
) -> BoolArray | None:
    if profile is None or idx is None:
        return None
    values: BoolArray = getattr(profile, flags)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], False)


def _stat(values: FloatArray, fn: Any) -> float | None:
    if values.size == 0:
        return None
    result = float(fn(values))
    return result if math.isfinite(result) else None


def _histogram(values: FloatArray, quantity: str, bins: int = 40) -> Histogram:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Histogram(quantity, (0.0, 1.0), (0,))
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-9 * max(1.0, abs(lo), abs(hi)):
        half = max(abs(lo) * 1e-3, 1e-12)
        return Histogram(quantity, (lo - half, hi + half), (int(values.size),))
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return Histogram(quantity, tuple(float(e) for e in edges), tuple(int(c) for c in counts))


def run_info(schedule: Schedule, label: str, source: str) -> RunInfo:
    return RunInfo(
        label=label,
        engine=schedule.engine,
        profile=schedule.profile,
        source=source,
        as_of=schedule.as_of.isoformat(),
        settings=dict(schedule.settings),
        provenance=None if schedule.provenance is None else schedule.provenance.to_json(),
        timings={k: float(v) for k, v in schedule.timings.items()},
        notes=tuple(schedule.notes),
        decisions=len(schedule.decisions),
        errors=sum(1 for d in schedule.decisions if d.error is not None),
        queue_rows=len(schedule.queue),
    )


def _error_text(d: Decision) -> str | None:
    if d.error is None:
        return None
    return f"{d.error.type}: {d.error.message}"


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def structure_lines(da: Decision, db: Decision) -> tuple[str, ...]:
    """deepdiff's account of how the non-numeric fields differ, one line each."""
    left = {name: getattr(da, name) for name in STRUCTURE_FIELDS}
    right = {name: getattr(db, name) for name in STRUCTURE_FIELDS}
    diff = DeepDiff(left, right, ignore_nan_inequality=True, verbose_level=2)
    if not diff:
        return ()
    return tuple(line for line in diff.pretty().splitlines() if line.strip())


def _tolerated(
    settings: Settings, name: str, delta: FloatArray, va: FloatArray, vb: FloatArray
) -> tuple[BoolArray, BoolArray, FloatArray]:
    """(equal, tolerated, relative delta) of one field."""
    tol = settings.tolerance(name)
    with np.errstate(invalid="ignore", over="ignore"):
        scale = np.maximum(np.abs(va), np.abs(vb))
        equal = delta == 0.0
        tolerated = (
            ~equal
            & np.isfinite(delta)
            & ((delta <= tol.absolute) | (delta <= tol.relative * scale))
        )
        rel = np.where(scale > 0, delta / np.where(scale > 0, scale, 1.0), 0.0)
    return equal, tolerated, rel


def tie_order_differs(al: Alignment) -> tuple[BoolArray, IntArray, IntArray]:
    """Per aligned pair: whether workers take it in another order relative to
    the candidates tied with it (same bucket and priority) on **both** sides,
    and its exact 1-based rank among the keys queued on both sides (0: not).

    Two candidates tied on both sides are taken in id order, i.e. insertion
    order; if that order flips between A and B, workers do the work in
    another order although every number agrees.
    """
    n = int(al.ia.size)
    differs = np.zeros(n, dtype=bool)
    rank_a = np.zeros(n, dtype=np.int64)
    rank_b = np.zeros(n, dtype=np.int64)
    row_a, row_b = al.a.queue_row[al.ia], al.b.queue_row[al.ib]
    # only keys queued on both sides, and the first queue row of each
    both = np.flatnonzero((row_a >= 0) & (row_b >= 0))
    if both.size == 0:
        return differs, rank_a, rank_b
    ra, rb = row_a[both], row_b[both]
    rank_a[both] = np.argsort(np.argsort(ra, kind="stable"), kind="stable") + 1
    rank_b[both] = np.argsort(np.argsort(rb, kind="stable"), kind="stable") + 1
    if both.size < 2:
        return differs, rank_a, rank_b
    ga = tie_groups(al.a.queue_scores).group[ra]
    gb = tie_groups(al.b.queue_scores).group[rb]
    # slots within each (A group, B group) cell, by A's order and by B's
    by_a = np.lexsort((ra, gb, ga))
    by_b = np.lexsort((rb, gb, ga))
    slot_a = np.empty(both.size, dtype=np.int64)
    slot_b = np.empty(both.size, dtype=np.int64)
    slot_a[by_a] = np.arange(both.size)
    slot_b[by_b] = np.arange(both.size)
    differs[both] = slot_a != slot_b
    return differs, rank_a, rank_b


# ---------------------------------------------------------------------- stages


def _rows(al: Alignment, profile: NoiseProfile | None) -> _Rows:
    keys = [al.a.keys[i] for i in al.ia.tolist()]
    ok_a, ok_b = al.a.ok[al.ia], al.b.ok[al.ib]
    return _Rows(
        n=int(al.ia.size),
        keys=keys,
        campaigns=[k[1] for k in keys],
        codebases=[k[0] for k in keys],
        noise_index=profile.lookup(keys) if profile is not None else None,
        ok_a=ok_a,
        ok_b=ok_b,
        both_ok=ok_a & ok_b,
    )


def _order_reference(
    al: Alignment, profile: NoiseProfile | None, settings: Settings
) -> _OrderRef | None:
    """B compared with the reference re-run in B's row order (if there is one)."""
    if profile is None or profile.order is None:
        return None
    ao = align(profile.order, al.b)  # A' (order run) against B
    size_b = al.b.size
    where = np.full(size_b, -1, dtype=np.int64)  # per B key: its pair in ao
    where[ao.ib] = np.arange(ao.ia.size)
    pair = where[al.ib]
    present = pair >= 0
    safe = np.maximum(pair, 0)
    agrees: dict[str, BoolArray] = {}
    for name in NUMERIC_FIELDS:
        ca, cb = ao.column_a(name), ao.column_b(name)
        delta = field_deltas(ca.values, ca.null, cb.values, cb.null)
        equal, tolerated, _ = _tolerated(settings, name, delta, ca.values, cb.values)
        agrees[name] = present & (equal | tolerated)[safe] if ao.ia.size else present
    types_o = [ao.a.error_types[i] for i in ao.ia.tolist()]
    types_b = [ao.b.error_types[j] for j in ao.ib.tolist()]
    same_error_o = np.fromiter(
        (x == y for x, y in zip(types_o, types_b, strict=True)), dtype=bool, count=len(types_o)
    )
    same_structure_o = np.fromiter(
        (
            not structures_differ(ao.a.structures[i], ao.b.structures[j])
            for i, j in zip(ao.ia.tolist(), ao.ib.tolist(), strict=True)
        ),
        dtype=bool,
        count=int(ao.ia.size),
    )
    ties_o, _, _ = tie_order_differs(ao)
    pick = (lambda v: present & v[safe]) if ao.ia.size else (lambda v: present)
    return _OrderRef(
        present=present,
        agrees=agrees,
        same_error=pick(same_error_o),
        same_structure=pick(same_structure_o),
        same_ties=pick(~ties_o),
        extra_keys=frozenset(profile.order.keys[i] for i in ao.missing.tolist()) | frozenset(),
        missing_keys=frozenset(al.a.keys[i] for i in al.missing.tolist())
        - frozenset(profile.order.keys),
    )


def _numeric(
    al: Alignment,
    rows: _Rows,
    settings: Settings,
    cls: _Classifier,
    order: _OrderRef | None,
) -> _Numeric:
    """Every numeric field: equal, tolerated, or divergent and classified."""
    profile = cls.profile
    fields: dict[str, _Field] = {}
    stats: list[FieldStats] = []
    both_ok = rows.both_ok
    for name in NUMERIC_FIELDS:
        tol = settings.tolerance(name)
        ca, cb = al.column_a(name), al.column_b(name)
        va, vb, na, nb = ca.values, cb.values, ca.null, cb.null
        delta = field_deltas(va, na, vb, nb)
        equal, tolerated, rel = _tolerated(settings, name, delta, va, vb)
        divergent = both_ok & ~equal & ~tolerated
        noise_n = _noise_for(profile, rows.noise_index, name)
        explained = np.zeros(rows.n, dtype=bool)
        if noise_n is not None:
            explained |= within_own_noise(delta, noise_n)
        if order is not None:
            explained |= order.agrees[name]
        field_noise = None
        beyond = None
        if noise_n is not None:
            rel_n = _noise_for(profile, rows.noise_index, name, relative=True)
            assert rel_n is not None
            noisy_rows = both_ok & (noise_n > tol.absolute) & (rel_n > tol.relative)
            field_noise = int(noisy_rows.sum())
            beyond = field_beyond_noise(
                int(divergent.sum()), field_noise, int(both_ok.sum()), settings.noise
            )
        status, waiver = cls.classify(name, divergent, explained)
        fields[name] = _Field(
            status, waiver, delta, rel, noise_n if noise_n is not None else np.zeros(rows.n)
        )
        compared = both_ok & ~na & ~nb
        finite = compared & np.isfinite(va) & np.isfinite(vb)
        fin_delta, fin_rel = delta[finite], rel[finite]
        pct = np.percentile(fin_rel, [50, 95, 99]) if fin_rel.size else np.array([np.nan] * 3)
        noise_values = (
            profile.fields[name][np.isfinite(profile.fields[name])] if profile is not None else None
        )
        stats.append(
            FieldStats(
                field=name,
                tolerance=tol,
                compared=int(compared.sum()),
                equal=int((both_ok & equal).sum()),
                within_tolerance=int((both_ok & tolerated).sum()),
                divergent=int(divergent.sum()),
                real=int((status == REAL).sum()),
                noise=int((status == NOISE).sum()),
                waived=int((status == WAIVED).sum()),
                null_mismatch=int((divergent & (na ^ nb)).sum()),
                nonfinite_mismatch=int(
                    (divergent & ~(na ^ nb) & (~np.isfinite(va) | ~np.isfinite(vb))).sum()
                ),
                max_abs_delta=_stat(fin_delta, np.max),
                mean_abs_delta=_stat(fin_delta, np.mean),
                max_rel_delta=_stat(fin_rel, np.max),
                p50_rel_delta=_finite_or_none(float(pct[0])),
                p95_rel_delta=_finite_or_none(float(pct[1])),
                p99_rel_delta=_finite_or_none(float(pct[2])),
                noise_max_abs=(
                    None
                    if noise_values is None
                    else float(noise_values.max())
                    if noise_values.size
                    else 0.0
                ),
                noise_candidates=field_noise,
                beyond_noise=beyond,
            )
        )
    return _Numeric(fields, tuple(stats))


def _flag_noise(
    cls: _Classifier, rows: _Rows, flags: str, order_same: BoolArray | None
) -> BoolArray:
    """Rows where a yes/no divergence is noise: the self-runs showed it for that
    candidate, or the order run reproduces B."""
    explained = np.zeros(rows.n, dtype=bool)
    noisy = _noise_flags(cls.profile, rows.noise_index, flags)
    if noisy is not None:
        explained |= noisy
    if order_same is not None:
        explained |= order_same
    return explained


def _structure(al: Alignment, rows: _Rows, cls: _Classifier, order: _OrderRef | None) -> _Structure:
    """Non-numeric decision fields: a cheap tuple check (deepdiff later, for the kept ones)."""
    positions: list[int] = []
    names: dict[int, tuple[str, ...]] = {}
    counts: dict[str, int] = {}
    decisions_a, decisions_b = al.a.decisions, al.b.decisions
    for pos in np.flatnonzero(rows.both_ok).tolist():
        da, db = decisions_a[al.ia[pos]], decisions_b[al.ib[pos]]
        if da is db:
            continue
        found = structure_mismatch(da, db)
        if found:
            positions.append(pos)
            names[pos] = found
            for nm in found:
                counts[nm] = counts.get(nm, 0) + 1
    divergent = np.zeros(rows.n, dtype=bool)
    divergent[np.asarray(positions, dtype=np.int64)] = True
    explained = _flag_noise(cls, rows, "structure", None if order is None else order.same_structure)
    status, waiver = cls.classify("structure", divergent, explained)
    return _Structure(_Flags(divergent, status, waiver), names, counts)


def _ties(
    al: Alignment, rows: _Rows, settings: Settings, cls: _Classifier, order: _OrderRef | None
) -> _Ties:
    """Worker order inside tie groups (a kind of its own, unless ties are unordered)."""
    differs, rank_a, rank_b = tie_order_differs(al)
    differs &= rows.both_ok
    divergent = differs if settings.ranking.ties_ordered else np.zeros(rows.n, dtype=bool)
    explained = np.zeros(rows.n, dtype=bool) if order is None else order.same_ties
    status, waiver = cls.classify("tie_order", divergent, explained)
    return _Ties(_Flags(divergent, status, waiver), differs, rank_a, rank_b)


def _errors(al: Alignment, rows: _Rows, cls: _Classifier, order: _OrderRef | None) -> _Errors:
    types_a = [al.a.error_types[i] for i in al.ia.tolist()]
    types_b = [al.b.error_types[j] for j in al.ib.tolist()]
    kind = np.zeros(rows.n, dtype=np.int8)
    kind[~rows.ok_a & rows.ok_b] = 1
    kind[rows.ok_a & ~rows.ok_b] = 2
    same = np.zeros(rows.n, dtype=bool)
    for pos in np.flatnonzero(~rows.ok_a & ~rows.ok_b).tolist():
        if types_a[pos] == types_b[pos]:
            same[pos] = True
        else:
            kind[pos] = 3
    explained = _flag_noise(cls, rows, "error", None if order is None else order.same_error)
    status, waiver = cls.classify("error", kind > 0, explained)
    return _Errors(_Flags(kind > 0, status, waiver), kind, same)


def _presence(al: Alignment, cls: _Classifier, order: _OrderRef | None) -> _Presence:
    """Keys decided on one side only."""
    profile = cls.profile
    missing_keys = [al.a.keys[i] for i in al.missing.tolist()]
    extra_keys = [al.b.keys[j] for j in al.extra.tolist()]
    missing_noisy = np.zeros(len(missing_keys), dtype=bool)
    extra_noisy = np.zeros(len(extra_keys), dtype=bool)
    if profile is not None:
        midx = profile.lookup(missing_keys)
        missing_noisy = np.where(midx >= 0, profile.presence[np.maximum(midx, 0)], False)
        extra_noisy = np.fromiter(
            (k in profile.extra_keys for k in extra_keys), dtype=bool, count=len(extra_keys)
        )
    if order is not None:
        missing_noisy |= np.fromiter(
            (k in order.missing_keys for k in missing_keys), dtype=bool, count=len(missing_keys)
        )
        in_order = profile.order.index if profile is not None and profile.order else {}
        extra_noisy |= np.fromiter(
            (k in in_order for k in extra_keys), dtype=bool, count=len(extra_keys)
        )

    def classify(keys: list[Key], explained: BoolArray) -> tuple[StatusArray, IntArray]:
        side = _Classifier(profile, cls.waivers, [k[1] for k in keys], [k[0] for k in keys])
        return side.classify("presence", np.ones(len(keys), dtype=bool), explained)

    miss_status, miss_waiver = classify(missing_keys, missing_noisy)
    extra_status, extra_waiver = classify(extra_keys, extra_noisy)
    return _Presence(missing_keys, extra_keys, miss_status, miss_waiver, extra_status, extra_waiver)


def _pairs(
    al: Alignment,
    rows: _Rows,
    numeric: _Numeric,
    structure: _Structure,
    ties: _Ties,
    errors: _Errors,
) -> _Pairs:
    """Each pair's worst status, its kind (by precedence) and its severity."""
    status = np.zeros(rows.n, dtype=np.int8)
    numbers = np.zeros(rows.n, dtype=np.int8)  # worst status among the candidate's numbers
    for name in (*DECISION_FIELDS, *_QUEUE_NUMBERS):
        numbers = np.maximum(numbers, numeric.fields[name].status)
    numbers = np.maximum(numbers, structure.flags.status)
    position = numeric.fields["queue_position"].status
    tie = ties.flags.status
    err = errors.flags.status
    for part in (numbers, position, tie, err):
        status = np.maximum(status, part)
    kind = np.zeros(rows.n, dtype=np.int8)
    kind[tie > 0] = _KIND_CODE["tie_order"]
    kind[position > 0] = _KIND_CODE["order"]
    kind[numbers > 0] = _KIND_CODE["numeric"]
    kind[err > 0] = _KIND_CODE["error"]

    oa = al.a.columns["offset"].values[al.ia]
    ob = al.b.columns["offset"].values[al.ib]
    with np.errstate(divide="ignore", invalid="ignore"):
        valid = rows.both_ok & np.isfinite(oa) & np.isfinite(ob) & (oa > 0) & (ob > 0)
        log_ratio = np.where(valid, np.log(ob) - np.log(oa), np.nan)
        sev = np.where(np.isfinite(log_ratio), np.abs(log_ratio), 0.0)
        field_rel_max = np.zeros(rows.n)
        for name in NUMERIC_FIELDS:
            r = numeric.fields[name]
            field_rel_max = np.maximum(
                field_rel_max, np.where(r.status > 0, np.nan_to_num(r.rel, nan=np.inf), 0.0)
            )
        sev = np.where(sev > 0, sev, np.minimum(field_rel_max, 1.0))
        sev = np.where((errors.kind > 0) | ~np.isfinite(field_rel_max), np.inf, sev)
    # a tie-order divergence is the smallest move there is
    sev = np.where((kind == _KIND_CODE["tie_order"]) & (sev == 0), 1e-6, sev)
    moved = np.zeros(rows.n, dtype=bool)
    for name in DECISION_FIELDS:
        moved |= numeric.fields[name].status > 0
    with np.errstate(invalid="ignore"):
        moved |= np.isfinite(log_ratio) & (log_ratio != 0)
    return _Pairs(status, kind, log_ratio, valid, sev, moved)


def _attribution(al: Alignment, rows: _Rows, pairs: _Pairs, errors: _Errors) -> _Attribution:
    """Factor split of every divergent pair whose numbers moved; a rule for error pairs."""
    positions = np.flatnonzero((pairs.status > 0) & rows.both_ok & pairs.numbers_moved)
    decisions_a, decisions_b = al.a.decisions, al.b.decisions
    picked_a = [decisions_a[al.ia[p]] for p in positions.tolist()]
    picked_b = [decisions_b[al.ib[p]] for p in positions.tolist()]
    table = attr.factor_table(picked_a, picked_b)
    oa = al.a.columns["offset"].values[al.ia]
    ob = al.b.columns["offset"].values[al.ib]
    contrib = attr.contributions(oa[positions], ob[positions], table)
    runs_changed = np.fromiter(
        (attr.runs_changed(x, y) for x, y in zip(picked_a, picked_b, strict=True)),
        dtype=bool,
        count=positions.size,
    )
    cause_index = {name: k for k, name in enumerate(CAUSES)}
    run_counts = cause_index["run_counts"]
    run_factor = np.isin(
        contrib.dominant,
        [FACTORS.index("duration"), FACTORS.index("success_probability")],
    )
    cause = np.where(runs_changed & run_factor, run_counts, contrib.dominant).astype(np.int64)
    row = np.full(rows.n, -1, dtype=np.int64)
    row[positions] = np.arange(positions.size)
    error_cause = np.full(rows.n, -1, dtype=np.int64)
    for pos in np.flatnonzero(errors.kind > 0).tolist():
        rule = attr.error_rule(decisions_a[al.ia[pos]], decisions_b[al.ib[pos]])
        error_cause[pos] = cause_index.get(rule.factor, -1)
    return _Attribution(
        positions, row, table, contrib, contrib.weights(), runs_changed, cause, error_cause
    )


def _moved_by(
    al: Alignment, rows: _Rows, pairs: _Pairs, ties: _Ties, pos: int
) -> tuple[tuple[str, ...], int]:
    """Candidates with changed numbers that crossed pair ``pos`` in the queue."""
    ra, rb = ties.rank_a, ties.rank_b
    if ra[pos] == 0:
        return (), 0
    movers = np.flatnonzero(pairs.numbers_moved & (ra > 0))
    movers = movers[movers != pos]
    crossed = movers[(ra[movers] < ra[pos]) != (rb[movers] < rb[pos])]
    if crossed.size == 0:
        return (), 0
    size = np.abs((rb[crossed] - ra[crossed]).astype(np.int64))
    top = crossed[np.argsort(-size, kind="stable")[:5]]
    labels = tuple(f"{rows.keys[i][0]}/{rows.keys[i][1]}" for i in top.tolist())
    return labels, int(crossed.size)


def _bucket_name(queue_rank: float) -> str | None:
    if not math.isfinite(queue_rank):
        return None
    r = int(queue_rank)
    return BUCKETS[r] if 0 <= r < len(BUCKETS) else None


@dataclass(frozen=True)
class _PairView:
    """Everything :func:`_pair_diff` reads about the aligned pairs."""

    al: Alignment
    rows: _Rows
    numeric: _Numeric
    structure: _Structure
    ties: _Ties
    errors: _Errors
    pairs: _Pairs
    attribution: _Attribution
    waiver_ids: tuple[str, ...]

    def waiver(self, index: int) -> str | None:
        return None if index < 0 else self.waiver_ids[index]


def _pair_diff(view: _PairView, i: int, severity: float) -> CandidateDiff:
    """The full record of one divergent aligned pair."""
    al = view.al
    ja, jb = int(al.ia[i]), int(al.ib[i])
    da, db = al.a.decisions[ja], al.b.decisions[jb]
    fields = []
    used: list[str] = []
    for name in NUMERIC_FIELDS:
        r = view.numeric.fields[name]
        st = int(r.status[i])
        if st == NONE:
            continue
        delta = float(r.delta[i])
        w = view.waiver(int(r.waiver[i]))
        if w:
            used.append(w)
        fields.append(
            FieldDelta(
                field=name,
                a=al.value_a(name, ja),
                b=al.value_b(name, jb),
                abs_delta=_finite_or_none(delta),
                rel_delta=_finite_or_none(float(r.rel[i])) if math.isfinite(delta) else None,
                status=STATUS_NAMES[st],
                noise=_finite_or_none(float(r.noise[i])) if r.noise[i] else None,
                waiver=w,
            )
        )
    for flags in (view.structure.flags, view.errors.flags, view.ties.flags):
        w = view.waiver(int(flags.waiver[i]))
        if w:
            used.append(w)
    err_kind = int(view.errors.kind[i])
    kind: DiffKind = _ERROR_KINDS[err_kind - 1] if err_kind else "value"
    a_row = int(view.attribution.row[i])
    attribution = None
    if a_row >= 0:
        attribution = attr.attribution_for(
            a_row,
            view.attribution.contrib,
            view.attribution.table,
            bool(view.attribution.runs_changed[a_row]),
        )
    category = KINDS[int(view.pairs.kind[i]) - 1] if view.pairs.kind[i] else "numeric"
    moved_by: tuple[str, ...] = ()
    moved_total = 0
    if category in ("order", "tie_order"):
        moved_by, moved_total = _moved_by(al, view.rows, view.pairs, view.ties, i)
    qa = al.a.columns["queue_bucket"].values[ja]
    qb = al.b.columns["queue_bucket"].values[jb]
    structure = view.structure
    return CandidateDiff(
        codebase=da.codebase,
        campaign=da.campaign,
        change_set=da.change_set,
        kind=kind,
        status=STATUS_NAMES[int(view.pairs.status[i])],
        severity=severity,
        fields=tuple(fields),
        structure=(
            structure_lines(da, db) if i in structure.names and structure.flags.status[i] else ()
        ),
        attribution=attribution,
        offset_a=da.offset,
        offset_b=db.offset,
        rank_a=al.a.queue_pos.get(decision_key(da)),
        rank_b=al.b.queue_pos.get(decision_key(db)),
        bucket_a=_bucket_name(qa),
        bucket_b=_bucket_name(qb),
        reasons_a=tuple(da.reasons),
        reasons_b=tuple(db.reasons),
        error_a=_error_text(da),
        error_b=_error_text(db),
        waivers=tuple(dict.fromkeys(used)),
        category=category,
        rule=attr.error_rule(da, db) if err_kind else None,
        run_counts=attr.run_counts(da, db) if da.error is None and db.error is None else (),
        moved_by=moved_by,
        moved_by_total=moved_total,
    )


def _one_sided_diff(
    side: Side, key_index: int, missing: bool, status: int, waiver: str | None
) -> CandidateDiff:
    d = side.decisions[key_index]
    rank = side.queue_pos.get(decision_key(d))
    return CandidateDiff(
        codebase=d.codebase,
        campaign=d.campaign,
        change_set=d.change_set,
        kind="missing" if missing else "extra",
        status=STATUS_NAMES[status],
        severity=math.inf,
        offset_a=d.offset if missing else None,
        offset_b=None if missing else d.offset,
        rank_a=rank if missing else None,
        rank_b=None if missing else rank,
        reasons_a=d.reasons if missing else (),
        reasons_b=() if missing else d.reasons,
        error_a=_error_text(d) if missing else None,
        error_b=None if missing else _error_text(d),
        waivers=() if waiver is None else (waiver,),
        category="presence",
    )


def _candidates(
    view: _PairView, presence: _Presence, top_n: int
) -> tuple[tuple[CandidateDiff, ...], int]:
    """The ``top_n`` divergent candidates, real first, then by severity."""
    al, pairs = view.al, view.pairs
    pair_div = np.flatnonzero(pairs.status > 0)
    n_miss, n_extra = len(presence.missing_keys), len(presence.extra_keys)
    # entries: (group, index): group 0 pairs, 1 missing, 2 extra
    groups = np.concatenate([np.zeros(pair_div.size), np.ones(n_miss), np.full(n_extra, 2)]).astype(
        np.int64
    )
    index = np.concatenate([pair_div, np.arange(n_miss), np.arange(n_extra)]).astype(np.int64)
    statuses = np.concatenate(
        [pairs.status[pair_div], presence.missing_status, presence.extra_status]
    ).astype(np.int64)
    severities = np.concatenate(
        [pairs.severity[pair_div], np.full(n_miss, np.inf), np.full(n_extra, np.inf)]
    )
    order = np.lexsort((-severities, -statuses))
    out: list[CandidateDiff] = []
    for entry in order[:top_n].tolist():
        group, i = int(groups[entry]), int(index[entry])
        if group == 0:
            out.append(_pair_diff(view, i, float(severities[entry])))
        elif group == 1:
            w = view.waiver(int(presence.missing_waiver[i]))
            out.append(_one_sided_diff(al.a, int(al.missing[i]), True, int(statuses[entry]), w))
        else:
            w = view.waiver(int(presence.extra_waiver[i]))
            out.append(_one_sided_diff(al.b, int(al.extra[i]), False, int(statuses[entry]), w))
    return tuple(out), int(statuses.size)


def _keyrefs(
    al: Alignment, presence: _Presence, top_n: int
) -> tuple[tuple[KeyRef, ...], tuple[KeyRef, ...]]:
    def keyref(side: Side, key_index: int, label: str, st: int) -> KeyRef:
        d = side.decisions[key_index]
        return KeyRef(
            codebase=d.codebase,
            campaign=d.campaign,
            change_set=d.change_set,
            side=label,
            status=STATUS_NAMES[st],
            offset=d.offset,
            rank=side.queue_pos.get(decision_key(d)),
            error=_error_text(d),
        )

    missing = tuple(
        keyref(al.a, int(al.missing[i]), "A", int(presence.missing_status[i]))
        for i in range(min(top_n, len(presence.missing_keys)))
    )
    extra = tuple(
        keyref(al.b, int(al.extra[i]), "B", int(presence.extra_status[i]))
        for i in range(min(top_n, len(presence.extra_keys)))
    )
    return missing, extra


def _error_list(al: Alignment, errors: _Errors, top_n: int) -> tuple[ErrorMismatch, ...]:
    out = []
    for pos in np.flatnonzero(errors.kind > 0)[:top_n].tolist():
        da, db = al.a.decisions[al.ia[pos]], al.b.decisions[al.ib[pos]]
        out.append(
            ErrorMismatch(
                codebase=da.codebase,
                campaign=da.campaign,
                change_set=da.change_set,
                kind=_ERROR_KINDS[int(errors.kind[pos]) - 1],
                status=STATUS_NAMES[int(errors.flags.status[pos])],
                type_a=None if da.error is None else da.error.type,
                message_a=None if da.error is None else da.error.message,
                type_b=None if db.error is None else db.error.type,
                message_b=None if db.error is None else db.error.message,
                rule=attr.error_rule(da, db),
            )
        )
    return tuple(out)


def _ranking(
    al: Alignment, settings: Settings
) -> tuple[RankMetrics | None, dict[str, tuple[float | None, float, bool]]]:
    sa, sb = al.a, al.b
    ranking = None
    if sa.schedule.queue and sb.schedule.queue:
        ranking = rank_metrics_of(
            sa.queue_keys,
            sa.queue_scores,
            sb.queue_keys,
            sb.queue_scores,
            common=(al.queue_a, al.queue_b),
            distinct=(len(sa.queue_pos), len(sb.queue_pos)),
            p=settings.ranking.rbo_p,
            top_k=settings.ranking.top_k,
            movers=settings.ranking.movers,
        )
    checks: dict[str, tuple[float | None, float, bool]] = {}
    if settings.ranking.min_kendall_tau is not None:
        tau = ranking.kendall_tau_b if ranking else None
        threshold = settings.ranking.min_kendall_tau
        checks["kendall_tau_b"] = (tau, threshold, tau is not None and tau >= threshold)
    if settings.ranking.min_rbo is not None:
        value = ranking.rbo if ranking else None
        threshold = settings.ranking.min_rbo
        checks["rbo"] = (value, threshold, value is not None and value >= threshold)
    return ranking, checks


def _campaigns(
    view: _PairView, presence: _Presence
) -> tuple[tuple[CampaignSummary, ...], dict[str, int]]:
    """Per-campaign aggregates, and the causes over all campaigns."""
    rows, numeric, structure = view.rows, view.numeric, view.structure
    ties, errors, pairs, attribution = view.ties, view.errors, view.pairs, view.attribution
    n = rows.n
    n_miss = len(presence.missing_keys)
    all_status = np.concatenate(
        [pairs.status, presence.missing_status, presence.extra_status]
    ).astype(np.int64)
    all_kind = np.concatenate(
        [
            pairs.kind,
            np.full(n_miss, _KIND_CODE["presence"]),
            np.full(len(presence.extra_keys), _KIND_CODE["presence"]),
        ]
    ).astype(np.int64)
    all_campaigns = (
        rows.campaigns + [k[1] for k in presence.missing_keys] + [k[1] for k in presence.extra_keys]
    )
    names_c, codes = (
        np.unique(np.asarray(all_campaigns, dtype=object).astype(str), return_inverse=True)
        if all_campaigns
        else (np.array([], dtype=str), np.array([], dtype=np.int64))
    )
    codes = codes.astype(np.int64)
    n_c = len(names_c)
    pair_codes = codes[:n]
    miss_codes = codes[n : n + n_miss]
    extra_codes = codes[n + n_miss :]

    def count(mask: BoolArray, which: IntArray) -> IntArray:
        return np.bincount(which[mask], minlength=n_c).astype(np.int64)

    c_total = np.bincount(codes, minlength=n_c)
    c_real = count(all_status == REAL, codes)
    c_noise = count(all_status == NOISE, codes)
    c_waived = count(all_status == WAIVED, codes)
    c_div = count(all_status > 0, codes)
    c_missing = np.bincount(miss_codes, minlength=n_c)
    c_extra = np.bincount(extra_codes, minlength=n_c)
    c_err = count(errors.kind > 0, pair_codes)
    c_kinds = {
        name: count((all_status == REAL) & (all_kind == code), codes)
        for name, code in _KIND_CODE.items()
    }
    c_fields = {
        name: count(numeric.fields[name].status == REAL, pair_codes) for name in NUMERIC_FIELDS
    }
    c_fields["structure"] = count(structure.flags.status == REAL, pair_codes)
    c_fields["tie_order"] = count(ties.flags.status == REAL, pair_codes)
    c_fields["error"] = count(errors.flags.status == REAL, pair_codes)
    c_fields["presence"] = count(presence.missing_status == REAL, miss_codes) + count(
        presence.extra_status == REAL, extra_codes
    )
    # causes: the attributed pairs' cause, and error pairs' rule
    pos = attribution.positions
    real_attr = (pairs.status[pos] == REAL) & (attribution.cause >= 0)
    attr_codes = pair_codes[pos]
    real_err = (errors.flags.status == REAL) & (attribution.error_cause >= 0)
    cause_counts = {
        f: count(real_attr & (attribution.cause == k), attr_codes)
        + count(real_err & (attribution.error_cause == k), pair_codes)
        for k, f in enumerate(CAUSES)
    }
    # weights: the factor split, the part of the run factors moved to run_counts
    cause_weights: dict[str, FloatArray] = {}
    moved = attribution.runs_changed[real_attr]
    for f in CAUSES:
        w = attribution.weights.get(f)
        values: FloatArray = (
            np.zeros(int(real_attr.sum())) if w is None else w[real_attr].astype(np.float64)
        )
        if f in attr.RUN_FACTORS:
            values[moved] = 0.0
        if f == "run_counts":
            for g in attr.RUN_FACTORS:
                values[moved] += attribution.weights[g][real_attr][moved]
        errored = pair_codes[real_err & (attribution.error_cause == CAUSES.index(f))]
        weighted = np.bincount(attr_codes[real_attr], weights=values, minlength=n_c)
        cause_weights[f] = np.asarray(weighted, dtype=np.float64) + np.bincount(
            errored, minlength=n_c
        )
    medians = np.full(n_c, np.nan)
    finite_lr = np.isfinite(pairs.log_ratio)
    if n and finite_lr.any():
        lr_codes, lr_values = pair_codes[finite_lr], pairs.log_ratio[finite_lr]
        order_c = np.argsort(lr_codes, kind="stable")
        bounds = np.searchsorted(lr_codes[order_c], np.arange(n_c + 1))
        for c in range(n_c):
            chunk = lr_values[order_c[bounds[c] : bounds[c + 1]]]
            if chunk.size:
                medians[c] = float(np.median(chunk))
    taus = _campaign_taus(ties, pair_codes, n_c)
    summaries = []
    for c in range(n_c):
        weights = {f: float(cause_weights[f][c]) for f in CAUSES}
        best = max(weights, key=lambda f: weights[f]) if any(weights.values()) else None
        tau, common = taus[c]
        summaries.append(
            CampaignSummary(
                campaign=str(names_c[c]),
                candidates=int(c_total[c]),
                divergent=int(c_div[c]),
                real=int(c_real[c]),
                noise=int(c_noise[c]),
                waived=int(c_waived[c]),
                missing=int(c_missing[c]),
                extra=int(c_extra[c]),
                error_mismatches=int(c_err[c]),
                field_divergences={f: int(v[c]) for f, v in c_fields.items() if v[c]},
                causes={f: int(cause_counts[f][c]) for f in CAUSES if cause_counts[f][c]},
                cause_weight={f: w for f, w in weights.items() if w},
                dominant_cause=best,
                median_log_ratio=None if math.isnan(medians[c]) else float(medians[c]),
                kinds={k: int(v[c]) for k, v in c_kinds.items() if v[c]},
                kendall_tau_b=tau,
                queued_common=common,
            )
        )
    summaries.sort(key=lambda s: (-s.real, -s.divergent, s.campaign))
    causes = {f: int(cause_counts[f].sum()) for f in CAUSES if cause_counts[f].sum()}
    return tuple(summaries), causes


def _campaign_taus(ties: _Ties, pair_codes: IntArray, n_c: int) -> list[tuple[float | None, int]]:
    """Per campaign: Kendall tau-b of its candidates' exact worker ranks."""
    from scipy import stats  # see harness.comparison.ranking.load_statistics

    out: list[tuple[float | None, int]] = []
    queued = ties.rank_a > 0
    for c in range(n_c):
        mask = queued & (pair_codes == c)
        m = int(mask.sum())
        tau: float | None = None
        if m >= 2:
            value = float(stats.kendalltau(ties.rank_a[mask], ties.rank_b[mask]).statistic)
            tau = value if math.isfinite(value) else None
        elif m == 1:
            tau = 1.0
        out.append((tau, m))
    return out


def _verdict(
    pairs: _Pairs,
    presence: _Presence,
    budget: int,
    checks: dict[str, tuple[float | None, float, bool]],
) -> _Verdict:
    all_status = np.concatenate(
        [pairs.status, presence.missing_status, presence.extra_status]
    ).astype(np.int64)
    n_one = len(presence.missing_keys) + len(presence.extra_keys)
    all_kind = np.concatenate(
        [pairs.kind, np.full(n_one, _KIND_CODE["presence"], dtype=np.int8)]
    ).astype(np.int64)
    kinds = tuple(
        KindCount(
            name,
            int(((all_kind == code) & (all_status == REAL)).sum()),
            int(((all_kind == code) & (all_status == NOISE)).sum()),
            int(((all_kind == code) & (all_status == WAIVED)).sum()),
        )
        for name, code in _KIND_CODE.items()
    )
    real = int((all_status == REAL).sum())
    noise = int((all_status == NOISE).sum())
    waived = int((all_status == WAIVED).sum())
    failed = [name for name, (_, _, ok) in checks.items() if not ok]
    by_kind = ", ".join(f"{k.kind.replace('_', ' ')} {k.real}" for k in kinds if k.real)
    if real > budget or failed:
        parts = []
        if real > budget:
            parts.append(f"{real} real divergence(s) exceed the budget of {budget} ({by_kind})")
        for name in failed:
            value, threshold, _ = checks[name]
            parts.append(f"{name} {value} below {threshold}")
        return _Verdict("fail", "; ".join(parts), real, noise, waived, kinds)
    reason = (
        f"{real} real divergence(s) within the budget of {budget}"
        f"{f' ({by_kind})' if by_kind else ''} ({noise} noise, {waived} waived)"
    )
    return _Verdict("pass", reason, real, noise, waived, kinds)


def _queue_heads(
    al: Alignment, size: int
) -> tuple[tuple[QueueHeadRow, ...], tuple[QueueHeadRow, ...]]:
    """The first ``size`` places of each queue, with each item's place on the other side."""

    def head(this: Side, other: Side) -> tuple[QueueHeadRow, ...]:
        rows = []
        queue = this.schedule.queue
        groups = tie_groups(this.queue_scores) if len(queue) else None
        other_groups = tie_groups(other.queue_scores) if len(other.schedule.queue) else None
        for k, item in enumerate(queue[:size]):
            key = this.queue_keys[k]
            there = other.queue_pos.get(key)
            moved = there is None or there != k + 1
            if there is not None and groups is not None and other_groups is not None:
                # a move inside overlapping tie groups is only a tie-order change
                s, e = int(groups.start[k]), int(groups.end[k])
                so, eo = int(other_groups.start[there - 1]), int(other_groups.end[there - 1])
                moved = moved and not (s <= eo and so <= e and s != e and so != eo)
            rows.append(
                QueueHeadRow(
                    position=k + 1,
                    label=_key_label(key),
                    priority=int(item.priority),
                    bucket=item.bucket,
                    other=there,
                    moved=bool(moved),
                )
            )
        return tuple(rows)

    return head(al.a, al.b), head(al.b, al.a)


def _key_label(key: Key) -> str:
    return f"{key[0]}/{key[1]}" + (f" [{key[2]}]" if key[2] else "")


def _distributions(al: Alignment, rows: _Rows) -> tuple[Distribution, ...]:
    """A's and B's values on common bins: offsets and durations on log scales."""
    out = []
    specs = (
        ("offset", "offset (queue cost ÷ worth)", "", "log"),
        ("success_probability", "success probability", "", "linear"),
        ("estimated_duration_us", "estimated duration", "s", "log"),
    )
    for name, quantity, unit, scale in specs:
        ca, cb = al.column_a(name), al.column_b(name)
        ok = rows.both_ok & ~ca.null & ~cb.null & np.isfinite(ca.values) & np.isfinite(cb.values)
        va, vb = ca.values[ok], cb.values[ok]
        if name == "estimated_duration_us":
            va, vb = va / 1e6, vb / 1e6
        if va.size == 0:
            continue
        both = np.concatenate([va, vb])
        if scale == "log":
            positive = both[both > 0]
            if positive.size == 0 or positive.max() / positive.min() < 100:
                scale = "linear"
        if scale == "log":
            lo, hi = float(positive.min()), float(positive.max())
            edges = np.geomspace(lo, hi * (1 + 1e-12), 31)
            va, vb = va[va > 0], vb[vb > 0]
        else:
            lo, hi = float(both.min()), float(both.max())
            if hi <= lo:
                hi = lo + max(abs(lo) * 1e-3, 1e-12)
            edges = np.linspace(lo, hi, 31)
        counts_a, _ = np.histogram(va, bins=edges)
        counts_b, _ = np.histogram(vb, bins=edges)
        out.append(
            Distribution(
                quantity,
                unit,
                tuple(float(e) for e in edges),
                tuple(int(c) for c in counts_a),
                tuple(int(c) for c in counts_b),
                scale,
            )
        )
    return tuple(out)


# ------------------------------------------------------------------ entry point


def compare_schedules(
    a: Schedule,
    b: Schedule,
    *,
    settings: Settings | None = None,
    noise: NoiseProfile | None = None,
    waivers: Sequence[Waiver] | WaiverSet = (),
    budget: int = 0,
    source_a: str = "engine",
    source_b: str = "engine",
    today: date | None = None,
) -> Comparison:
    """Compare ``b`` (under test) against ``a`` (reference); see the module docstring."""
    started = time.perf_counter()
    settings = settings or default_settings()
    waiver_set = waivers if isinstance(waivers, WaiverSet) else WaiverSet(waivers, today)
    al = align(side_from_schedule(a), side_from_schedule(b))
    rows = _rows(al, noise)
    cls = _Classifier(noise, waiver_set, rows.campaigns, rows.codebases)
    order = _order_reference(al, noise, settings)
    numeric = _numeric(al, rows, settings, cls, order)
    structure = _structure(al, rows, cls, order)
    ties = _ties(al, rows, settings, cls, order)
    errors = _errors(al, rows, cls, order)
    presence = _presence(al, cls, order)
    pairs = _pairs(al, rows, numeric, structure, ties, errors)
    attribution = _attribution(al, rows, pairs, errors)
    view = _PairView(
        al,
        rows,
        numeric,
        structure,
        ties,
        errors,
        pairs,
        attribution,
        tuple(w.id for w in waiver_set.waivers),
    )
    candidates, candidates_total = _candidates(view, presence, settings.top_n)
    missing, extra = _keyrefs(al, presence, settings.top_n)
    ranking, checks = _ranking(al, settings)
    campaigns, causes = _campaigns(view, presence)
    verdict = _verdict(pairs, presence, budget, checks)
    head_a, head_b = _queue_heads(al, settings.queue_head)
    baseline = None
    if noise is not None:
        baseline = noise.baseline(settings.noise)
        if order is not None:
            explained = int(((pairs.status == NOISE) & _order_explains(order)).sum())
            baseline = replace(baseline, explained_by_order=explained)
    counts = Counts(
        a=al.a.size,
        b=al.b.size,
        aligned=rows.n,
        missing=len(presence.missing_keys),
        extra=len(presence.extra_keys),
        both_ok=int(rows.both_ok.sum()),
        both_error_same=int(errors.same.sum()),
        error_mismatches=int((errors.kind > 0).sum()),
        identical=int(((pairs.status == 0) & (errors.kind == 0)).sum()),
        duplicate_keys_a=al.a.duplicates,
        duplicate_keys_b=al.b.duplicates,
    )
    return Comparison(
        verdict=verdict.verdict,
        verdict_reason=verdict.reason,
        budget=budget,
        real=verdict.real,
        noise=verdict.noise,
        waived=verdict.waived,
        a=run_info(a, "A", source_a),
        b=run_info(b, "B", source_b),
        counts=counts,
        tolerances=tuple(settings.tolerance(name) for name in NUMERIC_FIELDS),
        noise_rule=settings.noise,
        fields=numeric.stats,
        structure_divergences=structure.counts,
        candidates=candidates,
        candidates_total=candidates_total,
        missing=missing,
        extra=extra,
        error_mismatches=_error_list(al, errors, settings.top_n),
        ranking=ranking,
        campaigns=campaigns,
        causes=causes,
        noise_baseline=baseline,
        waivers=waiver_set.uses(),
        plots=_plots(al, pairs, ranking, settings.top_n, rows.both_ok),
        top_n=settings.top_n,
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        elapsed_s=time.perf_counter() - started,
        ordering_checks=checks,
        kinds=verdict.kinds,
        ties_ordered=settings.ranking.ties_ordered,
        head_a=head_a,
        head_b=head_b,
        distributions=_distributions(al, rows),
        table_rows=settings.table_rows,
        priority_shift=al.priority_shift,
    )


def _order_explains(order: _OrderRef) -> BoolArray:
    """Pairs every one of whose differences the order run reproduces."""
    out = order.present.copy()
    for agrees in order.agrees.values():
        out &= agrees
    return out & order.same_error & order.same_structure & order.same_ties


def _plots(
    al: Alignment,
    pairs: _Pairs,
    ranking: RankMetrics | None,
    top_n: int,
    both_ok: BoolArray,
) -> PlotData:
    oa = al.a.columns["offset"].values[al.ia]
    ob = al.b.columns["offset"].values[al.ib]
    valid, status = pairs.valid_offsets, pairs.status
    divergent = np.flatnonzero(valid & (status > 0))
    chosen_mask = np.zeros(valid.size, dtype=bool)
    if divergent.size > top_n:
        # the most severe, then an even sample of everything else (divergent or not)
        by_severity = divergent[np.argsort(-pairs.severity[divergent], kind="stable")]
        divergent = by_severity[:top_n]
    chosen_mask[divergent] = True
    rest = np.flatnonzero(valid & ~chosen_mask)
    room = max(PLOT_SAMPLE - divergent.size, 0)
    if rest.size > room:
        rest = rest[np.linspace(0, rest.size - 1, room).astype(np.int64)] if room else rest[:0]
    chosen = np.concatenate([divergent, rest])
    points = tuple((float(oa[i]), float(ob[i]), int(status[i])) for i in chosen.tolist())
    keys = al.a.keys
    labels = tuple(_key_label(keys[int(al.ia[i])]) for i in chosen.tolist())

    def signed(name: str) -> tuple[FloatArray, FloatArray]:
        ca, cb = al.column_a(name), al.column_b(name)
        ok = both_ok & ~ca.null & ~cb.null & np.isfinite(ca.values) & np.isfinite(cb.values)
        return ca.values[ok], cb.values[ok]

    pa, pb = signed("success_probability")
    da, db = signed("estimated_duration_us")
    with np.errstate(divide="ignore", invalid="ignore"):
        # log2 of the ratio: one "relative" measure for durations, read as ×2, ×4, ÷2
        dur_ratio = np.where((da > 0) & (db > 0), np.log2(db / np.where(da > 0, da, 1.0)), np.nan)
    histograms = {
        "success_probability_delta": _histogram(pb - pa, "success probability, B − A"),
        "duration_ratio": _histogram(dur_ratio, "estimated duration, B ÷ A (log scale)"),
        "offset_log_ratio": _histogram(pairs.log_ratio, "offset, B ÷ A (log scale)"),
    }
    if ranking is not None and ranking.displacement_histogram is not None:
        histograms["rank_displacement"] = ranking.displacement_histogram
    return PlotData(
        offset_pairs=points,
        histograms=histograms,
        offset_divergent=int((valid & (status > 0)).sum()),
        offset_total=int(valid.sum()),
        offset_labels=labels,
    )


__all__ = ["DECISION_FIELDS", "compare_schedules", "run_info", "structure_lines"]
