"""How two queue orders agree: Kendall tau-b, Spearman, Rank-Biased Overlap, top-k overlap.

A queue is already in worker order (bucket, priority, id). Items with the same
(bucket, priority) form a **tie group**: their relative order comes from the
row id, i.e. from insertion order, which the legacy makes depend on the
candidate query's row order. So ties must never count as disagreement.

Tie-aware prefixes
------------------
A tie group occupying positions ``s..e`` (1-based, length ``L = e-s+1``) is
treated as if its order were unknown: at depth ``d`` each member is inside the
prefix with *membership* ``clip((d - s + 1) / L, 0, 1)`` (the probability under
a uniformly random tie-break). The overlap of two prefixes is
``X_d = Σ_i min(m_A(i, d), m_B(i, d))``: the tie-breaks are coupled so that they
agree as much as possible. Without ties this is the usual ``|A_:d ∩ B_:d|``;
two identical queues have ``X_d = d`` whatever their ties.

Rank-Biased Overlap
-------------------
With agreement ``A_d = X_d / d`` and persistence ``p``, RBO is
``(1-p) Σ_d p^(d-1) A_d``. For finite queues we use Webber, Moffat and Zobel's
extrapolated estimate for lists of uneven length ``s <= l`` (their RBO_ext):

    RBO_ext = (1-p)/p · [ Σ_{d=1..l} X_d/d · p^d + Σ_{d=s+1..l} X_s (d-s)/(s d) · p^d ]
              + [ (X_l - X_s)/l + X_s/s ] · p^l

which for equal lengths ``k`` reduces to ``X_k/k · p^k + (1-p)/p Σ_{d≤k} X_d/d · p^d``.
``X_d`` is computed for every depth at once: each item's ``min`` of two ramps is
piecewise linear in ``d`` with at most six breakpoints (the ramps' ends and
the crossing, rounded both ways), so all of them are summed with a
second-difference array in O(n log n).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engines.model import BUCKET_RANK, QueueItem
from harness.comparison.comparison_model import Histogram, RankMetrics, RankMove, TopKOverlap

Key = tuple[str, str, str | None]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TieGroups:
    """Per position (0-based) of one ranking: the 1-based first and last
    position of its tie group, and the group's dense index."""

    start: IntArray
    end: IntArray
    group: IntArray


def load_statistics() -> None:
    """Import scipy's statistics now (half a second or more). The rank
    statistics import it when first used, so that a comparison can pay for it
    while it waits for its noise runs instead of at start-up."""
    import scipy.stats  # noqa: F401


def tie_groups(scores: Sequence[object] | npt.NDArray[np.generic]) -> TieGroups:
    """Tie groups of a ranking given each position's score (equal adjacent scores tie).

    ``scores`` must already be in ranking order.
    """
    n = len(scores)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return TieGroups(empty, empty, empty)
    arr = np.asarray(scores)
    if arr.ndim == 2:
        new = np.ones(n, dtype=bool)
        new[1:] = np.any(arr[1:] != arr[:-1], axis=1)
    else:
        new = np.ones(n, dtype=bool)
        new[1:] = arr[1:] != arr[:-1]
    group = np.cumsum(new, dtype=np.int64) - 1
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n) - 1
    return TieGroups(starts[group] + 1, ends[group] + 1, group)


def queue_scores(queue: Sequence[QueueItem]) -> npt.NDArray[np.int64]:
    """(bucket rank, priority) per queue row, in queue order."""
    other = len(BUCKET_RANK)
    rank = BUCKET_RANK.get
    flat = [(rank(q.bucket, other), q.priority) for q in queue]
    return np.array(flat, dtype=np.int64).reshape(len(queue), 2)


