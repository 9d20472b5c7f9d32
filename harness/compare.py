"""Compare two schedules: align by key, compare fields under tolerances, classify, explain.

The entry point is :func:`compare_schedules`; it returns a
:class:`~harness.comparison_model.Comparison` (see that module for every field).

Rules, in order, for each numeric field of each candidate both engines decided:

1. **Equal**: both ``None``, bit-equal, both NaN, or the same infinity. NaN
   against NaN is *equal*: both engines produced the same (odd) result, and the
   comparator judges agreement, not sanity. NaN or an infinity against anything
   else is a divergence (``nonfinite_mismatch``), as is ``None`` against a
   value (``null_mismatch``).
2. **Tolerated**: ``|b−a| <= absolute`` or ``|b−a| <= relative·max(|a|,|b|)``
   (:mod:`harness.tolerances`).
3. Otherwise **divergent**, and then: *noise* unless Diffy's rule says the
   difference stands out of the noise baseline (:mod:`harness.noise`);
   *waived* when an active waiver covers it (:mod:`harness.waivers`);
   otherwise *real*.

Candidates present on one side only (``presence``), an error on one side only
or a different error type (``error``), and differences in the non-numeric
fields (``structure``, explained by deepdiff) are divergences classified the
same way. Everything is computed on numpy columns; objects are built only for
the ``top_n`` candidates kept in the result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from deepdiff import DeepDiff

from engines.model import BUCKETS, Decision, Schedule
from harness import attribution as attr
from harness.alignment import (
    DECISION_FIELDS,
    STRUCTURE_FIELDS,
    Alignment,
    Side,
    align,
    decision_key,
    side_from_schedule,
    structure_mismatch,
)
from harness.comparison_model import (
    FACTORS,
    NUMERIC_FIELDS,
    CampaignSummary,
    CandidateDiff,
    Comparison,
    Counts,
    DiffKind,
    ErrorMismatch,
    FieldDelta,
    FieldStats,
    Histogram,
    KeyRef,
    PlotData,
    RankMetrics,
    RunInfo,
    Status,
    Verdict,
)
from harness.noise import NoiseProfile, field_beyond_noise, field_deltas, within_own_noise
from harness.ranking import rank_metrics_of
from harness.tolerances import Settings, default_settings
from harness.waivers import Waiver, WaiverSet

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

NONE, NOISE, WAIVED, REAL = 0, 1, 2, 3
STATUS_NAMES: dict[int, Status] = {NOISE: "noise", WAIVED: "waived", REAL: "real"}
PLOT_SAMPLE = 2000
_ERROR_KINDS: tuple[DiffKind, ...] = ("error_vs_value", "value_vs_error", "error_mismatch")


@dataclass
class _FieldResult:
    status: npt.NDArray[np.int8]
    waiver: IntArray
    delta: FloatArray
    rel: FloatArray
    noise: FloatArray


def _classify(
    divergent: BoolArray,
    noise: FloatArray | None,
    field_noisy: bool,
    waivers: WaiverSet,
    name: str,
    campaigns: Sequence[str],
    codebases: Sequence[str],
    delta: FloatArray,
) -> tuple[npt.NDArray[np.int8], IntArray]:
    """Status per row: noise (the candidate's own noise covers it, or the whole
    field is within noise by Diffy's rule and the candidate was noisy itself),
    waived, or real."""
    status = np.zeros(divergent.shape, dtype=np.int8)
    if noise is None:
        real = divergent.copy()
    elif field_noisy:
        # the field is within noise (Diffy): excuse the candidates that were noisy
        # themselves; one that never moved against itself but moved now is real
        real = divergent & ~(noise > 0)
    else:
        real = divergent & ~within_own_noise(delta, noise)
    status[divergent & ~real] = NOISE
    waiver = (
        waivers.apply(name, campaigns, codebases, real)
        if waivers
        else np.full(divergent.shape, -1, dtype=np.int64)
    )
    waived = waiver >= 0
    status[real & waived] = WAIVED
    status[real & ~waived] = REAL
    return status, waiver


def _flag_status(
    divergent: BoolArray,
    noisy: BoolArray | None,
    waivers: WaiverSet,
    name: str,
    campaigns: Sequence[str],
    codebases: Sequence[str],
) -> tuple[npt.NDArray[np.int8], IntArray]:
    """Status for yes/no divergences (presence, error, structure)."""
    # noise when the self-runs showed the same flag for that candidate
    noise = None if noisy is None else np.where(noisy, np.inf, 0.0)
    delta = np.where(divergent, 1.0, 0.0)
    return _classify(divergent, noise, False, waivers, name, campaigns, codebases, delta)


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
    side_a, side_b = side_from_schedule(a), side_from_schedule(b)
    al = align(side_a, side_b)
    return _compare(al, settings, noise, waiver_set, budget, source_a, source_b, started)


def _compare(
    al: Alignment,
    settings: Settings,
    profile: NoiseProfile | None,
    waivers: WaiverSet,
    budget: int,
    source_a: str,
    source_b: str,
    started: float,
) -> Comparison:
    sa, sb = al.a, al.b
    ia, ib = al.ia, al.ib
    n = int(ia.size)
    keys = [sa.keys[i] for i in ia.tolist()]
    campaigns = [k[1] for k in keys]
    codebases = [k[0] for k in keys]
    nidx = profile.lookup(keys) if profile is not None else None
    ok_a, ok_b = sa.ok[ia], sb.ok[ib]
    both_ok = ok_a & ok_b
    pair_status = np.zeros(n, dtype=np.int8)

    # ---- numeric fields
    results: dict[str, _FieldResult] = {}
    stats: list[FieldStats] = []
    for name in NUMERIC_FIELDS:
        tol = settings.tolerance(name)
        ca, cb = sa.columns[name].take(ia), sb.columns[name].take(ib)
        va, vb, na, nb = ca.values, cb.values, ca.null, cb.null
        delta = field_deltas(va, na, vb, nb)
        with np.errstate(invalid="ignore", over="ignore"):
            scale = np.maximum(np.abs(va), np.abs(vb))
            equal = delta == 0.0
            tolerated = (
                ~equal
                & np.isfinite(delta)
                & ((delta <= tol.absolute) | (delta <= tol.relative * scale))
            )
            rel = np.where(scale > 0, delta / np.where(scale > 0, scale, 1.0), 0.0)
        divergent = both_ok & ~equal & ~tolerated
        noise_n = _noise_for(profile, nidx, name)
        field_noise = None
        within_field_noise = False
        if noise_n is not None and profile is not None:
            # candidates the engine itself moved beyond tolerance in this field
            rel_n = _noise_for(profile, nidx, name, relative=True)
            assert rel_n is not None
            noisy_rows = both_ok & (noise_n > tol.absolute) & (rel_n > tol.relative)
            field_noise = int(noisy_rows.sum())
            within_field_noise = not field_beyond_noise(
                int(divergent.sum()), field_noise, int(both_ok.sum()), settings.noise
            )
        status, waiver = _classify(
            divergent,
            noise_n,
            within_field_noise,
            waivers,
            name,
            campaigns,
            codebases,
            delta,
        )
        pair_status = np.maximum(pair_status, status)
        results[name] = _FieldResult(
            status, waiver, delta, rel, noise_n if noise_n is not None else np.zeros(n)
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
                beyond_noise=None if field_noise is None else not within_field_noise,
            )
        )

    # ---- structure (cheap tuple check, deepdiff later for the kept ones)
    struct_pos: list[int] = []
    struct_names: dict[int, tuple[str, ...]] = {}
    structure_counts: dict[str, int] = {}
    decisions_a, decisions_b = sa.decisions, sb.decisions
    for pos in np.flatnonzero(both_ok).tolist():
        da, db = decisions_a[ia[pos]], decisions_b[ib[pos]]
        if da is db:
            continue
        names = structure_mismatch(da, db)
        if names:
            struct_pos.append(pos)
            struct_names[pos] = names
            for nm in names:
                structure_counts[nm] = structure_counts.get(nm, 0) + 1
    struct_div = np.zeros(n, dtype=bool)
    struct_div[np.asarray(struct_pos, dtype=np.int64)] = True
    struct_status, struct_waiver = _flag_status(
        struct_div,
        _noise_flags(profile, nidx, "structure"),
        waivers,
        "structure",
        campaigns,
        codebases,
    )
    pair_status = np.maximum(pair_status, struct_status)

    # ---- errors
    types_a = [sa.error_types[i] for i in ia.tolist()]
    types_b = [sb.error_types[j] for j in ib.tolist()]
    err_kind = np.zeros(n, dtype=np.int8)  # 1 error_vs_value, 2 value_vs_error, 3 mismatch
    err_kind[~ok_a & ok_b] = 1
    err_kind[ok_a & ~ok_b] = 2
    both_err = ~ok_a & ~ok_b
    same_err = np.zeros(n, dtype=bool)
    for pos in np.flatnonzero(both_err).tolist():
        if types_a[pos] == types_b[pos]:
            same_err[pos] = True
        else:
            err_kind[pos] = 3
    err_status, err_waiver = _flag_status(
        err_kind > 0, _noise_flags(profile, nidx, "error"), waivers, "error", campaigns, codebases
    )
    pair_status = np.maximum(pair_status, err_status)

    # ---- presence
    miss_keys = [sa.keys[i] for i in al.missing.tolist()]
    extra_keys = [sb.keys[j] for j in al.extra.tolist()]
    miss_noisy = None
    extra_noisy = None
    if profile is not None:
        midx = profile.lookup(miss_keys)
        miss_noisy = np.where(midx >= 0, profile.presence[np.maximum(midx, 0)], False)
        extra_noisy = np.fromiter(
            (k in profile.extra_keys for k in extra_keys), dtype=bool, count=len(extra_keys)
        )
    miss_status, miss_waiver = _flag_status(
        np.ones(len(miss_keys), dtype=bool),
        miss_noisy,
        waivers,
        "presence",
        [k[1] for k in miss_keys],
        [k[0] for k in miss_keys],
    )
    extra_status, extra_waiver = _flag_status(
        np.ones(len(extra_keys), dtype=bool),
        extra_noisy,
        waivers,
        "presence",
        [k[1] for k in extra_keys],
        [k[0] for k in extra_keys],
    )

    # ---- attribution (vectorised over divergent pairs both engines decided)
    oa = sa.columns["offset"].values[ia]
    ob = sb.columns["offset"].values[ib]
    with np.errstate(divide="ignore", invalid="ignore"):
        valid_offsets = both_ok & np.isfinite(oa) & np.isfinite(ob) & (oa > 0) & (ob > 0)
        log_ratio_all = np.where(valid_offsets, np.log(ob) - np.log(oa), np.nan)
    # only where a decision field or the offset moved: collateral queue moves need no factors
    decision_moved = np.zeros(n, dtype=bool)
    for name in DECISION_FIELDS:
        decision_moved |= results[name].status > 0
    with np.errstate(invalid="ignore"):
        decision_moved |= np.isfinite(log_ratio_all) & (log_ratio_all != 0)
    div_pos = np.flatnonzero((pair_status > 0) & both_ok & decision_moved)
    table = attr.factor_table(
        [decisions_a[ia[p]] for p in div_pos.tolist()],
        [decisions_b[ib[p]] for p in div_pos.tolist()],
    )
    contrib = attr.contributions(oa[div_pos], ob[div_pos], table)
    contrib_weights = contrib.weights()
    attr_row = np.full(n, -1, dtype=np.int64)
    attr_row[div_pos] = np.arange(div_pos.size)

    # ---- severity and the kept candidates
    with np.errstate(invalid="ignore"):
        sev = np.where(np.isfinite(log_ratio_all), np.abs(log_ratio_all), 0.0)
        field_rel_max = np.zeros(n)
        for name in NUMERIC_FIELDS:
            r = results[name]
            field_rel_max = np.maximum(
                field_rel_max, np.where(r.status > 0, np.nan_to_num(r.rel, nan=np.inf), 0.0)
            )
        sev = np.where(sev > 0, sev, np.minimum(field_rel_max, 1.0))
        sev = np.where((err_kind > 0) | ~np.isfinite(field_rel_max), np.inf, sev)
    pair_div = np.flatnonzero(pair_status > 0)
    # entries: (group, index): group 0 pairs, 1 missing, 2 extra
    groups = np.concatenate(
        [np.zeros(pair_div.size), np.ones(len(miss_keys)), np.full(len(extra_keys), 2)]
    ).astype(np.int64)
    index = np.concatenate(
        [pair_div, np.arange(len(miss_keys)), np.arange(len(extra_keys))]
    ).astype(np.int64)
    statuses = np.concatenate([pair_status[pair_div], miss_status, extra_status]).astype(np.int64)
    severities = np.concatenate(
        [sev[pair_div], np.full(len(miss_keys), np.inf), np.full(len(extra_keys), np.inf)]
    )
    order = np.lexsort((-severities, -statuses))
    kept = order[: settings.top_n]

    waiver_ids = [w.id for w in waivers.waivers]

    def wid(i: int) -> str | None:
        return None if i < 0 else waiver_ids[i]

    queue_a, queue_b = sa.schedule.queue, sb.schedule.queue

    def bucket_name(queue_rank: float) -> str | None:
        if not math.isfinite(queue_rank):
            return None
        r = int(queue_rank)
        return BUCKETS[r] if 0 <= r < len(BUCKETS) else None

    candidates: list[CandidateDiff] = []
    for entry in kept.tolist():
        group, i = int(groups[entry]), int(index[entry])
        status_name = STATUS_NAMES[int(statuses[entry])]
        if group == 0:
            candidates.append(
                _pair_diff(
                    i,
                    status_name,
                    float(severities[entry]),
                    al,
                    results,
                    struct_names.get(i, ()),
                    struct_status[i],
                    err_kind[i],
                    contrib,
                    table,
                    int(attr_row[i]),
                    wid,
                    bucket_name,
                    [int(struct_waiver[i]), int(err_waiver[i])],
                )
            )
        else:
            side, key_index = (sa, al.missing[i]) if group == 1 else (sb, al.extra[i])
            d = side.decisions[int(key_index)]
            used = miss_waiver[i] if group == 1 else extra_waiver[i]
            candidates.append(
                CandidateDiff(
                    codebase=d.codebase,
                    campaign=d.campaign,
                    change_set=d.change_set,
                    kind="missing" if group == 1 else "extra",
                    status=status_name,
                    severity=math.inf,
                    offset_a=d.offset if group == 1 else None,
                    offset_b=d.offset if group == 2 else None,
                    rank_a=side.queue_pos.get(decision_key(d)) if group == 1 else None,
                    rank_b=side.queue_pos.get(decision_key(d)) if group == 2 else None,
                    reasons_a=d.reasons if group == 1 else (),
                    reasons_b=d.reasons if group == 2 else (),
                    error_a=_error_text(d) if group == 1 else None,
                    error_b=_error_text(d) if group == 2 else None,
                    waivers=() if used < 0 else (waiver_ids[int(used)],),
                )
            )

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

    top_n = settings.top_n
    missing = tuple(
        keyref(sa, int(al.missing[i]), "A", int(miss_status[i]))
        for i in range(min(top_n, len(miss_keys)))
    )
    extra = tuple(
        keyref(sb, int(al.extra[i]), "B", int(extra_status[i]))
        for i in range(min(top_n, len(extra_keys)))
    )
    kinds: dict[int, DiffKind] = {1: "error_vs_value", 2: "value_vs_error", 3: "error_mismatch"}
    error_mismatches = []
    for pos in np.flatnonzero(err_kind > 0)[:top_n].tolist():
        da, db = decisions_a[ia[pos]], decisions_b[ib[pos]]
        error_mismatches.append(
            ErrorMismatch(
                codebase=da.codebase,
                campaign=da.campaign,
                change_set=da.change_set,
                kind=kinds[int(err_kind[pos])],
                status=STATUS_NAMES[int(err_status[pos])],
                type_a=None if da.error is None else da.error.type,
                message_a=None if da.error is None else da.error.message,
                type_b=None if db.error is None else db.error.type,
                message_b=None if db.error is None else db.error.message,
            )
        )

    # ---- ranking
    ranking = None
    if queue_a and queue_b:
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
    ordering_checks: dict[str, tuple[float | None, float, bool]] = {}
    if settings.ranking.min_kendall_tau is not None:
        tau = ranking.kendall_tau_b if ranking else None
        ordering_checks["kendall_tau_b"] = (
            tau,
            settings.ranking.min_kendall_tau,
            tau is not None and tau >= settings.ranking.min_kendall_tau,
        )
    if settings.ranking.min_rbo is not None:
        value = ranking.rbo if ranking else None
        ordering_checks["rbo"] = (
            value,
            settings.ranking.min_rbo,
            value is not None and value >= settings.ranking.min_rbo,
        )

    # ---- per campaign
    all_status = np.concatenate([pair_status, miss_status, extra_status]).astype(np.int64)
    all_campaigns = campaigns + [k[1] for k in miss_keys] + [k[1] for k in extra_keys]
    names_c, codes = (
        np.unique(np.asarray(all_campaigns, dtype=object).astype(str), return_inverse=True)
        if all_campaigns
        else (np.array([], dtype=str), np.array([], dtype=np.int64))
    )
    codes = codes.astype(np.int64)
    n_c = len(names_c)
    pair_codes = codes[:n]
    miss_codes = codes[n : n + len(miss_keys)]
    extra_codes = codes[n + len(miss_keys) :]

    def count(mask: BoolArray, which: IntArray) -> IntArray:
        return np.bincount(which[mask], minlength=n_c).astype(np.int64)

    c_total = np.bincount(codes, minlength=n_c)
    c_real = count(all_status == REAL, codes)
    c_noise = count(all_status == NOISE, codes)
    c_waived = count(all_status == WAIVED, codes)
    c_div = count(all_status > 0, codes)
    c_missing = np.bincount(miss_codes, minlength=n_c)
    c_extra = np.bincount(extra_codes, minlength=n_c)
    c_err = count(err_kind > 0, pair_codes)
    c_fields = {name: count(results[name].status == REAL, pair_codes) for name in NUMERIC_FIELDS}
    c_fields["structure"] = count(struct_status == REAL, pair_codes)
    c_fields["error"] = count(err_status == REAL, pair_codes)
    c_fields["presence"] = count(miss_status == REAL, miss_codes) + count(
        extra_status == REAL, extra_codes
    )
    real_div = (pair_status[div_pos] == REAL) & (contrib.dominant >= 0)
    div_codes = pair_codes[div_pos]
    cause_counts = {
        f: count(real_div & (contrib.dominant == k), div_codes) for k, f in enumerate(FACTORS)
    }
    cause_weights = {
        f: np.bincount(div_codes[real_div], weights=contrib_weights[f][real_div], minlength=n_c)
        for f in FACTORS
    }
    medians = np.full(n_c, np.nan)
    finite_lr = np.isfinite(log_ratio_all)
    if n and finite_lr.any():
        lr_codes, lr_values = pair_codes[finite_lr], log_ratio_all[finite_lr]
        order_c = np.argsort(lr_codes, kind="stable")
        bounds = np.searchsorted(lr_codes[order_c], np.arange(n_c + 1))
        for c in range(n_c):
            chunk = lr_values[order_c[bounds[c] : bounds[c + 1]]]
            if chunk.size:
                medians[c] = float(np.median(chunk))
    campaign_list = []
    for c in range(n_c):
        weights = {f: float(cause_weights[f][c]) for f in FACTORS}
        best = max(weights, key=lambda f: weights[f]) if any(weights.values()) else None
        campaign_list.append(
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
                causes={f: int(cause_counts[f][c]) for f in FACTORS if cause_counts[f][c]},
                cause_weight={f: w for f, w in weights.items() if w},
                dominant_cause=best,
                median_log_ratio=None if math.isnan(medians[c]) else float(medians[c]),
            )
        )
    campaign_list.sort(key=lambda s: (-s.real, -s.divergent, s.campaign))
    causes = {f: int(cause_counts[f].sum()) for f in FACTORS if cause_counts[f].sum()}

    # ---- totals and verdict
    real_total = int((all_status == REAL).sum())
    noise_total = int((all_status == NOISE).sum())
    waived_total = int((all_status == WAIVED).sum())
    failed_checks = [name for name, (_, _, ok) in ordering_checks.items() if not ok]
    if real_total > budget or failed_checks:
        parts = []
        if real_total > budget:
            by_field = {f: int(v.sum()) for f, v in c_fields.items() if v.sum()}
            detail = ", ".join(f"{f} {k}" for f, k in sorted(by_field.items(), key=lambda x: -x[1]))
            parts.append(
                f"{real_total} real divergence(s) exceed the budget of {budget} ({detail})"
            )
        for name in failed_checks:
            value, threshold, _ = ordering_checks[name]
            parts.append(f"{name} {value} below {threshold}")
        verdict: Verdict = "fail"
        reason = "; ".join(parts)
    else:
        reason = (
            f"{real_total} real divergence(s) within the budget of {budget}"
            f" ({noise_total} noise, {waived_total} waived)"
        )
        verdict = "pass"

    identical = int(((pair_status == 0) & (err_kind == 0)).sum())
    counts = Counts(
        a=sa.size,
        b=sb.size,
        aligned=n,
        missing=len(miss_keys),
        extra=len(extra_keys),
        both_ok=int(both_ok.sum()),
        both_error_same=int(same_err.sum()),
        error_mismatches=int((err_kind > 0).sum()),
        identical=identical,
        duplicate_keys_a=sa.duplicates,
        duplicate_keys_b=sb.duplicates,
    )
    plots = _plots(al, valid_offsets, pair_status, log_ratio_all, ranking, top_n, both_ok)
    return Comparison(
        verdict=verdict,
        verdict_reason=reason,
        budget=budget,
        real=real_total,
        noise=noise_total,
        waived=waived_total,
        a=run_info(sa.schedule, "A", source_a),
        b=run_info(sb.schedule, "B", source_b),
        counts=counts,
        tolerances=tuple(settings.tolerance(name) for name in NUMERIC_FIELDS),
        noise_rule=settings.noise,
        fields=tuple(stats),
        structure_divergences=structure_counts,
        candidates=tuple(candidates),
        candidates_total=int(statuses.size),
        missing=missing,
        extra=extra,
        error_mismatches=tuple(error_mismatches),
        ranking=ranking,
        campaigns=tuple(campaign_list),
        causes=causes,
        noise_baseline=None if profile is None else profile.baseline(settings.noise),
        waivers=waivers.uses(),
        plots=plots,
        top_n=top_n,
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        elapsed_s=time.perf_counter() - started,
        ordering_checks=ordering_checks,
    )


def _pair_diff(
    i: int,
    status: Status,
    severity: float,
    al: Alignment,
    results: dict[str, _FieldResult],
    struct_names: tuple[str, ...],
    struct_status: int,
    err_kind: int,
    contrib: attr.Contributions,
    table: attr.FactorTable,
    attr_index: int,
    wid: Any,
    bucket_name: Any,
    extra_waivers: list[int],
) -> CandidateDiff:
    da = al.a.decisions[int(al.ia[i])]
    db = al.b.decisions[int(al.ib[i])]
    fields = []
    used: list[str] = []
    for name in NUMERIC_FIELDS:
        r = results[name]
        st = int(r.status[i])
        if st == NONE:
            continue
        col_a = al.a.columns[name]
        col_b = al.b.columns[name]
        ja, jb = int(al.ia[i]), int(al.ib[i])
        delta = float(r.delta[i])
        w = wid(int(r.waiver[i]))
        if w:
            used.append(w)
        fields.append(
            FieldDelta(
                field=name,
                a=None if col_a.null[ja] else float(col_a.values[ja]),
                b=None if col_b.null[jb] else float(col_b.values[jb]),
                abs_delta=_finite_or_none(delta),
                rel_delta=_finite_or_none(float(r.rel[i])) if math.isfinite(delta) else None,
                status=STATUS_NAMES[st],
                noise=_finite_or_none(float(r.noise[i])) if r.noise[i] else None,
                waiver=w,
            )
        )
    for w_index in extra_waivers:
        w = wid(w_index)
        if w:
            used.append(w)
    kind: DiffKind = "value"
    if err_kind:
        kind = _ERROR_KINDS[err_kind - 1]
    attribution = attr.attribution_for(attr_index, contrib, table) if attr_index >= 0 else None
    qa = al.a.columns["queue_bucket"].values[int(al.ia[i])]
    qb = al.b.columns["queue_bucket"].values[int(al.ib[i])]
    return CandidateDiff(
        codebase=da.codebase,
        campaign=da.campaign,
        change_set=da.change_set,
        kind=kind,
        status=status,
        severity=severity,
        fields=tuple(fields),
        structure=structure_lines(da, db) if struct_names and struct_status else (),
        attribution=attribution,
        offset_a=da.offset,
        offset_b=db.offset,
        rank_a=al.a.queue_pos.get(decision_key(da)),
        rank_b=al.b.queue_pos.get(decision_key(db)),
        bucket_a=bucket_name(qa),
        bucket_b=bucket_name(qb),
        reasons_a=tuple(da.reasons),
        reasons_b=tuple(db.reasons),
        error_a=_error_text(da),
        error_b=_error_text(db),
        waivers=tuple(dict.fromkeys(used)),
    )


def _plots(
    al: Alignment,
    valid: BoolArray,
    status: npt.NDArray[np.int8],
    log_ratio: FloatArray,
    ranking: RankMetrics | None,
    top_n: int,
    both_ok: BoolArray,
) -> PlotData:
    oa = al.a.columns["offset"].values[al.ia]
    ob = al.b.columns["offset"].values[al.ib]
    divergent = np.flatnonzero(valid & (status > 0))[:top_n]
    rest = np.flatnonzero(valid & (status == 0))
    room = max(PLOT_SAMPLE - divergent.size, 0)
    if rest.size > room:
        rest = rest[np.linspace(0, rest.size - 1, room).astype(np.int64)] if room else rest[:0]
    chosen = np.concatenate([divergent, rest])
    pairs = tuple((float(oa[i]), float(ob[i]), int(status[i])) for i in chosen.tolist())

    def signed(name: str) -> tuple[FloatArray, FloatArray]:
        ca = al.a.columns[name].take(al.ia)
        cb = al.b.columns[name].take(al.ib)
        ok = both_ok & ~ca.null & ~cb.null & np.isfinite(ca.values) & np.isfinite(cb.values)
        return ca.values[ok], cb.values[ok]

    pa, pb = signed("success_probability")
    da, db = signed("estimated_duration_us")
    with np.errstate(divide="ignore", invalid="ignore"):
        dur_rel = np.where(da != 0, (db - da) / np.where(da != 0, da, 1.0), np.nan)
    histograms = {
        "success_probability_delta": _histogram(pb - pa, "success probability, B − A"),
        "duration_rel_delta": _histogram(dur_rel, "estimated duration, (B − A) / A"),
        "offset_log_ratio": _histogram(log_ratio, "log(offset B / offset A)"),
    }
    if ranking is not None and ranking.displacement_histogram is not None:
        histograms["rank_displacement"] = ranking.displacement_histogram
    return PlotData(offset_pairs=pairs, histograms=histograms)


__all__ = ["DECISION_FIELDS", "compare_schedules", "run_info", "structure_lines"]
