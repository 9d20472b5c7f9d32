"""Estimator invariants (hypothesis) and the duration fallback chain."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engines.model import US_PER_DAY, Run
from engines.new.aggregates import aggregates_from_runs, segmented_sequential_sum
from engines.new.config import EngineConfig, config_from_mapping, load_profile
from engines.new.dependencies import DependencyResolver
from engines.new.duration import DurationEstimator
from engines.new.success import SuccessProbabilityEstimator

NOW = 1_750_000_000_000_000
CODES = ("success", "build-failed", "worker-failure", "nothing-to-do", "hosting-rate-limited")


def _config(**success: object) -> EngineConfig:
    return config_from_mapping({"success_estimation": {"method": "decayed", **success}}, "t.yaml")


run_strategy = st.builds(
    lambda code, age, span, transient, ctx: (code, age, span, transient, ctx),
    st.sampled_from(CODES),
    st.integers(0, 800 * US_PER_DAY),
    st.integers(0, 4 * 3600 * 1_000_000),
    st.sampled_from((None, False, True)),
    st.sampled_from((None, "c1", "c2")),
)


def _runs(spec: list[tuple[str, int, int, bool | None, str | None]]) -> list[Run]:
    return [
        Run(f"r{i}", "cb", "camp", code, NOW - age, NOW - age + span, transient, None, ctx)
        for i, (code, age, span, transient, ctx) in enumerate(spec)
    ]


def _probability(config: EngineConfig, runs: list[Run], context: str | None) -> float:
    agg = aggregates_from_runs(runs, config, NOW, {"c1", "c2"}, {})
    estimator = SuccessProbabilityEstimator(config, DependencyResolver({}, {}))
    return estimator.estimate(agg, agg.group("cb", "camp"), context).probability


half_lives = st.floats(0.5, 1000)
priors = st.floats(0.01, 1.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(run_strategy, max_size=25), half_lives, priors, st.sampled_from((None, "c1", "c3")))
def test_probability_is_in_unit_interval(
    spec: list[tuple[str, int, int, bool | None, str | None]],
    half_life: float,
    prior: float,
    context: str | None,
) -> None:
    config = _config(half_life_days=half_life, default_success_probability=prior)
    p = _probability(config, _runs(spec), context)
    assert 0.0 <= p <= 1.0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(run_strategy, max_size=25),
    st.integers(0, 300 * US_PER_DAY),
    half_lives,
    priors,
)
def test_adding_a_success_never_lowers_the_probability(
    spec: list[tuple[str, int, int, bool | None, str | None]],
    age: int,
    half_life: float,
    prior: float,
) -> None:
    config = _config(half_life_days=half_life, default_success_probability=prior)
    before = _probability(config, _runs(spec), "c3")
    after = _probability(config, _runs([*spec, ("success", age, 1_000_000, False, None)]), "c3")
    assert after >= before - 1e-12


@given(half_lives, priors)
def test_default_probability_without_data(half_life: float, prior: float) -> None:
    config = _config(half_life_days=half_life, default_success_probability=prior)
    assert _probability(config, [], "c1") == prior
    # only transient runs, old worker failures, or runs outside the window: still no data
    runs = _runs(
        [
            ("build-failed", 0, 10, True, None),
            ("worker-failure", 5 * US_PER_DAY, 10, None, None),
            ("success", 5000 * US_PER_DAY, 10, None, None),
        ]
    )
    assert _probability(config, runs, "c1") == prior


def test_recent_runs_weigh_more() -> None:
    config = _config(half_life_days=10, historical_data_window_days=None, prior_weight=0.01)
    recent_success = _runs(
        [("success", 0, 1, None, None), ("build-failed", 100 * US_PER_DAY, 1, None, None)]
    )
    recent_failure = _runs(
        [("build-failed", 0, 1, None, None), ("success", 100 * US_PER_DAY, 1, None, None)]
    )
    assert (
        _probability(config, recent_success, "x")
        > 0.9
        > 0.1
        > _probability(config, recent_failure, "x")
    )


def test_transient_result_codes_are_ignored() -> None:
    config = _config(transient_result_codes=["hosting-rate-limited"])
    runs = _runs([("success", 0, 1, None, None), ("hosting-rate-limited", 0, 1, None, None)])
    only_success = _runs([("success", 0, 1, None, None)])
    assert _probability(config, runs, "x") == _probability(config, only_success, "x")


def test_duration_fallback_chain() -> None:
    config = config_from_mapping(
        {
            "success_estimation": {"minimum_data_points": 3, "historical_data_window_days": None},
            "duration_estimation": {"method": "median", "campaign_defaults": {"slow": 30}},
            "scheduling": {"default_estimated_duration": 2},
        },
        "t.yaml",
    )
    minute = 60_000_000
    runs = [
        Run(
            f"a{i}",
            "cb",
            "camp",
            "success",
            NOW - i * minute * 100,
            NOW - i * minute * 100 + d * minute,
        )
        for i, d in enumerate((1, 5, 3, 9))
    ] + [Run("b0", "cb", "other", "success", NOW, NOW + 7 * minute)]
    agg = aggregates_from_runs(runs, config, NOW, set(), {})
    est = DurationEstimator(config)
    first = est.estimate(agg, agg.group("cb", "camp"), "cb", "camp")
    assert (first.source, first.duration_us) == ("median", 5 * minute)  # sorted[4 // 2]
    second = est.estimate(agg, agg.group("cb", "other"), "cb", "other")
    assert (second.source, second.duration_us) == ("codebase-median", 5 * minute)  # of 1,3,5,7,9
    third = est.estimate(agg, None, "new", "slow")
    assert (third.source, third.duration_us) == ("campaign-default", 30 * minute)
    fourth = est.estimate(agg, None, "new", "fast")
    assert (fourth.source, fourth.duration_us) == ("default", 2 * minute)
    assert "minutes" in fourth.reason


def test_legacy_mean_keeps_the_summation_order() -> None:
    # Three spans whose float sum depends on the order they are added in.
    spans = [1, 10**15, -(10**15)]
    values = np.array([s / 1e6 for s in spans])
    group = np.zeros(3, dtype=np.int64)
    python_sum = 0.0
    for v in values.tolist():
        python_sum += v
    assert segmented_sequential_sum(values, group, 1)[0] == python_sum


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.floats(-1e9, 1e9), min_size=1, max_size=40), min_size=1, max_size=8))
def test_segmented_sum_equals_a_python_loop(groups: list[list[float]]) -> None:
    values = np.array([v for g in groups for v in g])
    ids = np.array([i for i, g in enumerate(groups) for _ in g], dtype=np.int64)
    sums = segmented_sequential_sum(values, ids, len(groups))
    for i, g in enumerate(groups):
        expected = 0.0
        for v in g:
            expected += v
        assert sums[i] == expected


def test_parity_profile_uses_the_legacy_formula() -> None:
    config = load_profile("parity")
    runs = _runs([("success", 0, 1, None, "c1"), ("build-failed", US_PER_DAY * 3, 1, None, None)])
    # one success of two, and a previous run had context c1 → ×0.1
    assert _probability(config, runs, "c1") == (1 * 10 + 1) / (2 * 10 + 1) * 0.1
    assert _probability(config, runs, None) == (1 * 10 + 1) / (2 * 10 + 1) * 0.5
    assert _probability(config, [], None) == 1.0


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, 10**7),
            st.integers(0, 30 * US_PER_DAY),
            st.sampled_from((1, 3, 500_001, 1_500_000)),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_order_free_mean_agrees_with_the_legacys_float_sum(spans: list[int]) -> None:
    """Where the database path skips the ordered float sum, the legacy's answer is the same."""
    from engines.new.aggregates import legacy_mean_us, mean_if_unambiguous

    exact = mean_if_unambiguous(sum(spans), sum(abs(s) for s in spans), len(spans))
    for order in (spans, spans[::-1], sorted(spans)):
        seconds = 0.0
        for span in order:
            seconds += span / 1_000_000
        legacy = legacy_mean_us(seconds, len(order))
        if exact is not None:
            assert exact == legacy


