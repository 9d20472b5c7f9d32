"""Attribution: the log-ratio splits exactly, and injected bugs land on the right factor."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support_engines import make_decision, make_schedule, simple

from harness.comparison.attribution import attribute, duration_cost, recomputed_factors
from harness.comparison.compare import compare_schedules
from harness.data.snapshot import load_snapshot

SCENARIO = "tests/data/compare_small.yaml"


def test_duration_cost_counts_the_sub_second_part_twice() -> None:
    # 1.5 s: 20000 + 1000·1.5 + 500000/1000
    assert duration_cost(1_500_000) == 20_000 + 1_500 + 500
    assert duration_cost(0) == 20_000


def test_recomputed_factors_follow_the_legacy_rules() -> None:
    first_run = make_decision("x", runs=0, value=40.0, ncv=None)
    factors = recomputed_factors(first_run)
    assert factors["candidate_value"] == 140.0  # first-run bonus
    assert factors["normalized_codebase_value"] == 0.5  # default for NULL
    floored = recomputed_factors(make_decision("y", ncv=0.01, value=None))
    assert floored["normalized_codebase_value"] == 0.1 and floored["candidate_value"] == 1.0


@pytest.mark.parametrize(
    ("change", "factor"),
    [
        ({"probability": 0.25}, "success_probability"),
        ({"duration_us": 50_000_000}, "duration"),
        ({"ncv": 0.9}, "normalized_codebase_value"),
        ({"value": 300.0}, "candidate_value"),
    ],
)
def test_one_factor_changed_is_the_whole_story(change: dict, factor: str) -> None:
    a = make_decision("x")
    b = make_decision("x", **change)
    result = attribute(a, b)
    assert result is not None and result.dominant == factor
    assert result.source == "recomputed"
    part = result.contribution(factor)
    assert (
        part is not None and part.share == pytest.approx(1.0) and part.weight == pytest.approx(1.0)
    )
    assert part.log_ratio == pytest.approx(result.log_ratio)
    others = [c for c in result.contributions if c.factor != factor]
    assert all(c.log_ratio == 0.0 for c in others)


def test_two_factors_split_by_their_log_ratios() -> None:
    a = make_decision("x", probability=0.5, duration_us=10_000_000)
    b = make_decision("x", probability=0.25, duration_us=70_000_000)
    result = attribute(a, b)
    assert result is not None
    prob = result.contribution("success_probability")
    dur = result.contribution("duration")
    assert prob is not None and dur is not None
    assert prob.log_ratio == pytest.approx(math.log(2))  # halved probability → offset ×2
    assert dur.log_ratio == pytest.approx(math.log(90_000 / 30_000))
    assert (prob.a, prob.b) == (0.5, 0.25) and (dur.a, dur.b) == (30_000.0, 90_000.0)
    assert result.dominant == "duration"
    assert prob.share + dur.share == pytest.approx(1.0)


def test_an_offset_outside_the_formula_is_a_residual() -> None:
    a = make_decision("x")
    b = replace(a, offset=(a.offset or 0) * 1.5)
    result = attribute(a, b)
    assert result is not None and result.dominant == "residual"
    assert result.contribution("residual").log_ratio == pytest.approx(math.log(1.5))  # type: ignore[union-attr]


factor_values = st.fixed_dictionaries(
    {
        "probability": st.floats(0.01, 1.0),
        "duration_us": st.integers(0, 10**10),
        "ncv": st.one_of(st.none(), st.floats(0.0, 1.0)),
        "value": st.one_of(st.none(), st.floats(1.0, 1000.0)),
        "runs": st.integers(0, 3),
    }
)


@settings(max_examples=200, deadline=None)
@given(factor_values, factor_values)
def test_contributions_sum_to_the_log_ratio(fa: dict, fb: dict) -> None:
    a, b = make_decision("x", **fa), make_decision("x", **fb)
    result = attribute(a, b)
    assert result is not None
    assert sum(c.log_ratio for c in result.contributions) == pytest.approx(
        result.log_ratio, abs=1e-9
    )
    # the formula explains everything: no residual for a faithful engine
    assert abs(result.contribution("residual").log_ratio) < 1e-9  # type: ignore[union-attr]
    assert sum(c.weight for c in result.contributions) == pytest.approx(
        1.0 if result.dominant else 0.0
    )


@pytest.mark.parametrize(
    ("bug", "factor"),
    [
        ("prob", "success_probability"),
        ("duration", "duration"),
        ("ncv", "normalized_codebase_value"),
        ("value", "candidate_value"),
        ("offset", "residual"),
        ("stale", "success_probability"),
    ],
)
def test_injected_engine_bug_is_attributed_to_its_factor(bug: str, factor: str) -> None:
    dataset = load_snapshot(SCENARIO)
    good = simple(None).schedule(dataset)
    buggy = simple(bug).schedule(dataset)
    c = compare_schedules(good, buggy)
    assert c.verdict == "fail"
    assert set(c.causes) == {factor}
    moved = [d for d in c.candidates if d.attribution and d.attribution.dominant]
    assert moved and all(d.attribution.dominant == factor for d in moved)  # type: ignore[union-attr]
    for summary in c.campaigns:
        if summary.causes:
            assert summary.dominant_cause == factor
    if bug == "stale":
        # the stale factors do not reproduce B's offset, so they were recomputed
        assert all(d.attribution.source == "mixed" for d in moved)  # type: ignore[union-attr]


def test_campaign_aggregates_count_causes() -> None:
    a = [make_decision(f"p{i}", "one") for i in range(3)] + [
        make_decision(f"d{i}", "two") for i in range(2)
    ]
    b = [make_decision(f"p{i}", "one", probability=0.1) for i in range(3)] + [
        make_decision(f"d{i}", "two", duration_us=99_000_000) for i in range(2)
    ]
    c = compare_schedules(make_schedule(a), make_schedule(b))
    by = {s.campaign: s for s in c.campaigns}
    assert by["one"].causes == {"success_probability": 3}
    assert by["two"].causes == {"duration": 2}
    assert by["one"].median_log_ratio == pytest.approx(math.log(5))
    assert c.causes == {"success_probability": 3, "duration": 2}