def prefix_overlaps(
    start_a: npt.ArrayLike,
    end_a: npt.ArrayLike,
    start_b: npt.ArrayLike,
    end_b: npt.ArrayLike,
    depth: int,
) -> FloatArray:
    """``X_d`` for ``d = 0..depth`` (index ``d``), over items ranked on both sides.

    Each item is given by the 1-based first/last positions of its tie group on
    either side (``start == end`` for an untied item).
    """
    sa = np.asarray(start_a, dtype=np.float64)
    ea = np.asarray(end_a, dtype=np.float64)
    sb = np.asarray(start_b, dtype=np.float64)
    eb = np.asarray(end_b, dtype=np.float64)
    out = np.zeros(depth + 1, dtype=np.float64)
    if sa.size == 0 or depth <= 0:
        return out
    la, lb = ea - sa + 1.0, eb - sb + 1.0
    # crossing of the two ramps (d - sa + 1)/la = (d - sb + 1)/lb
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = ((sa - 1.0) * lb - (sb - 1.0) * la) / (lb - la)
    lo, hi = np.minimum(sa, sb) - 1.0, np.maximum(ea, eb)
    cross = np.where(np.isfinite(cross), np.clip(cross, lo, hi), lo)
    points = np.stack([sa - 1.0, ea, sb - 1.0, eb, np.floor(cross), np.ceil(cross)], axis=1)
    points.sort(axis=1)

    def f(d: FloatArray) -> FloatArray:
        ma = np.clip((d - sa[:, None] + 1.0) / la[:, None], 0.0, 1.0)
        mb = np.clip((d - sb[:, None] + 1.0) / lb[:, None], 0.0, 1.0)
        return np.minimum(ma, mb)

    values = f(points)
    x0, x1 = points[:, :-1], points[:, 1:]
    dx = x1 - x0
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(dx > 0, (values[:, 1:] - values[:, :-1]) / np.where(dx > 0, dx, 1.0), 0.0)
    # f(d) = Σ_k slope_k (relu(d - x0_k) - relu(d - x1_k)): slope changes at x+1
    size = depth + 2
    idx0 = np.clip(x0.ravel().astype(np.int64) + 1, 0, size - 1)
    idx1 = np.clip(x1.ravel().astype(np.int64) + 1, 0, size - 1)
    w = slope.ravel()
    change = np.bincount(idx0, weights=w, minlength=size) - np.bincount(
        idx1, weights=w, minlength=size
    )
    slope_at = np.cumsum(change)[: depth + 1]
    out = np.cumsum(slope_at)
    # f is 0 below the first breakpoint; positions start at 0, so index d is depth d
    out[0] = 0.0
    return np.maximum(out, 0.0)


def rbo_extrapolated(overlaps: FloatArray, s: int, l: int, p: float) -> float:  # noqa: E741
    """Webber et al.'s RBO_ext from the prefix overlaps ``X_0..X_l`` (``s <= l``)."""
    if l == 0:
        return 1.0
    if s == 0:
        return 0.0
    d = np.arange(1, l + 1, dtype=np.float64)
    x = overlaps[1 : l + 1]
    with np.errstate(under="ignore"):
        weights = np.power(p, d)
        total = float(np.sum(x / d * weights))
        xs = float(overlaps[s])
        if l > s:
            tail = d[s:]
            total += float(np.sum(xs * (tail - s) / (s * tail) * weights[s:]))
        pl = p**l
    xl = float(overlaps[l])
    value = (1.0 - p) / p * total + ((xl - xs) / l + xs / s) * pl
    # rounding keeps identical rankings at exactly 1.0 despite float summation
    return float(min(1.0, max(0.0, round(value, 12))))