def test_exact_ties_are_left_to_the_ordered_sum() -> None:
    from engines.new.aggregates import mean_if_unambiguous

    assert mean_if_unambiguous(3, 3, 2) is None  # 1.5 µs: a tie
    assert mean_if_unambiguous(4, 4, 2) == 2
    assert mean_if_unambiguous(10, 10, 3) == 3


@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),
            # beyond ±2**60 the values no longer pack beside the group: np.lexsort
            st.one_of(st.integers(-(2**40), 2**40), st.integers(-(2**62), 2**62)),
        ),
        max_size=60,
    )
)
def test_grouped_medians_are_the_plans_sorted_middle(rows: list[tuple[int, int]]) -> None:
    from engines.new.aggregates import grouped_medians

    group = np.array([g for g, _ in rows], dtype=np.int64)
    values = np.array([v for _, v in rows], dtype=np.int64)
    medians, counts = grouped_medians(group, values, np.bincount(group, minlength=6))
    for g in range(6):
        mine = sorted(v for k, v in rows if k == g)
        assert counts[g] == len(mine)
        assert medians[g] == (mine[len(mine) // 2] if mine else None)


@given(st.lists(st.tuples(st.integers(0, 7), st.one_of(st.none(), st.integers(0, 5))), max_size=60))
def test_packed_group_order_equals_two_stable_sorts(rows: list[tuple[int, int | None]]) -> None:
    from engines.grouping import INT64_MIN, group_order

    key = np.array([k for k, _ in rows], dtype=np.int64)
    newest = np.array([INT64_MIN if s is None else -s for _, s in rows], dtype=np.int64)
    by_start = np.argsort(newest, kind="stable")
    expected = by_start[np.argsort(key[by_start], kind="stable")]
    assert group_order(key, newest).tolist() == expected.tolist()


@given(
    st.lists(
        st.tuples(
            st.integers(0, 3), st.integers(-(3 * US_PER_DAY), 40 * US_PER_DAY), st.booleans()
        ),
        max_size=40,
    )
)
def test_grouped_interval_sums_are_exact(rows: list[tuple[int, int, bool]]) -> None:
    from engines.legacy.pg_interval import average_of_sums, grouped_averages, interval_fields

    group = np.array([g for g, _, _ in rows], dtype=np.int64)
    span = np.array([s for _, s, _ in rows], dtype=np.int64)
    mask = np.array([m for _, _, m in rows], dtype=bool)
    days, time = interval_fields(span)
    averages = grouped_averages(group, days, time, mask, ["a", "b", "c", "d"])
    for g, name in enumerate("abcd"):
        chosen = [i for i, (k, _, m) in enumerate(rows) if k == g and m]
        if not chosen:
            assert name not in averages
            continue
        exact = average_of_sums(
            sum(int(days[i]) for i in chosen), sum(int(time[i]) for i in chosen), len(chosen)
        )
        assert averages[name] == exact


@given(
    st.lists(
        st.integers(-2 * US_PER_DAY, 2 * US_PER_DAY) | st.integers(-(2**62), 2**62), max_size=30
    ),
    st.booleans(),
)
@example([-1, 5], False)  # floor would make that a day back
@example([-US_PER_DAY - 1, US_PER_DAY], False)
def test_interval_fields_truncate_towards_zero_as_postgresql(
    spans: list[int], only_forward: bool
) -> None:
    """Days truncated towards zero, the rest of the span in µs (its sign the span's),
    on arrays of forward spans only (one floor division) and of mixed signs."""
    from engines.legacy.pg_interval import interval_fields

    if only_forward:
        spans = [abs(s) for s in spans]
    days, time = interval_fields(np.array(spans, dtype=np.int64))
    for span, day, rest in zip(spans, days.tolist(), time.tolist(), strict=True):
        whole = abs(span) // US_PER_DAY
        assert day == (whole if span >= 0 else -whole)
        assert rest == span - day * US_PER_DAY


def test_grouped_interval_sums_stay_exact_beyond_float_precision() -> None:
    from engines.legacy.pg_interval import average_of_sums, grouped_averages, interval_fields

    n = 200_000  # Σ µs fields ≈ 1.7e16 > 2**53: a float sum would round
    span = np.full(n, US_PER_DAY - 1, dtype=np.int64)
    span[::3] -= 7
    days, time = interval_fields(span)
    averages = grouped_averages(
        np.zeros(n, dtype=np.int64), days, time, np.ones(n, dtype=bool), ["all"]
    )
    assert int(time.sum()) > 2**53
    assert averages["all"] == average_of_sums(int(days.sum()), int(time.sum()), n)


@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.floats(-1e7, 1e9, allow_nan=False),
                st.integers(0, 10**12).map(lambda us: (us + 0.5) / 1e6),  # exact halves
                st.floats(1e12, 1e16),  # beyond the array path, some beyond timedelta
            ),
            st.integers(1, 60),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_array_means_equal_the_legacys_timedelta(rows: list[tuple[float, int]]) -> None:
    from engines.new.aggregates import legacy_mean_us, legacy_means_us

    sums = np.array([s * c for s, c in rows])
    counts = np.array([c for _, c in rows], dtype=np.int64)
    for total, count, got in zip(
        sums.tolist(), counts.tolist(), legacy_means_us(sums, counts), strict=True
    ):
        try:
            expected: int | None = legacy_mean_us(total, count)
        except OverflowError:
            expected = None
        assert got == expected


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.integers(-(2**62), 2**62), st.integers(-5, 5000)),
        min_size=1,
        max_size=6,
    )
)
def test_codebase_values_normalized_together_are_each_ones_own(values: list[int | None]) -> None:
    from engines.new.scoring import CodebaseNormalizer

    normalizer = CodebaseNormalizer([(f"cb{i}", v) for i, v in enumerate(values)], 0.5)
    names = [f"cb{i}" for i in range(len(values) + 1)]  # and one without a value
    assert normalizer.normalized_all(names) == [normalizer.normalized(n) for n in names]
