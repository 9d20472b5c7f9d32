"""The noise baseline and Diffy's rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from support_engines import make_decision, make_schedule, simple

from harness.compare import compare_schedules
from harness.comparison_model import NoiseRule
from harness.noise import beyond_noise, measure_noise, noise_runs, shuffled_dataset
from harness.snapshot import load_snapshot
from harness.tolerances import default_settings

SCENARIO = "tests/data/compare_small.yaml"


def test_diffy_rule_needs_both_thresholds() -> None:
    delta = np.array([1.0, 3.0, 3.0, 0.5, np.inf])
    noise = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    scale = np.array([100.0, 100.0, 100.0, 100.0, np.nan])
    assert beyond_noise(delta, noise, scale, NoiseRule(2.0, 0.0)).tolist() == [
        False,
        True,
        True,
        True,
        True,
    ]
    # the absolute threshold: the difference must also be 2% of the values
    assert beyond_noise(delta, noise, scale, NoiseRule(2.0, 0.02)).tolist() == [
        False,
        True,
        True,
        False,
        False,
    ]


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
    # B: c0 off by 8 (within 2 × noise 5), c1 off by 8 (no noise seen: real)
    b = make_schedule(a, priorities={**priorities, "c0": 8, "c1": 108})
    c = compare_schedules(ref, b, noise=profile)
    by = {d.codebase: d for d in c.candidates}
    assert by["c0"].status == "noise" and by["c1"].status == "real"
    assert (c.real, c.noise) == (1, 1)
    prio = c.field_stats("queue_priority")
    assert prio is not None and (prio.real, prio.noise, prio.noise_max_abs) == (1, 1, 5.0)
    assert by["c0"].fields[0].noise == 5.0
    # beyond twice the noise it is real again
    far = make_schedule(a, priorities={**priorities, "c0": 11})
    assert compare_schedules(ref, far, noise=profile).real == 1
    # without a noise baseline everything beyond tolerance is real
    assert compare_schedules(ref, b).real == 2


def test_noise_rule_is_configurable() -> None:
    a, priorities, ref, wobble = _schedules()
    profile = measure_noise(ref, [("rerun", wobble)])
    b = make_schedule(a, priorities={**priorities, "c0": 11})
    lenient = replace(default_settings(), noise=NoiseRule(relative=3.0, absolute=0.0))
    assert compare_schedules(ref, b, noise=profile, settings=lenient).noise == 1


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
    runs = noise_runs(engine, dataset, seed=2)
    assert [label for label, _ in runs] == ["rerun", "shuffled candidate rows (seed 2)"]
    reference = engine.schedule(dataset)
    profile = measure_noise(reference, runs)
    # the simple engine's numbers do not depend on the row order; only its tie order
    # (queue ids) does, and queue positions are compared tie-aware
    assert all(float(v.max()) == 0.0 for v in profile.fields.values())
    baseline = profile.baseline(NoiseRule())
    assert all(f.candidates_noisy == 0 for f in baseline.fields)
    assert baseline.rank is not None and baseline.rank.rbo == 1.0