def rbo(
    ranking_a: Sequence[object],
    ranking_b: Sequence[object],
    p: float = 0.9,
    *,
    scores_a: Sequence[object] | None = None,
    scores_b: Sequence[object] | None = None,
) -> float:
    """RBO_ext of two rankings of hashable items (tie-aware when scores are given).

    ``scores_*`` are each position's score; equal adjacent scores tie. An item
    may appear only once per ranking.
    """
    groups_a = tie_groups(scores_a if scores_a is not None else range(len(ranking_a)))
    groups_b = tie_groups(scores_b if scores_b is not None else range(len(ranking_b)))
    pos_b = {item: i for i, item in enumerate(ranking_b)}
    common_a, common_b = [], []
    for i, item in enumerate(ranking_a):
        j = pos_b.get(item)
        if j is not None:
            common_a.append(i)
            common_b.append(j)
    ia, ib = np.asarray(common_a, dtype=np.int64), np.asarray(common_b, dtype=np.int64)
    s, l = sorted((len(ranking_a), len(ranking_b)))  # noqa: E741
    overlaps = prefix_overlaps(
        groups_a.start[ia], groups_a.end[ia], groups_b.start[ib], groups_b.end[ib], l
    )
    return rbo_extrapolated(overlaps, s, l, p)


def _histogram(values: npt.NDArray[np.int64], quantity: str) -> Histogram | None:
    if values.size == 0:
        return None
    top = int(np.max(np.abs(values)))
    if top == 0:
        return Histogram(quantity, (-0.5, 0.5), (int(values.size),))
    bins = min(41, 2 * top + 1)
    edges = np.linspace(-top - 0.5, top + 0.5, bins + 1)
    counts, _ = np.histogram(values, bins=edges)
    return Histogram(quantity, tuple(float(e) for e in edges), tuple(int(c) for c in counts))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def rank_metrics(
    queue_a: Sequence[QueueItem],
    queue_b: Sequence[QueueItem],
    *,
    p: float = 0.9,
    top_k: Sequence[int] = (10, 100, 1000),
    movers: int = 50,
) -> RankMetrics:
    """Compare two queues in worker order; items are matched by candidate key.

    A key queued twice on one side (which the queue table forbids) counts once,
    at its first position.
    """
    keys_a = [(q.codebase, q.suite, q.change_set) for q in queue_a]
    keys_b = [(q.codebase, q.suite, q.change_set) for q in queue_b]
    return rank_metrics_of(
        keys_a,
        queue_scores(queue_a),
        keys_b,
        queue_scores(queue_b),
        p=p,
        top_k=top_k,
        movers=movers,
    )


