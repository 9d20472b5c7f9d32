"""How good were the forecasts: proper scores for probabilities and durations, with CIs.

The backtest (:mod:`harness.comparison.backtest`) gives, for every candidate that ran
after a cut point, each engine's predicted success probability and estimated
duration beside what really happened. This module scores those pairs:

* the Brier score with its Murphy decomposition over fixed probability bins
  (reliability = the calibration part, resolution, uncertainty, and the two
  within-bin terms that make the identity exact when forecasts inside a bin
  differ: ``BS = REL − RES + UNC + WBV − WBC``);
* the log loss, with probabilities clipped to ``[ε, 1 − ε]``, ``ε`` =
  :data:`LOG_LOSS_EPS` (the legacy predicts exactly 1.0 for a candidate
  without runs; unclipped, one such failure would weigh as much as thousands
  of ordinary forecasts);
* for durations, the median absolute error (seconds) and the median absolute
  log-ratio ``|ln(estimated / actual)|`` (scale-free: a 2× miss counts the
  same on a 10-second and a 2-hour run);
* a paired bootstrap: candidates are resampled with replacement (all the rows
  of a drawn candidate, at every cut point, come along: they are not
  independent), and *the same* resample scores every engine, so the
  confidence interval of a difference keeps the pairing. A difference is
  called only when its interval excludes 0. Intervals are percentile
  intervals; per cut point (a grouping that splits a candidate's rows),
  each cut's candidates are resampled on their own.

Point scores are computed for all groups at once with ``np.bincount``;
medians are the lower median (the smallest value with half of the values
at or below it). The bootstrap works on per-candidate sums instead of rows
(:class:`_ClusterBootstrap`): 1,000 resamples of 200,000 forecasts take
seconds, not minutes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

LOG_LOSS_EPS = 1e-3
RELIABILITY_BINS = 10
#: Scores where a difference between engines can be called; all are lower-is-better.
CALLED_METRICS = ("brier", "log_loss", "duration_mdae_s", "duration_malr")
#: Every score reported per engine and group.
METRICS = (
    "brier",
    "log_loss",
    "reliability",
    "resolution",
    "uncertainty",
    "duration_mdae_s",
    "duration_malr",
)
US_PER_S = 1e6


@dataclass(frozen=True)
class Forecasts:
    """One engine's forecasts, aligned with :class:`ScoredRows`' rows."""

    probability: np.ndarray  # float64 in [0, 1]
    duration_us: np.ndarray  # int64 > 0 estimated duration


@dataclass(frozen=True)
class ScoredRows:
    """Rows to score: one per (cut point, candidate that ran after it).

    ``cluster`` numbers the candidates (the bootstrap's unit); ``groups`` maps
    a grouping's name (``overall``, ``campaign``, ``cut``) to its labels per
    row and the names of the labels.
    """

    cluster: np.ndarray
    outcome: np.ndarray  # 1.0 success, 0.0 failure
    actual_us: np.ndarray  # int64 > 0
    forecasts: Mapping[str, Forecasts]
    groups: Mapping[str, tuple[np.ndarray, Sequence[str]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.outcome)


# ------------------------------------------------------------------ plain scores


def bin_index(probability: np.ndarray, bins: int = RELIABILITY_BINS) -> np.ndarray:
    """Equal-width bins on [0, 1]; 1.0 falls in the last one."""
    return np.minimum((np.asarray(probability) * bins).astype(np.int64), bins - 1)


@dataclass(frozen=True)
class BrierDecomposition:
    brier: float
    reliability: float
    resolution: float
    uncertainty: float
    within_bin_variance: float
    within_bin_covariance: float

    @property
    def refinement(self) -> float:
        """The calibration–refinement split: ``BS = REL + REF`` (+ the within-bin terms)."""
        return self.uncertainty - self.resolution


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    mean_forecast: float | None
    observed_rate: float | None


def brier_decomposition(
    probability: np.ndarray, outcome: np.ndarray, bins: int = RELIABILITY_BINS
) -> BrierDecomposition:
    """Murphy's decomposition over equal-width bins, exact (see the module docstring)."""
    p = np.asarray(probability, dtype=float)
    y = np.asarray(outcome, dtype=float)
    n = len(p)
    if n == 0:
        nan = float("nan")
        return BrierDecomposition(nan, nan, nan, nan, nan, nan)
    k = bin_index(p, bins)
    count = np.bincount(k, minlength=bins).astype(float)
    safe = np.maximum(count, 1.0)
    p_bar = np.bincount(k, p, bins) / safe
    o_bar = np.bincount(k, y, bins) / safe
    base = y.mean()
    dp, dy = p - p_bar[k], y - o_bar[k]
    return BrierDecomposition(
        brier=float(np.mean((p - y) ** 2)),
        reliability=float(np.sum(count * (p_bar - o_bar) ** 2) / n),
        resolution=float(np.sum(count * (o_bar - base) ** 2) / n),
        uncertainty=float(base * (1.0 - base)),
        within_bin_variance=float(np.sum(dp * dp) / n),
        within_bin_covariance=float(2.0 * np.sum(dp * dy) / n),
    )


def reliability_bins(
    probability: np.ndarray, outcome: np.ndarray, bins: int = RELIABILITY_BINS
) -> list[ReliabilityBin]:
    """The reliability diagram's points: mean forecast against observed rate per bin."""
    p = np.asarray(probability, dtype=float)
    y = np.asarray(outcome, dtype=float)
    k = bin_index(p, bins)
    count = np.bincount(k, minlength=bins)
    sum_p = np.bincount(k, p, bins)
    sum_y = np.bincount(k, y, bins)
    out = []
    for b in range(bins):
        c = int(count[b])
        out.append(
            ReliabilityBin(
                lower=b / bins,
                upper=(b + 1) / bins,
                count=c,
                mean_forecast=float(sum_p[b] / c) if c else None,
                observed_rate=float(sum_y[b] / c) if c else None,
            )
        )
    return out


def log_loss(probability: np.ndarray, outcome: np.ndarray, eps: float = LOG_LOSS_EPS) -> float:
    """Mean negative log-likelihood in nats, probabilities clipped to ``[eps, 1 - eps]``."""
    p = np.clip(np.asarray(probability, dtype=float), eps, 1.0 - eps)
    y = np.asarray(outcome, dtype=float)
    if len(p) == 0:
        return float("nan")
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def lower_median(values: np.ndarray) -> float:
    """The smallest value with at least half of the values at or below it."""
    if len(values) == 0:
        return float("nan")
    ordered = np.sort(np.asarray(values, dtype=float))
    return float(ordered[(len(ordered) - 1) // 2])


def duration_errors(estimated_us: np.ndarray, actual_us: np.ndarray) -> tuple[float, float]:
    """(median absolute error in seconds, median ``|ln(estimated / actual)|``)."""
    est = np.asarray(estimated_us, dtype=float)
    act = np.asarray(actual_us, dtype=float)
    return (
        lower_median(np.abs(est - act) / US_PER_S),
        lower_median(np.abs(np.log(est / act))),
    )


# ------------------------------------------------------------------ grouped, weighted


@dataclass(frozen=True)
class _Prepared:
    """Per-engine arrays computed once, reused by every resample."""

    squared_error: np.ndarray
    log_loss: np.ndarray
    probability: np.ndarray
    bin: np.ndarray
    #: Per grouping: rows ordered by (group, value) for each median metric, and the values.
    median_order: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]


class GroupedScorer:
    """Every score of every engine for every group, for any row weights."""

    def __init__(self, rows: ScoredRows, bins: int = RELIABILITY_BINS) -> None:
        self.rows = rows
        self.bins = bins
        groups = dict(rows.groups)
        groups.setdefault("overall", (np.zeros(len(rows), dtype=np.int64), ["all"]))
        self.groups = groups
        y = rows.outcome.astype(float)
        self.outcome = y
        self.prepared: dict[str, _Prepared] = {}
        for engine, f in rows.forecasts.items():
            p = f.probability.astype(float)
            clipped = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
            est = f.duration_us.astype(float)
            act = rows.actual_us.astype(float)
            values = {
                "duration_mdae_s": np.abs(est - act) / US_PER_S,
                "duration_malr": np.abs(np.log(est / act)),
            }
            orders: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
            for name, (labels, _) in groups.items():
                orders[name] = {}
                for metric, v in values.items():
                    order = np.lexsort((v, labels))
                    orders[name][metric] = (order, v[order])
            self.prepared[engine] = _Prepared(
                squared_error=(p - y) ** 2,
                log_loss=-(y * np.log(clipped) + (1.0 - y) * np.log1p(-clipped)),
                probability=p,
                bin=bin_index(p, bins),
                median_order=orders,
            )

    def scores(
        self, weights: np.ndarray | None = None
    ) -> dict[str, dict[str, dict[str, np.ndarray]]]:
        """grouping → engine → metric → value per group (NaN for an empty group)."""
        n = len(self.rows)
        w = np.ones(n) if weights is None else weights.astype(float)
        out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for name, (labels, label_names) in self.groups.items():
            g = len(label_names)
            total = np.bincount(labels, w, g)
            safe = np.where(total > 0, total, np.nan)
            wy = w * self.outcome
            base = np.bincount(labels, wy, g) / safe
            per_engine: dict[str, dict[str, np.ndarray]] = {}
            for engine, prep in self.prepared.items():
                cell = labels * self.bins + prep.bin
                size = g * self.bins
                cw = np.bincount(cell, w, size).reshape(g, self.bins)
                cp = np.bincount(cell, w * prep.probability, size).reshape(g, self.bins)
                cy = np.bincount(cell, wy, size).reshape(g, self.bins)
                cell_safe = np.maximum(cw, 1e-300)
                p_bar, o_bar = cp / cell_safe, cy / cell_safe
                metrics = {
                    "brier": np.bincount(labels, w * prep.squared_error, g) / safe,
                    "log_loss": np.bincount(labels, w * prep.log_loss, g) / safe,
                    "reliability": np.sum(cw * (p_bar - o_bar) ** 2, axis=1) / safe,
                    "resolution": np.sum(cw * (o_bar - base[:, None]) ** 2, axis=1) / safe,
                    "uncertainty": base * (1.0 - base),
                }
                for metric, (order, sorted_values) in prep.median_order[name].items():
                    metrics[metric] = _grouped_lower_median(
                        labels[order], sorted_values, w[order], g
                    )
                per_engine[engine] = metrics
            out[name] = per_engine
        return out


def _grouped_lower_median(
    labels: np.ndarray, values: np.ndarray, weights: np.ndarray, groups: int
) -> np.ndarray:
    """Lower weighted median per group of rows already sorted by (group, value)."""
    if len(values) == 0:
        return np.full(groups, np.nan)
    cumulative = np.cumsum(weights)
    counts = np.bincount(labels, minlength=groups)
    ends = np.cumsum(counts)
    starts = ends - counts
    before = np.where(starts > 0, cumulative[np.maximum(starts - 1, 0)], 0.0)
    total = np.where(counts > 0, cumulative[np.maximum(ends - 1, 0)], 0.0) - before
    target = before + total / 2.0
    index = np.searchsorted(cumulative, target - 1e-9, side="left")
    # The first row reaching the target has a positive weight (the cumulative sum
    # steps there), so rows left out of a resample are never chosen.
    index = np.minimum(index, len(values) - 1) if len(values) else index
    result = np.full(groups, np.nan)
    has = (counts > 0) & (total > 0)
    if len(values):
        result[has] = values[index[has]]
    return result


# ------------------------------------------------------------------ bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    """Point scores, their CIs, and the paired differences' CIs, per grouping and group."""

    resamples: int
    confidence: float
    seed: int
    #: grouping → engine → metric → per-group values
    point: dict[str, dict[str, dict[str, np.ndarray]]]
    #: grouping → engine → metric → per-group (low, high)
    intervals: dict[str, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]]
    #: grouping → (engine a, engine b) → metric → (point a − b, low, high) per group
    differences: dict[
        str, dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]
    ]


