"""The seeded generator: deterministic, realistic in shape, awkward where asked, and truthful."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engines.base import get_engine
from engines.model import US_PER_DAY, Dataset, Schedule, datetime_to_us
from harness.cli import main
from harness.data.janitor_db import read_dataset
from harness.data.restore import restore_dataset
from harness.data.snapshot import load_snapshot, write_snapshot
from harness.errors import InputError
from scenarios.campaigns import CAMPAIGN_WITHOUT_RUNS
from scenarios.generator import (
    TRUTH_FILE,
    GeneratorSettings,
    generate,
    load_truth,
    write_truth,
)

#: The Janitor schema's campaign/suite name domain.
NAME = re.compile(r"^[a-z0-9][a-z0-9+\-.]+$")
DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "default"


def _write(scenario_settings: GeneratorSettings, path: Path) -> Path:
    scenario = generate(scenario_settings)
    write_snapshot(scenario.dataset, path)
    write_truth(scenario.truth, path / TRUTH_FILE)
    return path


def _files(path: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(path.iterdir())}


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_snapshot_files(tmp_path: Path) -> None:
    chosen = GeneratorSettings(codebases=60, seed=11, changeset_candidate_fraction=0.05)
    first = _files(_write(chosen, tmp_path / "a"))
    second = _files(_write(chosen, tmp_path / "b"))
    assert set(first) >= {"run.jsonl.gz", "candidate.jsonl.gz", TRUTH_FILE, "snapshot.json"}
    assert first == second


def test_another_seed_gives_other_data() -> None:
    a = generate(GeneratorSettings(codebases=40, seed=1)).dataset
    b = generate(GeneratorSettings(codebases=40, seed=2)).dataset
    assert a.runs != b.runs
    assert [c.name for c in a.codebases] != [c.name for c in b.codebases]


def test_columnar_run_table_is_deterministic_too(tmp_path: Path) -> None:
    dataset = generate(GeneratorSettings(codebases=30, seed=5)).dataset
    write_snapshot(dataset, tmp_path / "a", columnar_runs=True)
    write_snapshot(dataset, tmp_path / "b", columnar_runs=True)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert load_snapshot(tmp_path / "a") == dataset


def test_bundled_default_scenario_is_what_the_generator_makes() -> None:
    """scenarios/default can be rebuilt: `janitor-shadow generate scenarios/default --seed 0`."""
    regenerated = generate(GeneratorSettings(seed=0))
    assert load_snapshot(DEFAULT_SCENARIO) == regenerated.dataset
    assert load_truth(DEFAULT_SCENARIO).candidates == regenerated.truth.candidates


# ---------------------------------------------------------------- invariants


small_settings = st.builds(
    GeneratorSettings,
    codebases=st.integers(2, 40),
    runs_per_candidate=st.floats(0.0, 12.0),
    seed=st.integers(0, 2**32 - 1),
    as_of=st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)),
    campaigns=st.integers(1, 14),
    zero_run_fraction=st.floats(0.0, 0.9),
    null_policy_fraction=st.floats(0.0, 0.5),
    push_derived_fraction=st.floats(0.0, 0.3),
    strict_op_fraction=st.floats(0.0, 0.5),
    changeset_candidate_fraction=st.floats(0.0, 0.3),
    null_value_fraction=st.floats(0.0, 0.3),
    zero_value_fraction=st.floats(0.0, 0.3),
)


def _check_invariants(dataset: Dataset) -> None:
    for name in [c.name for c in dataset.codebases] + [c.suite for c in dataset.candidates]:
        assert NAME.match(name), name
    for policy in dataset.policies:
        assert NAME.match(policy.name), policy.name
    codebases = {c.name for c in dataset.codebases}
    assert len(codebases) == len(dataset.codebases)
    keys = [c.key for c in dataset.candidates]
    assert len(set(keys)) == len(keys)
    ids = [c.id for c in dataset.candidates]
    assert ids == sorted(set(ids))
    as_of = dataset.as_of_us
    seen: set[tuple[str, str, int]] = set()
    for run in dataset.runs:
        assert run.start_us is not None and run.finish_us is not None
        assert run.start_us <= run.finish_us <= as_of
        assert (run.codebase, run.suite, run.start_us) not in seen
        seen.add((run.codebase, run.suite, run.start_us))
        assert run.codebase in codebases
    assert len({r.id for r in dataset.runs}) == len(dataset.runs)
    # Row order: exactly the candidates that survive the join, each once.
    policies = {p.name for p in dataset.policies}
    joined = {
        c.key
        for c in dataset.candidates
        if c.publish_policy in policies and c.codebase in codebases
    }
    assert dataset.candidate_row_order is not None
    assert len(dataset.candidate_row_order) == len(set(dataset.candidate_row_order))
    assert set(dataset.candidate_row_order) == joined


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(chosen=small_settings)
def test_invariants_hold_and_snapshot_round_trips(
    chosen: GeneratorSettings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    scenario = generate(chosen)
    dataset = scenario.dataset
    _check_invariants(dataset)
    assert set(scenario.truth.candidates) == {c.key for c in dataset.candidates}
    out = tmp_path_factory.mktemp("snap") / "s"
    write_snapshot(dataset, out)
    write_truth(scenario.truth, out / TRUTH_FILE)
    assert load_snapshot(out) == dataset
    assert load_truth(out).candidates == scenario.truth.candidates


@settings(max_examples=15, deadline=None)
@given(
    codebases=st.integers(2, 60),
    seed=st.integers(0, 2**32 - 1),
    campaigns=st.integers(1, 14),
    runs_per_candidate=st.floats(0.0, 15.0),
)
def test_legacy_runs_without_errors_when_no_awkward_fraction_is_asked_for(
    codebases: int, seed: int, campaigns: int, runs_per_candidate: float
) -> None:
    dataset = generate(
        GeneratorSettings(
            codebases=codebases,
            seed=seed,
            campaigns=campaigns,
            runs_per_candidate=runs_per_candidate,
        )
    ).dataset
    schedule = get_engine("legacy:memory").schedule(dataset)
    assert [d.error for d in schedule.errors()] == []
    assert len(schedule.decisions) == len(dataset.candidate_row_order or ())


def test_awkward_fractions_make_the_legacy_fail_in_each_known_way() -> None:
    scenario = generate(
        GeneratorSettings(
            codebases=300,
            seed=7,
            push_derived_fraction=0.03,
            strict_op_fraction=0.1,
            changeset_candidate_fraction=0.06,
            null_value_fraction=0.02,
        )
    )
    kinds = Counter(
        d.error.type
        for d in get_engine("legacy:memory").schedule(scenario.dataset).errors()
        if d.error is not None
    )
    assert {k.rsplit(".", 1)[-1] for k in kinds} == {
        "KeyError",  # push-derived
        "TypeError",  # NULL value with a non-empty policy
        "CandidateUnavailable",  # change-set-only candidate with NULL success_chance
        "UndefinedFunctionError",  # << / >> in a dependency relation
    }


# ---------------------------------------------------------------- realism at a mid size


@pytest.fixture(scope="module")
def mid() -> Dataset:
    return generate(GeneratorSettings(candidates=6000, runs_per_candidate=20.0, seed=3)).dataset


def test_mid_size_counts_are_exact(mid: Dataset) -> None:
    assert len(mid.candidates) == 6000
    assert len(mid.codebases) == 3000
    assert len(mid.runs) == 120_000
    assert {c.suite for c in mid.candidates} == {
        "lintian-fixes", "fresh-releases", "fresh-snapshots", "multiarch-fixes", "unchanged",
        "scrub-obsolete", "control", "uncommitted", "debianize", "orphan", "mia", "cme",
    }  # fmt: skip


def test_mid_size_fractions_are_within_bounds(mid: Dataset) -> None:
    candidates = mid.candidates
    with_runs = {(r.codebase, r.suite) for r in mid.runs}
    no_runs = [c for c in candidates if (c.codebase, c.suite) not in with_runs]
    # 12% drawn without runs, plus the campaign that has none at all.
    cme = sum(c.suite == CAMPAIGN_WITHOUT_RUNS for c in candidates)
    assert 0.09 < (len(no_runs) - cme) / (len(candidates) - cme) < 0.15
    assert not any(s == CAMPAIGN_WITHOUT_RUNS for _, s in with_runs)
    null_chance = sum(c.success_chance is None for c in candidates) / len(candidates)
    assert 0.25 < null_chance < 0.35
    null_policy = sum(c.publish_policy is None for c in candidates) / len(candidates)
    assert 0.003 < null_policy < 0.02
    assert all(c.value is not None and c.value > 0 for c in candidates)
    assert all(c.change_set is None for c in candidates)
    null_value = sum(c.value is None for c in mid.codebases) / len(mid.codebases)
    assert 0.05 < null_value < 0.11
    codes = Counter(r.result_code for r in mid.runs)
    total = len(mid.runs)
    assert 0.2 < codes["success"] / total < 0.5
    assert 0.05 < codes["nothing-to-do"] / total < 0.25
    assert codes["install-deps-unsatisfied-dependencies"] / total > 0.03
    assert len(codes) >= 20
    flags = Counter(r.failure_transient for r in mid.runs)
    assert 0.03 < flags[True] / total < 0.1 and flags[False] > 0 and flags[None] > 0


def test_codebase_values_are_heavy_tailed(mid: Dataset) -> None:
    values = np.array(sorted((c.value for c in mid.codebases if c.value), reverse=True))
    # Zipf-like: the top 1% hold far more than 1% of the popularity.
    top = values[: len(values) // 100].sum() / values.sum()
    assert top > 0.3
    assert values[0] > 100 * np.median(values)


def test_awkward_but_ordinary_rows_are_present(mid: Dataset) -> None:
    with_runs = {(r.codebase, r.suite) for r in mid.runs}
    run_codebases = {r.codebase for r in mid.runs}
    candidate_pairs = {(c.codebase, c.suite) for c in mid.candidates}
    candidate_codebases = {c.codebase for c in mid.candidates}
    # Codebases with neither candidates nor runs.
    assert any(
        c.name not in run_codebases and c.name not in candidate_codebases for c in mid.codebases
    )
    # Runs of pairs with no candidate (former candidates), and candidates whose
    # codebase only has runs in other campaigns.
    assert with_runs - candidate_pairs
    assert any(
        (c.codebase, c.suite) not in with_runs and c.codebase in run_codebases
        for c in mid.candidates
    )
    assert any(c.context is None for c in mid.candidates)
    assert any(p.per_branch_policy == () for p in mid.policies)
    # Runs whose context equals their instigated context, and runs where they differ.
    assert any(r.context is not None and r.context == r.instigated_context for r in mid.runs)
    assert any(r.context != r.instigated_context for r in mid.runs)
    same_as_candidate = {(c.codebase, c.suite) for c in mid.candidates if c.context is not None} & {
        (r.codebase, r.suite) for r in mid.runs if r.instigated_context is not None
    }
    assert same_as_candidate


def test_dependency_failures_name_packages_in_all_debian_versions(mid: Dataset) -> None:
    sources = {v.source for v in mid.debian_versions or ()}
    details = [
        r.failure_details
        for r in mid.runs
        if r.result_code == "install-deps-unsatisfied-dependencies"
    ]
    shapes = Counter(
        "null" if d is None else "empty" if d == {} else "no-relations" if d == {"relations": []}
        else "relations"
        for d in details
    )  # fmt: skip
    assert set(shapes) == {"null", "empty", "no-relations", "relations"}
    entries = [
        e for d in details if d and d.get("relations") for alts in d["relations"] for e in alts
    ]
    ops = Counter(e["version"][0] for e in entries if e["version"] is not None)
    assert set(ops) <= {">=", "<=", "=", ">", "<"}  # no << / >> unless asked for
    assert any(e["version"] is None for e in entries)
    named = sum(e["name"] in sources for e in entries) / len(entries)
    assert 0.3 < named < 0.95


def test_fractions_are_honoured() -> None:
    n = 4000
    dataset = generate(
        GeneratorSettings(
            candidates=n,
            seed=9,
            push_derived_fraction=0.05,
            changeset_candidate_fraction=0.05,
            null_value_fraction=0.05,
            strict_op_fraction=0.2,
            zero_value_fraction=0.05,
        )
    ).dataset
    cands = dataset.candidates
    assert len(cands) == n
    push_derived = {
        p.name
        for p in dataset.policies
        if any(e.mode == "push-derived" for e in p.per_branch_policy or ())
    }
    assert 0.03 < sum(c.publish_policy in push_derived for c in cands) / n < 0.07
    assert sum(c.change_set is not None for c in cands) == round(0.05 * n)
    assert 0.03 < sum(c.value is None for c in cands) / n < 0.07
    zero = sum(c.value == 0 for c in dataset.codebases) / len(dataset.codebases)
    assert 0.02 < zero < 0.08
    entries = [
        e
        for r in dataset.runs
        if isinstance(r.failure_details, dict)
        for alts in r.failure_details.get("relations", [])
        for e in alts
        if e["version"] is not None
    ]
    strict = sum(e["version"][0] in ("<<", ">>") for e in entries) / len(entries)
    assert 0.15 < strict < 0.25
    # Twins: a change-set row identical to a plain sibling in every column the legacy reads.
    by_pair = defaultdict(list)
    for c in cands:
        by_pair[(c.codebase, c.suite)].append(c)
    twins = [group for group in by_pair.values() if len(group) == 2]
    assert twins
    for plain, other in twins:
        assert plain.change_set is None and other.change_set is not None
        assert (plain.command, plain.context, plain.value, plain.publish_policy) == (
            other.command, other.context, other.value, other.publish_policy
        )  # fmt: skip


def test_boundary_worker_failures_are_present() -> None:
    as_of = datetime(2025, 6, 1, 12, 30)
    dataset = generate(GeneratorSettings(codebases=50, seed=4, as_of=as_of)).dataset
    day_before = datetime_to_us(as_of - timedelta(days=1))
    boundary = {
        r.start_us: r
        for r in dataset.runs
        if r.start_us in (day_before - 1, day_before, day_before + 1)
    }
    assert set(boundary) == {day_before - 1, day_before, day_before + 1}
    for run in boundary.values():
        assert run.result_code == "worker-failure"
        assert run.failure_transient is not True  # so the one-day rule decides
    recent = [
        r
        for r in dataset.runs
        if r.result_code == "worker-failure" and dataset.as_of_us - (r.start_us or 0) < US_PER_DAY
    ]
    assert len(recent) >= 4  # the +1 µs one and the recent ones


def test_row_order_is_mostly_but_not_exactly_id_order(mid: Dataset) -> None:
    by_key = mid.candidates_by_key
    ids = [by_key[k].id for k in mid.candidate_row_order or ()]
    assert ids != sorted(ids)
    ascending = sum(b > a for a, b in pairwise(ids)) / (len(ids) - 1)
    assert ascending > 0.9


# ---------------------------------------------------------------- truth


def test_truth_matches_what_the_runs_show() -> None:
    scenario = generate(GeneratorSettings(candidates=3000, runs_per_candidate=60.0, seed=12))
    runs = scenario.dataset.runs_by_codebase_campaign
    as_of = scenario.dataset.as_of_us
    errors, duration_ratio, drift_hits, drift_total = [], [], 0, 0
    for key, truth in scenario.truth.candidates.items():
        history = [
            r for r in runs.get((key.codebase, key.campaign), ()) if r.failure_transient is not True
        ]
        recent = [
            r for r in history if r.start_us is not None and as_of - r.start_us < 120 * US_PER_DAY
        ]
        if len(recent) < 25 or key.change_set is not None:
            continue
        observed = sum(r.result_code == "success" for r in recent) / len(recent)
        errors.append(observed - truth.success_probability)
        mean_us = sum(r.duration_us or 0 for r in recent) / len(recent)
        duration_ratio.append(mean_us / truth.expected_duration_us)
        if truth.drifts and abs(truth.success_probability - truth.success_probability_start) > 0.2:
            drift_total += 1
            drift_hits += abs(observed - truth.success_probability) < abs(
                observed - truth.success_probability_start
            )
    assert len(errors) > 200
    # Unbiased and close: recent runs' success share sits on the truth.
    assert abs(float(np.mean(errors))) < 0.03
    assert float(np.mean(np.abs(errors))) < 0.12
    assert 0.8 < float(np.median(duration_ratio)) < 1.25
    # Drifting candidates' recent runs look like the end of the drift, not its start.
    assert drift_total > 20 and drift_hits / drift_total > 0.8


def test_truth_records_drift_and_keys() -> None:
    scenario = generate(GeneratorSettings(codebases=500, seed=2))
    truths = list(scenario.truth.candidates.values())
    drifting = [t for t in truths if t.drifts]
    assert 0.12 < len(drifting) / len(truths) < 0.28
    assert all(t.success_probability == t.success_probability_start for t in truths if not t.drifts)
    assert all(0.0 < t.success_probability < 1.0 for t in truths)
    assert all(t.expected_duration_us > 0 for t in truths)


def test_load_truth_names_the_bad_file_and_record(tmp_path: Path) -> None:
    bad = tmp_path / TRUTH_FILE
    with gzip.open(bad, "wb") as handle:
        handle.write(
            b'{"format": "janitor-shadow-generator-truth", "as_of": "2025-06-01T00:00:00"}\n'
        )
        handle.write(b'{"codebase": "a", "campaign": "b", "change_set": null}\n')
    with pytest.raises(InputError) as info:
        load_truth(tmp_path)
    assert info.value.file == str(bad) and info.value.record == 2
    with pytest.raises(InputError, match="no generator truth"):
        load_truth(tmp_path / "elsewhere")


# ---------------------------------------------------------------- command line


def test_generate_command_writes_a_loadable_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "snap"
    code = main(["generate", str(out), "--codebases", "40", "--seed", "5", "--campaigns", "6"])
    assert code == 0
    assert "runs" in capsys.readouterr().out
    dataset = load_snapshot(out)
    assert dataset == generate(GeneratorSettings(codebases=40, seed=5, campaigns=6)).dataset
    assert len({c.suite for c in dataset.candidates}) == 6
    assert len(load_truth(out)) == len(dataset.candidates)


def test_generate_command_yaml_format(tmp_path: Path) -> None:
    out = tmp_path / "small.yaml"
    assert (
        main(
            [
                "generate",
                str(out),
                "--candidates",
                "30",
                "--format",
                "yaml",
                "--as-of",
                "2024-01-02T03:04:05.000006",
            ]
        )
        == 0
    )
    dataset = load_snapshot(out)
    expected = generate(
        GeneratorSettings(candidates=30, as_of=datetime(2024, 1, 2, 3, 4, 5, 6))
    ).dataset
    assert (dataset.candidates, dataset.runs, dataset.candidate_row_order) == (
        expected.candidates, expected.runs, expected.candidate_row_order,
    )  # fmt: skip
    assert len(load_truth(out)) == 30


@pytest.mark.parametrize(
    "args",
    [
        ["--codebases", "5", "--candidates", "10"],
        ["--candidates", "100000", "--format", "yaml"],
        ["--as-of", "yesterday"],
        ["--strict-op-fraction", "1.5"],
    ],
)
def test_generate_command_rejects_bad_options_with_exit_2(tmp_path: Path, args: list[str]) -> None:
    assert main(["generate", str(tmp_path / "out"), *args]) == 2
    assert not (tmp_path / "out").exists()


def test_generate_command_refuses_to_overwrite(tmp_path: Path) -> None:
    occupied = tmp_path / "snap"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    assert main(["generate", str(occupied), "--codebases", "3"]) == 2
    assert [f.name for f in occupied.iterdir()] == ["keep.txt"]


def test_schedule_runs_on_the_bundled_default_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", str(DEFAULT_SCENARIO), "--engine", "legacy"]) == 0
    assert ", 0 errors," in capsys.readouterr().out


# ---------------------------------------------------------------- against PostgreSQL


@pytest.mark.postgres
def test_default_scenario_through_restore_and_the_sql_backend(
    janitor_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The generated data is valid for the real schema (domains, debversion) and error-free."""
    assert main(["restore", str(DEFAULT_SCENARIO), janitor_db]) == 0
    out = tmp_path / "schedule.json"
    as_of = load_snapshot(DEFAULT_SCENARIO).as_of.isoformat()
    code = main(
        ["schedule", janitor_db, "--engine", "legacy:sql", "--as-of", as_of, "--json", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    decisions = json.loads(out.read_text())["decisions"]
    assert len(decisions) == 792
    assert [d for d in decisions if d.get("error")] == []


@pytest.mark.postgres
def test_awkward_generated_data_sql_and_memory_backends_agree(janitor_db: str) -> None:
    """Every awkward fraction at once: the real database and the memory port fail alike."""
    dataset = generate(
        GeneratorSettings(
            codebases=120,
            seed=21,
            push_derived_fraction=0.05,
            strict_op_fraction=0.2,
            changeset_candidate_fraction=0.08,
            null_value_fraction=0.05,
            zero_value_fraction=0.05,
        )
    ).dataset
    restore_dataset(dataset, janitor_db)
    live = read_dataset(janitor_db, as_of=dataset.as_of)
    assert (live.candidates, live.runs) == (dataset.candidates, dataset.runs)
    sql_schedule = get_engine("legacy:sql").schedule(live)
    memory_schedule = get_engine("legacy:memory").schedule(live)
    assert sql_schedule.queue == memory_schedule.queue

    def outcome(schedule: Schedule) -> list[tuple[object, ...]]:
        return [
            (d.key, d.success_probability, d.estimated_duration_us, d.offset,
             None if d.error is None else d.error.type)
            for d in schedule.decisions
        ]  # fmt: skip

    assert outcome(sql_schedule) == outcome(memory_schedule)
    kinds = {d.error.type.rsplit(".", 1)[-1] for d in sql_schedule.errors() if d.error}
    assert "UndefinedFunctionError" in kinds and "KeyError" in kinds
