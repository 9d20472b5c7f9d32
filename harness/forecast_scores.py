"""How good were the forecasts: proper scores for probabilities and durations, with CIs.

The backtest (:mod:`harness.backtest`) gives, for every candidate that ran
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
  called only when its interval excludes 0.

Every score is a weighted statistic (the weights are the bootstrap's draw
counts, all 1 for the point estimate), computed for all groups (overall, per
campaign, per cut) at once with ``np.bincount``. Medians are the lower
weighted median (the smallest value whose cumulative weight reaches half).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

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
class Interval:
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return bool(np.isfinite(self.low) and np.isfinite(self.high)) and (
            self.low > 0.0 or self.high < 0.0
        )


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
    """Percentile intervals from ``resamples`` paired resamples of candidates (seeded)."""
    scorer = GroupedScorer(rows, bins)
    point = scorer.scores()
    engines = list(rows.forecasts)
    pairs = [(a, b) for i, a in enumerate(engines) for b in engines[i + 1 :]]
    rng = np.random.default_rng(seed)
    clusters = int(rows.cluster.max()) + 1 if len(rows) else 0
    samples: dict[str, dict[str, dict[str, list[np.ndarray]]]] = {
        g: {e: {m: [] for m in METRICS} for e in engines} for g in scorer.groups
    }
    if clusters and resamples > 0:
        for _ in range(resamples):
            drawn = np.bincount(rng.integers(0, clusters, clusters), minlength=clusters)
            result = scorer.scores(drawn[rows.cluster])
            for g, per_engine in result.items():
                for e, metrics in per_engine.items():
                    for m, values in metrics.items():
                        samples[g][e][m].append(values)
    alpha = (1.0 - confidence) / 2.0
    quantiles = (alpha, 1.0 - alpha)

    def interval(stack: list[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
        if not stack:
            nan = np.full(size, np.nan)
            return nan, nan.copy()
        array = np.vstack(stack)
        with np.errstate(all="ignore"):
            low, high = np.nanquantile(array, quantiles, axis=0)
        return low, high

    intervals: dict[str, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]] = {}
    differences: dict[
        str, dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]
    ] = {}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups (a campaign never drawn)
        for g, (_, names) in scorer.groups.items():
            size = len(names)
            intervals[g] = {
                e: {m: interval(samples[g][e][m], size) for m in METRICS} for e in engines
            }
            differences[g] = {}
            for a, b in pairs:
                differences[g][(a, b)] = {}
                for m in METRICS:
                    diff = [x - y for x, y in zip(samples[g][a][m], samples[g][b][m], strict=True)]
                    low, high = interval(diff, size)
                    differences[g][(a, b)][m] = (point[g][a][m] - point[g][b][m], low, high)
    return BootstrapResult(resamples, confidence, seed, point, intervals, differences)
