"""The noise baseline and Diffy's rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from support_engines import make_decision, make_schedule, simple

from harness.comparison.compare import compare_schedules
from harness.comparison.comparison_model import NoiseRule
from harness.comparison.noise import (
    field_beyond_noise,
    measure_noise,
    noise_runs,
    shuffled_dataset,
    within_own_noise,
)
from harness.comparison.tolerances import default_settings
from harness.data.snapshot import load_snapshot

SCENARIO = "tests/data/compare_small.yaml"


def test_diffy_field_rule_needs_both_thresholds() -> None:
    rule = NoiseRule(relative=0.2, absolute=0.001)
    assert not field_beyond_noise(0, 0, 100, rule)
    assert field_beyond_noise(1, 0, 100_000, rule)  # a field without noise: any divergence
    assert not field_beyond_noise(10, 10, 1000, rule)  # as much as the noise
    assert not field_beyond_noise(5, 10, 1000, rule)  # less than the noise
    # excess 3 against a mean of 11.5 (0.26 > 0.2) and 1000 compared (0.003 > 0.001)
    assert field_beyond_noise(13, 10, 1000, rule)
    assert not field_beyond_noise(11, 10, 1000, rule)  # 1 / 10.5 < 0.2
    assert not field_beyond_noise(13, 10, 10_000, rule)  # 3 / 10000 < 0.001


def test_within_own_noise_per_candidate() -> None:
    delta = np.array([1.0, 5.0, 6.0, 0.5, np.inf])
    noise = np.array([0.0, 5.0, 5.0, 1.0, np.inf])
    assert within_own_noise(delta, noise).tolist() == [False, True, False, True, True]


def test_shuffled_dataset_reorders_the_candidate_rows_only() -> None:
    dataset = load_snapshot(SCENARIO)
    shuffled = shuffled_dataset(dataset, seed=3)
    original = [c.key for c in dataset.joined_candidates]
    reordered = [c.key for c in shuffled.joined_candidates]
    assert sorted(original) == sorted(reordered) and original != reordered
    assert shuffled.candidates == dataset.candidates and shuffled.runs == dataset.runs


def _schedules() -> tuple:
    a = [make_decision(f"c{i}") for i in range(6)]
    priorities = {f"c{i}": 100 * i for i in range(6)}
    ref = make_schedule(a, priorities=priorities)
    # the engine against itself: c0's priority wobbles by 5
    wobble = make_schedule(a, priorities={**priorities, "c0": 5})
    return a, priorities, ref, wobble


def test_differences_within_the_noise_are_noise() -> None:
    a, priorities, ref, wobble = _schedules()
    profile = measure_noise(ref, [("rerun", wobble)])
    assert profile.fields["queue_priority"][profile.index[a[0].key]] == 5.0
    # B: c0 off by 3 (within its own noise of 5); c1 off by 8 (c1 never wobbled)
    b = make_schedule(a, priorities={**priorities, "c0": 3, "c1": 108})
    c = compare_schedules(ref, b, noise=profile)
    by = {d.codebase: d for d in c.candidates}
    assert by["c0"].status == "noise" and by["c1"].status == "real"
    assert (c.real, c.noise) == (1, 1)
    prio = c.field_stats("queue_priority")
    assert prio is not None
    assert (prio.real, prio.noise, prio.noise_max_abs) == (1, 1, 5.0)
    assert (prio.noise_candidates, prio.beyond_noise) == (1, True)
    assert by["c0"].fields[0].noise == 5.0
    # without a noise baseline everything beyond tolerance is real
    plain = compare_schedules(ref, b)
    assert plain.real == 2 and plain.field_stats("queue_priority").beyond_noise is None  # type: ignore[union-attr]


def test_noise_excuses_a_difference_only_up_to_its_own_size() -> None:
    a, priorities, ref, wobble = _schedules()
    profile = measure_noise(ref, [("rerun", wobble)])
    # one divergence (c0 off by 11, beyond its own 5) against one noisy candidate:
    # Diffy's field rule says the field does not stand out of the noise, but noise
    # explains a difference only up to the size measured for that candidate
    b = make_schedule(a, priorities={**priorities, "c0": 11})
    c = compare_schedules(ref, b, noise=profile)
    assert (c.real, c.noise) == (1, 0)
    assert c.field_stats("queue_priority").beyond_noise is False  # type: ignore[union-attr]
    # a move of 1,000 places where the noise was 5 is real whatever the field rule
    b_far = make_schedule(a, priorities={**priorities, "c0": 1000})
    lenient = replace(default_settings(), noise=NoiseRule(relative=100.0, absolute=1.0))
    assert compare_schedules(ref, b_far, noise=profile, settings=lenient).real == 1
    # within its own noise: noise
    b_near = make_schedule(a, priorities={**priorities, "c0": 4})
    assert (compare_schedules(ref, b_near, noise=profile).noise, 1) == (1, 1)


def test_noise_rule_thresholds_only_judge_the_field() -> None:
    a, priorities, ref, wobble = _schedules()
    profile = measure_noise(ref, [("rerun", wobble)])
    b3 = make_schedule(a, priorities={**priorities, "c0": 11, "c1": 108, "c2": 208})
    lenient = replace(default_settings(), noise=NoiseRule(relative=1.5, absolute=0.0))
    c = compare_schedules(ref, b3, noise=profile, settings=lenient)
    assert c.field_stats("queue_priority").beyond_noise is False  # type: ignore[union-attr]
    assert (c.real, c.noise) == (3, 0)
    c = compare_schedules(ref, b3, noise=profile)
    assert c.field_stats("queue_priority").beyond_noise is True  # type: ignore[union-attr]
    assert c.real == 3


def test_presence_and_errors_seen_in_self_runs_are_noise() -> None:
    a = [make_decision(f"c{i}") for i in range(4)]
    ref = make_schedule(a)
    flaky = make_schedule([*a[1:], make_decision("ghost")])
    profile = measure_noise(ref, [("rerun", flaky)])
    c = compare_schedules(ref, make_schedule([*a[1:], make_decision("ghost")]), noise=profile)
    assert c.real == 0 and c.noise == 2
    assert c.noise_baseline is not None and c.noise_baseline.runs == ("rerun",)


def test_noise_runs_of_an_engine_against_itself() -> None:
    dataset = load_snapshot(SCENARIO)
    engine = simple(None)
    runs = noise_runs(engine, dataset, seed=2, shuffles=2)
    assert [label for label, _ in runs] == [
        "rerun",
        "shuffled candidate rows (seed 2)",
        "shuffled candidate rows (seed 3)",
    ]
    reference = engine.schedule(dataset)
    profile = measure_noise(reference, runs)
    # the simple engine's numbers do not depend on the row order; only its tie order
    # (queue ids) does, and queue positions are compared tie-aware
    assert all(float(v.max()) == 0.0 for v in profile.fields.values())
    baseline = profile.baseline(NoiseRule())
    assert all(f.candidates_noisy == 0 for f in baseline.fields)
    assert baseline.rank is not None and baseline.rank.rbo == 1.0


def test_a_noisy_field_does_not_excuse_a_candidate_that_never_moved() -> None:
    a, priorities, ref, wobble = _schedules()
    profile = measure_noise(ref, [("rerun", wobble)])
    # one divergence against one noisy candidate: the field is within noise,
    # but c3 never wobbled, so its move is real
    b = make_schedule(a, priorities={**priorities, "c3": 311})
    c = compare_schedules(ref, b, noise=profile)
    assert c.field_stats("queue_priority").beyond_noise is False  # type: ignore[union-attr]
    assert (c.real, c.noise) == (1, 0)