def paired_bootstrap(
    rows: ScoredRows,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    bins: int = RELIABILITY_BINS,
) -> BootstrapResult:
    """Percentile intervals from ``resamples`` paired resamples of candidates (seeded).

    A grouping a candidate belongs to whole (overall, campaign) is scored on
    the same resamples of all candidates; a grouping that splits a candidate's
    rows (cut point) is bootstrapped group by group, each on resamples of its
    own candidates. See :class:`_ClusterBootstrap`.
    """
    scorer = GroupedScorer(rows, bins)
    point = scorer.scores()
    engines = list(rows.forecasts)
    pairs = [(a, b) for i, a in enumerate(engines) for b in engines[i + 1 :]]
    alpha = (1.0 - confidence) / 2.0
    clusters = int(rows.cluster.max()) + 1 if len(rows) else 0
    samples: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    if clusters and resamples > 0:
        whole: dict[str, _ClusterBootstrap] = {}
        for name, (labels, names) in scorer.groups.items():
            per_cluster = _cluster_labels(rows.cluster, labels, clusters)
            if per_cluster is not None:
                whole[name] = _ClusterBootstrap(scorer, per_cluster, len(names), pairs)
            else:
                samples[name] = _split_bootstrap(
                    rows, labels, len(names), pairs, resamples, (seed, len(samples) + 1), bins
                )
        samples.update(_resample(whole, clusters, resamples, (seed, 0)))
    intervals: dict[str, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]] = {}
    differences: dict[
        str, dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]
    ] = {}
    for name, (_, names) in scorer.groups.items():
        nan = np.full(len(names), np.nan)
        got = samples.get(name, {})

        def stacked(key: str, metric: str, got: Any = got) -> np.ndarray | None:
            return got.get(key, {}).get(metric)

        intervals[name] = {}
        for e in engines:
            intervals[name][e] = {}
            for m in METRICS:
                sample = stacked(e, m)
                intervals[name][e][m] = (
                    (nan, nan.copy()) if sample is None else _quantiles(sample, alpha)
                )
        differences[name] = {}
        for a, b in pairs:
            differences[name][(a, b)] = {}
            for m in METRICS:
                diff = point[name][a][m] - point[name][b][m]
                # Mean scores' differences come from difference columns: exactly 0
                # for identical forecasts, whatever order BLAS adds in.
                sample = stacked(f"{a}\0{b}", m) if m in MEAN_METRICS else None
                if sample is None:
                    sa, sb = stacked(a, m), stacked(b, m)
                    sample = None if sa is None or sb is None else sa - sb
                low, high = (nan, nan.copy()) if sample is None else _quantiles(sample, alpha)
                differences[name][(a, b)][m] = (diff, low, high)
    return BootstrapResult(resamples, confidence, seed, point, intervals, differences)