def rank_metrics_of(
    keys_a: Sequence[Key],
    scores_a: npt.NDArray[np.int64],
    keys_b: Sequence[Key],
    scores_b: npt.NDArray[np.int64],
    *,
    p: float = 0.9,
    top_k: Sequence[int] = (10, 100, 1000),
    movers: int = 50,
    common: tuple[IntArray, IntArray] | None = None,
    distinct: tuple[int, int] | None = None,
) -> RankMetrics:
    """:func:`rank_metrics` on queues given as keys and (bucket rank, priority) scores.

    ``common`` (row indices into A's and B's queue of the keys queued on both
    sides, in A's order, first occurrences only) and ``distinct`` (the number of
    distinct keys per queue) may be passed when already known.
    """
    groups_a = tie_groups(scores_a)
    groups_b = tie_groups(scores_b)
    if common is None or distinct is None:
        # reversed, so that the first position of a repeated key is the one kept
        pos_b = dict(zip(reversed(keys_b), range(len(keys_b) - 1, -1, -1), strict=True))
        pos_a = dict(zip(reversed(keys_a), range(len(keys_a) - 1, -1, -1), strict=True))
        common_a: list[int] = []
        common_b: list[int] = []
        for key, i in sorted(pos_a.items(), key=lambda kv: kv[1]):
            found = pos_b.get(key)
            if found is not None:
                common_a.append(i)
                common_b.append(found)
        common = (np.asarray(common_a, dtype=np.int64), np.asarray(common_b, dtype=np.int64))
        distinct = (len(pos_a), len(pos_b))
    ia, ib = common
    n_common = int(ia.size)
    len_a, len_b = distinct
    s, l = sorted((len(keys_a), len(keys_b)))  # noqa: E741
    overlaps = prefix_overlaps(
        groups_a.start[ia], groups_a.end[ia], groups_b.start[ib], groups_b.end[ib], l
    )
    rbo_value = rbo_extrapolated(overlaps, s, l, p)
    tops = []
    for k in top_k:
        eff = min(k, l)
        shared = float(overlaps[eff]) if eff > 0 else 0.0
        tops.append(TopKOverlap(k, eff, round(shared, 9), shared / eff if eff else 1.0))

    tau = tau_p = rho = rho_p = None
    if n_common >= 2:
        from scipy import stats  # see load_statistics

        ga, gb = groups_a.group[ia], groups_b.group[ib]
        if np.unique(ga).size > 1 and np.unique(gb).size > 1:
            kt = stats.kendalltau(ga, gb)
            sp = stats.spearmanr(ga, gb)
            tau, tau_p = _finite(float(kt.statistic)), _finite(float(kt.pvalue))
            rho, rho_p = _finite(float(sp.statistic)), _finite(float(sp.pvalue))
        elif np.unique(ga).size == 1 and np.unique(gb).size == 1:
            tau = rho = 1.0  # everything tied on both sides: the orders agree

    # ranks among the common items, and tie-group spans in those ranks
    rank_a = np.empty(n_common, dtype=np.int64)
    rank_a[np.argsort(ia, kind="stable")] = np.arange(1, n_common + 1)
    rank_b = np.empty(n_common, dtype=np.int64)
    rank_b[np.argsort(ib, kind="stable")] = np.arange(1, n_common + 1)
    displacement = rank_b - rank_a
    moved_mask = np.zeros(n_common, dtype=bool)
    tie_a_size = np.ones(n_common, dtype=np.int64)
    tie_b_size = np.ones(n_common, dtype=np.int64)
    if n_common:
        span_a = _common_spans(groups_a.group[ia], rank_a)
        span_b = _common_spans(groups_b.group[ib], rank_b)
        moved_mask = (displacement != 0) & ((span_a[1] < span_b[0]) | (span_b[1] < span_a[0]))
        tie_a_size = groups_a.end[ia] - groups_a.start[ia] + 1
        tie_b_size = groups_b.end[ib] - groups_b.start[ib] + 1
    moved_idx = np.flatnonzero(moved_mask)
    order = moved_idx[np.argsort(-np.abs(displacement[moved_idx]), kind="stable")][:movers]
    mover_list = tuple(
        RankMove(
            codebase=keys_a[ia[i]][0],
            campaign=keys_a[ia[i]][1],
            change_set=keys_a[ia[i]][2],
            rank_a=int(ia[i]) + 1,
            rank_b=int(ib[i]) + 1,
            displacement=int(displacement[i]),
            tie_a=int(tie_a_size[i]),
            tie_b=int(tie_b_size[i]),
        )
        for i in order
    )
    abs_disp = np.abs(displacement)
    return RankMetrics(
        common=n_common,
        only_a=len_a - n_common,
        only_b=len_b - n_common,
        kendall_tau_b=tau,
        kendall_pvalue=tau_p,
        spearman=rho,
        spearman_pvalue=rho_p,
        rbo=rbo_value,
        rbo_p=p,
        top_k=tuple(tops),
        moved=int(moved_mask.sum()),
        max_abs_displacement=int(abs_disp.max()) if n_common else 0,
        mean_abs_displacement=float(abs_disp.mean()) if n_common else 0.0,
        movers=mover_list,
        displacement_histogram=_histogram(
            np.where(moved_mask, displacement, 0), "rank displacement (B − A)"
        ),
    )


def _common_spans(
    groups: npt.NDArray[np.int64], ranks: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """First/last rank among the common items of each item's tie group."""
    size = int(groups.max()) + 1
    lo = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
    hi = np.full(size, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(lo, groups, ranks)
    np.maximum.at(hi, groups, ranks)
    return lo[groups], hi[groups]
