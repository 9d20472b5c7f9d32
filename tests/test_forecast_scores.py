"""Forecast scores on outcomes whose scores are known by hand, and their invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.comparison.forecast_scores import (
    LOG_LOSS_EPS,
    Forecasts,
    GroupedScorer,
    ScoredRows,
    brier_decomposition,
    duration_errors,
    log_loss,
    lower_median,
    paired_bootstrap,
    reliability_bins,
)


def test_brier_by_hand() -> None:
    d = brier_decomposition(np.array([0.2, 0.7, 0.9]), np.array([0.0, 1.0, 0.0]))
    assert d.brier == pytest.approx((0.04 + 0.09 + 0.81) / 3, abs=1e-15)


def test_decomposition_of_calibrated_bins_by_hand() -> None:
    # Two bins, each perfectly calibrated: 0.25 with 1 success in 4, 0.75 with 3 in 4.
    p = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=float)
    d = brier_decomposition(p, y)
    assert d.reliability == pytest.approx(0.0, abs=1e-15)
    assert d.resolution == pytest.approx(0.0625, abs=1e-15)
    assert d.uncertainty == pytest.approx(0.25, abs=1e-15)
    assert d.brier == pytest.approx(0.1875, abs=1e-15)
    assert d.refinement == pytest.approx(0.1875, abs=1e-15)
    assert d.within_bin_variance == d.within_bin_covariance == 0.0


def test_miscalibration_shows_in_reliability_by_hand() -> None:
    # Always 0.9, succeeds half the time: reliability (0.9 - 0.5)^2, no resolution.
    p = np.full(10, 0.9)
    y = np.array([1, 0] * 5, dtype=float)
    d = brier_decomposition(p, y)
    assert d.reliability == pytest.approx(0.16, abs=1e-12)
    assert d.resolution == pytest.approx(0.0, abs=1e-15)
    assert d.brier == pytest.approx(0.16 + 0.25, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.0, 1.0), st.booleans()),
        min_size=1,
        max_size=60,
    )
)
def test_decomposition_identity_holds_exactly(pairs: list[tuple[float, bool]]) -> None:
    p = np.array([a for a, _ in pairs])
    y = np.array([float(b) for _, b in pairs])
    d = brier_decomposition(p, y)
    rebuilt = (
        d.reliability
        - d.resolution
        + d.uncertainty
        + d.within_bin_variance
        - d.within_bin_covariance
    )
    assert rebuilt == pytest.approx(d.brier, abs=1e-12)


def test_log_loss_by_hand_and_clipped() -> None:
    assert log_loss(np.array([0.8, 0.3]), np.array([1.0, 0.0])) == pytest.approx(
        -(math.log(0.8) + math.log(0.7)) / 2, abs=1e-15
    )
    # A certain forecast that fails costs -ln(eps), not infinity.
    assert log_loss(np.array([1.0]), np.array([0.0])) == pytest.approx(-math.log(LOG_LOSS_EPS))


def test_duration_errors_by_hand() -> None:
    s = 1_000_000
    mdae, malr = duration_errors(
        np.array([10 * s, 20 * s, 40 * s]), np.array([20 * s, 20 * s, 10 * s])
    )
    assert mdae == 10.0  # |errors| 10, 0, 30 s
    assert malr == pytest.approx(math.log(2))  # ln 2, 0, ln 4
    assert lower_median(np.array([4.0, 1.0, 3.0, 2.0])) == 2.0


def test_reliability_bins_by_hand() -> None:
    bins = reliability_bins(np.array([0.05, 0.05, 0.95, 1.0]), np.array([0.0, 1.0, 1.0, 1.0]))
    assert len(bins) == 10
    assert (bins[0].count, bins[0].mean_forecast, bins[0].observed_rate) == (2, 0.05, 0.5)
    assert bins[9].count == 2 and bins[9].observed_rate == 1.0  # 1.0 falls in the last bin
    assert all(b.count == 0 and b.mean_forecast is None for b in bins[1:9])


def _rows(
    p: np.ndarray, q: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None
) -> ScoredRows:
    n = len(y)
    rng = np.random.default_rng(1)
    actual = rng.integers(1_000_000, 100_000_000, n)
    return ScoredRows(
        cluster=np.arange(n),
        outcome=y,
        actual_us=actual,
        forecasts={
            "a": Forecasts(p, (actual * 1.5).astype(np.int64)),
            "b": Forecasts(q, (actual * 0.9).astype(np.int64)),
        },
        groups={}
        if groups is None
        else {"campaign": (groups, [f"c{i}" for i in range(int(groups.max()) + 1)])},
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 80))
def test_grouped_scores_equal_the_plain_ones(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    p, q = rng.random(n), rng.random(n)
    y = (rng.random(n) < 0.4).astype(float)
    labels = rng.integers(0, 3, n)
    labels[0] = 2  # three labels always exist
    scorer = GroupedScorer(_rows(p, q, y, labels))
    scores = scorer.scores()
    for g in range(3):
        mask = labels == g
        if not mask.any():
            continue
        d = brier_decomposition(p[mask], y[mask])
        got = scores["campaign"]["a"]
        assert got["brier"][g] == pytest.approx(d.brier, abs=1e-12)
        assert got["reliability"][g] == pytest.approx(d.reliability, abs=1e-12)
        assert got["resolution"][g] == pytest.approx(d.resolution, abs=1e-12)
        assert got["log_loss"][g] == pytest.approx(log_loss(p[mask], y[mask]), abs=1e-12)
        rows = scorer.rows
        mdae, malr = duration_errors(rows.forecasts["a"].duration_us[mask], rows.actual_us[mask])
        assert got["duration_mdae_s"][g] == pytest.approx(mdae)
        assert got["duration_malr"][g] == pytest.approx(malr)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40))
def test_weights_score_like_repeated_rows(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    p, q = rng.random(n), rng.random(n)
    y = (rng.random(n) < 0.5).astype(float)
    w = rng.integers(0, 4, n)
    w[0] = 1
    weighted = GroupedScorer(_rows(p, q, y)).scores(w)["overall"]["a"]
    rep = np.repeat(np.arange(n), w)
    rows = _rows(p, q, y)
    d = brier_decomposition(p[rep], y[rep])
    assert weighted["brier"][0] == pytest.approx(d.brier, abs=1e-12)
    assert weighted["reliability"][0] == pytest.approx(d.reliability, abs=1e-12)
    assert weighted["resolution"][0] == pytest.approx(d.resolution, abs=1e-12)
    mdae, malr = duration_errors(rows.forecasts["a"].duration_us[rep], rows.actual_us[rep])
    assert weighted["duration_mdae_s"][0] == pytest.approx(mdae)
    assert weighted["duration_malr"][0] == pytest.approx(malr)


def test_identical_forecasts_are_never_called_different() -> None:
    rng = np.random.default_rng(5)
    p = rng.random(500)
    y = (rng.random(500) < p).astype(float)
    rows = _rows(p, p.copy(), y)
    rows = ScoredRows(
        rows.cluster,
        rows.outcome,
        rows.actual_us,
        {"a": rows.forecasts["a"], "b": rows.forecasts["a"]},
    )
    result = paired_bootstrap(rows, resamples=200, seed=3)
    diff, low, high = result.differences["overall"][("a", "b")]["brier"]
    assert (diff[0], low[0], high[0]) == (0.0, 0.0, 0.0)


def test_the_true_probability_is_called_better_than_noise() -> None:
    rng = np.random.default_rng(7)
    truth = rng.random(2000)
    y = (rng.random(2000) < truth).astype(float)
    noisy = np.clip(truth + rng.normal(0, 0.3, 2000), 0, 1)
    result = paired_bootstrap(_rows(truth, noisy, y), resamples=300, seed=1)
    diff, _low, high = result.differences["overall"][("a", "b")]["brier"]
    assert diff[0] < 0 and high[0] < 0  # a (the truth) lower, the interval excludes 0


def test_bootstrap_is_seeded() -> None:
    rng = np.random.default_rng(9)
    p, q = rng.random(300), rng.random(300)
    y = (rng.random(300) < 0.5).astype(float)
    first = paired_bootstrap(_rows(p, q, y), resamples=50, seed=4)
    second = paired_bootstrap(_rows(p, q, y), resamples=50, seed=4)
    assert np.array_equal(
        first.differences["overall"][("a", "b")]["log_loss"][1],
        second.differences["overall"][("a", "b")]["log_loss"][1],
    )


def test_a_grouping_that_splits_candidates_gets_intervals_per_group() -> None:
    rng = np.random.default_rng(11)
    n = 1200
    truth = rng.random(n)
    y = (rng.random(n) < truth).astype(float)
    noisy = np.clip(truth + rng.normal(0, 0.35, n), 0, 1)
    base = _rows(truth, noisy, y)
    cut = np.arange(n) % 3  # each candidate (cluster) has rows in every cut
    rows = ScoredRows(
        cluster=np.arange(n) // 3,
        outcome=base.outcome,
        actual_us=base.actual_us,
        forecasts=base.forecasts,
        groups={"cut": (cut, ["t0", "t1", "t2"])},
    )
    result = paired_bootstrap(rows, resamples=200, seed=2)
    diff, low, high = result.differences["cut"][("a", "b")]["brier"]
    assert np.all(np.isfinite(low)) and np.all(high < 0) and np.all(diff < 0)
    same = ScoredRows(rows.cluster, rows.outcome, rows.actual_us,
                      {"a": base.forecasts["a"], "b": base.forecasts["a"]}, rows.groups)  # fmt: skip
    _, low, high = paired_bootstrap(same, resamples=50, seed=2).differences["cut"][("a", "b")][
        "log_loss"
    ]
    assert np.all(low == 0.0) and np.all(high == 0.0)