def _resample(
    booted: Mapping[str, _ClusterBootstrap],
    clusters: int,
    resamples: int,
    seed: tuple[int, ...],
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """grouping → engine (or pair) → metric → (resamples × groups), in seeded chunks."""
    collected: dict[str, list[dict[str, dict[str, np.ndarray]]]] = {g: [] for g in booted}
    # One BLAS thread: the products are small, and on a busy machine OpenBLAS's
    # spinning threads made them 10-30 times slower.
    with threadpool_limits(1, user_api="blas"):
        for index, start in enumerate(range(0, resamples if booted else 0, CHUNK)):
            k = min(CHUNK, resamples - start)
            rng = np.random.default_rng([*seed, index])
            drawn = rng.integers(0, clusters, (k, clusters)) + np.arange(k)[:, None] * clusters
            weights = np.bincount(drawn.ravel(), minlength=k * clusters).reshape(k, clusters)
            for name, boot in booted.items():
                collected[name].append(boot.chunk(weights))
    return {
        name: {
            key: {m: np.vstack([c[key][m] for c in chunks]) for m in chunks[0][key]}
            for key in chunks[0]
        }
        for name, chunks in collected.items()
        if chunks
    }


def _split_bootstrap(
    rows: ScoredRows,
    labels: np.ndarray,
    groups: int,
    pairs: Sequence[tuple[str, str]],
    resamples: int,
    seed: tuple[int, ...],
    bins: int,
) -> dict[str, dict[str, np.ndarray]]:
    """Each group's resamples drawn among its own candidates, side by side as columns."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for g in range(groups):
        rows_g = np.flatnonzero(labels == g)
        if len(rows_g) == 0:
            continue
        _, cluster = np.unique(rows.cluster[rows_g], return_inverse=True)
        sub = ScoredRows(
            cluster=cluster,
            outcome=rows.outcome[rows_g],
            actual_us=rows.actual_us[rows_g],
            forecasts={
                e: Forecasts(f.probability[rows_g], f.duration_us[rows_g])
                for e, f in rows.forecasts.items()
            },
        )
        sub_scorer = GroupedScorer(sub, bins)
        n = int(cluster.max()) + 1
        boot = _ClusterBootstrap(sub_scorer, np.zeros(n, dtype=np.int64), 1, pairs)
        for key, metrics in _resample({"g": boot}, n, resamples, (*seed, g)).get("g", {}).items():
            for m, values in metrics.items():
                column = out.setdefault(key, {}).setdefault(m, np.full((resamples, groups), np.nan))
                column[:, g] = values[:, 0]
    return out


def _quantiles(stack: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-group percentile interval of a (resamples × groups) array; NaN where never defined."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a group no resample drew
        low, high = np.nanquantile(stack, (alpha, 1.0 - alpha), axis=0)
    return low, high


def _cluster_labels(cluster: np.ndarray, labels: np.ndarray, clusters: int) -> np.ndarray | None:
    """Each candidate's label, or ``None`` when some candidate's rows carry several."""
    first = np.full(clusters, -1, dtype=np.int64)
    first[cluster[::-1]] = labels[::-1]
    return first if np.array_equal(first[cluster], labels) else None


MEDIAN_BINS = 32
#: The median of a resample is read from quantile bins over this central range of the values.
MEDIAN_RANGE = (0.3, 0.7)
CHUNK = 100
DURATION_METRICS = ("duration_mdae_s", "duration_malr")
MEAN_METRICS = ("brier", "log_loss")


class _ClusterBootstrap:
    """Every resample's scores from per-candidate sums, by matrix products.

    A resample weighs each candidate by how often it was drawn, so every sum
    in a score is ``draw counts @ per-candidate sums``: one matrix product per
    group for a chunk of resamples (BLAS), instead of a pass over every row
    per resample. Medians are not sums: each candidate's rows are counted in
    :data:`MEDIAN_BINS` quantile bins over the central 40 % of the group's
    values (plus one bin below and one above), and a resample's median is
    interpolated inside the bin where its cumulative weight reaches half
    (the point scores are exact; only their intervals are read from bins).
    """

    def __init__(
        self,
        scorer: GroupedScorer,
        labels: np.ndarray,
        groups: int,
        pairs: Sequence[tuple[str, str]] = (),
    ) -> None:
        rows = scorer.rows
        self.pairs = list(pairs)
        self.groups = groups
        self.bins = scorer.bins
        clusters = len(labels)
        self.members = [np.flatnonzero(labels == g) for g in range(groups)]
        self.everyone = groups == 1 and len(self.members[0]) == clusters
        y = scorer.outcome
        self.engines = list(scorer.prepared)
        width = 2 + len(self.engines) * (2 + 3 * self.bins) + 2 * len(self.pairs)
        sums = np.zeros((clusters, width))
        sums[:, 0] = np.bincount(rows.cluster, minlength=clusters)
        sums[:, 1] = np.bincount(rows.cluster, y, clusters)
        column = 2
        for prep in scorer.prepared.values():
            sums[:, column] = np.bincount(rows.cluster, prep.squared_error, clusters)
            sums[:, column + 1] = np.bincount(rows.cluster, prep.log_loss, clusters)
            cell = rows.cluster * self.bins + prep.bin
            size = clusters * self.bins
            for offset, column_values in enumerate((None, prep.probability, y)):
                block = np.bincount(cell, column_values, size).reshape(clusters, self.bins)
                sums[:, column + 2 + offset : column + 2 + 3 * self.bins : 3] = block
            column += 2 + 3 * self.bins
        for a, b in self.pairs:
            pa, pb = scorer.prepared[a], scorer.prepared[b]
            sums[:, column] = np.bincount(
                rows.cluster, pa.squared_error - pb.squared_error, clusters
            )
            sums[:, column + 1] = np.bincount(rows.cluster, pa.log_loss - pb.log_loss, clusters)
            column += 2
        self.sums = [sums[m] for m in self.members]
        local = np.zeros(clusters, dtype=np.int64)
        for members in self.members:
            local[members] = np.arange(len(members))
        # Median bins: per group, one column block per (engine, duration metric).
        slots = MEDIAN_BINS + 2
        self.median_edges: dict[tuple[int, str, str], np.ndarray] = {}
        blocks: list[list[np.ndarray]] = [[] for _ in range(groups)]
        row_label = labels[rows.cluster]
        by_group = [np.flatnonzero(row_label == g) for g in range(groups)]
        for engine, f in rows.forecasts.items():
            est = f.duration_us.astype(float)
            act = rows.actual_us.astype(float)
            values = {
                "duration_mdae_s": np.abs(est - act) / US_PER_S,
                "duration_malr": np.abs(np.log(est / act)),
            }
            for metric in DURATION_METRICS:
                v = values[metric]
                for g in range(groups):
                    in_group = by_group[g]
                    edges = (
                        np.quantile(v[in_group], np.linspace(*MEDIAN_RANGE, MEDIAN_BINS + 1))
                        if len(in_group)
                        else np.zeros(MEDIAN_BINS + 1)
                    )
                    vg = v[in_group]
                    which = np.searchsorted(edges, vg, side="right")  # 0 below … B+1 above
                    which = np.where(vg == edges[-1], MEDIAN_BINS, which)
                    size = len(self.members[g])
                    counts = np.bincount(
                        local[rows.cluster[in_group]] * slots + which, minlength=size * slots
                    ).reshape(size, slots)
                    self.median_edges[(g, engine, metric)] = edges
                    blocks[g].append(counts.astype(np.float32))
        # One float32 matrix per group: sums first, then the median bins (single precision
        # is ample for intervals; counts stay exact, difference columns stay exactly 0).
        self.width = width
        self.matrix = [
            np.hstack([self.sums[g].astype(np.float32), *blocks[g]]) for g in range(groups)
        ]
        del self.sums

    def chunk(self, counts: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """Scores of a chunk of resamples (draw counts, resamples × candidates), per group."""
        k = len(counts)
        weights = counts.astype(np.float32)
        g_count = self.groups
        sums = np.zeros((k, g_count, self.width))
        slots = MEDIAN_BINS + 2
        hists = np.zeros((k, g_count, len(self.engines) * len(DURATION_METRICS), slots))
        for g, members in enumerate(self.members):
            if not len(members):
                continue
            w = weights if self.everyone else weights[:, members]
            product = (w @ self.matrix[g]).astype(float)
            sums[:, g, :] = product[:, : self.width]
            hists[:, g] = product[:, self.width :].reshape(k, -1, slots)
        with np.errstate(all="ignore"):
            n = sums[:, :, 0]
            total = np.where(n > 0, n, np.nan)
            base = sums[:, :, 1] / total
            out: dict[str, dict[str, np.ndarray]] = {}
            column = 2
            for e_index, engine in enumerate(self.engines):
                sq, ll = sums[:, :, column], sums[:, :, column + 1]
                cells = sums[:, :, column + 2 : column + 2 + 3 * self.bins].reshape(
                    k, g_count, self.bins, 3
                )
                column += 2 + 3 * self.bins
                cw, cp, cy = cells[..., 0], cells[..., 1], cells[..., 2]
                safe = np.maximum(cw, 1e-300)
                p_bar, o_bar = cp / safe, cy / safe
                out[engine] = {
                    "brier": sq / total,
                    "log_loss": ll / total,
                    "reliability": np.sum(cw * (p_bar - o_bar) ** 2, axis=2) / total,
                    "resolution": np.sum(cw * (o_bar - base[..., None]) ** 2, axis=2) / total,
                    "uncertainty": base * (1.0 - base),
                }
                for m_index, metric in enumerate(DURATION_METRICS):
                    block = hists[:, :, e_index * len(DURATION_METRICS) + m_index, :]
                    out[engine][metric] = self._medians(block, engine, metric)
            for a, b in self.pairs:
                out[f"{a}\0{b}"] = {
                    "brier": sums[:, :, column] / total,
                    "log_loss": sums[:, :, column + 1] / total,
                }
                column += 2
        return out

    def _medians(self, hist: np.ndarray, engine: str, metric: str) -> np.ndarray:
        """Interpolated medians from (resamples × groups × bins) weighted counts."""
        result = np.full(hist.shape[:2], np.nan)
        for g in range(self.groups):
            edges = self.median_edges[(g, engine, metric)]
            h = hist[:, g, :]
            cumulative = np.cumsum(h, axis=1)
            half = cumulative[:, -1] / 2.0
            j = np.argmax(cumulative >= half[:, None] - 1e-9, axis=1)
            inside = np.clip(j, 1, MEDIAN_BINS)
            before = np.take_along_axis(cumulative, (inside - 1)[:, None], axis=1)[:, 0]
            width = np.take_along_axis(h, inside[:, None], axis=1)[:, 0]
            fraction = np.where(width > 0, (half - before) / np.maximum(width, 1e-300), 0.0)
            value = edges[inside - 1] + np.clip(fraction, 0.0, 1.0) * (
                edges[inside] - edges[inside - 1]
            )
            # Outside the central range (not seen in practice): clamp to its edge.
            value = np.where(j == 0, edges[0], np.where(j > MEDIAN_BINS, edges[-1], value))
            result[:, g] = np.where(half > 0, value, np.nan)
        return result
