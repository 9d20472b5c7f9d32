"""Shadow mode with Scientist's semantics: the control's (legacy's) schedule always
comes back, whatever the candidate (new) engine does; its exceptions are caught and
counted; the harness's comparator judges; order and sampling are random but seedable.

The raising engines are third-party engines (``tests/plugin_engine.py``), found
by ``module:factory`` as a user's experimental engine would be.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from paths import VECTORS
from prometheus_client.parser import text_string_to_metric_families
from support_engines import make_decision, make_schedule

from engines.base import get_engine
from engines.model import Dataset, Schedule
from engines.new import create_engine
from engines.new.metrics import SchedulingMetrics
from engines.new.orchestrator import SchedulingOrchestrator
from harness.cli import main
from harness.comparison.shadow import HarnessComparator
from harness.comparison.waivers import load_waivers
from harness.data.snapshot import load_snapshot

SMALL = VECTORS / "small"
WAIVERS = Path(__file__).resolve().parents[1] / "scenarios" / "waivers" / "legacy-errors.yaml"


@pytest.fixture(scope="module")
def small() -> Dataset:
    return load_snapshot(SMALL)


@pytest.fixture(scope="module")
def legacy_schedule(small: Dataset) -> Schedule:
    return get_engine("legacy:memory").schedule(small)


def _samples(metrics: SchedulingMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _metric(metrics: SchedulingMetrics, name: str, **labels: str) -> float:
    key = (f"janitor_scheduler_{name}", tuple(sorted(labels.items())))
    return _samples(metrics).get(key, 0.0)


def _same_answer(got: Schedule, expected: Schedule) -> None:
    assert got.engine == expected.engine
    assert got.decisions == expected.decisions
    assert got.queue == expected.queue


def _shadow(new: Any, **kwargs: Any) -> SchedulingOrchestrator:
    return SchedulingOrchestrator(new, get_engine("legacy:memory"), "shadow", **kwargs)


# ------------------------------------------------------------------ orchestrator


def test_a_candidate_raising_on_the_whole_run_is_caught_and_counted(
    small: Dataset, legacy_schedule: Schedule, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = SchedulingMetrics()
    with caplog.at_level(logging.WARNING, logger="engines.new"):
        result = _shadow(get_engine("plugin_engine:raising:run"), metrics=metrics, seed=1)
        result = result.schedule_candidates(small)
    _same_answer(result.schedule, legacy_schedule)
    assert result.run_failed and len(result.failures) == 1
    assert result.failures[0].error == "RuntimeError: the experimental engine is down"
    assert result.comparison is None and result.shadow_schedule is None
    engine = "plugin_engine:raising:run"
    assert _metric(metrics, "new_engine_failures_total", engine=engine, mode="shadow", scope="run")
    assert _metric(metrics, "shadow_runs_total", engine=engine, outcome="failed") == 1
    assert any("experimental engine is down" in r.getMessage() for r in caplog.records)
    assert any("raised (RuntimeError" in n for n in result.schedule.notes)


def test_a_candidate_failing_on_some_candidates_is_counted_and_compared(
    small: Dataset, legacy_schedule: Schedule
) -> None:
    metrics = SchedulingMetrics()
    engine = get_engine("plugin_engine:raising:candidate")
    result = _shadow(engine, metrics=metrics, seed=2).schedule_candidates(small)
    _same_answer(result.schedule, legacy_schedule)
    victims = {c.key for c in small.joined_candidates if sum(map(ord, c.codebase)) % 3 == 0} - {
        d.key for d in legacy_schedule.decisions if d.error is not None
    }
    assert victims
    assert {f.key for f in result.failures} == victims
    assert all(f.error.startswith("builtins.ZeroDivisionError") for f in result.failures)
    assert not result.run_failed and result.candidate_failures == len(victims)
    assert _metric(
        metrics, "new_engine_failures_total", engine=engine.name, mode="shadow", scope="candidate"
    ) == len(victims)
    # the harness's comparator sees each as a value against an error
    assert result.comparison is not None and not result.comparison.passed
    assert result.comparison.counts.error_mismatches >= len(victims)
    assert _metric(metrics, "shadow_divergences_total", engine=engine.name) == (
        result.comparison.real
    )


def test_fallback_survives_a_whole_run_failure_and_counts_it(
    small: Dataset, legacy_schedule: Schedule
) -> None:
    metrics = SchedulingMetrics()
    engine = get_engine("plugin_engine:raising:run")
    result = SchedulingOrchestrator(
        engine, get_engine("legacy:memory"), "fallback", metrics=metrics
    ).schedule_candidates(small)
    _same_answer(result.schedule, legacy_schedule)
    assert result.fallback_count == len(legacy_schedule.decisions)
    assert result.run_failed
    assert _metric(
        metrics, "new_engine_failures_total", engine=engine.name, mode="fallback", scope="run"
    )
    assert _metric(metrics, "fallback_candidates_total", engine=engine.name) == len(
        legacy_schedule.decisions
    )


class Recorder:
    """An engine that notes when it ran and answers a fixed schedule."""

    def __init__(self, name: str, calls: list[str], schedule: Schedule) -> None:
        self.name = name
        self.calls = calls
        self.answer = schedule

    def schedule(self, dataset: Dataset) -> Schedule:
        self.calls.append(self.name)
        return make_schedule(list(self.answer.decisions), engine=self.name)


TINY = make_schedule([make_decision(f"cb{i}", duration_us=10_000_000 + i) for i in range(5)])
EMPTY = Dataset(
    as_of=TINY.as_of, codebases=(), candidates=(), policies=(), runs=(), debian_versions=None
)


def _recorded(seed: int | None, sample: float = 100.0) -> tuple[list[str], Any]:
    calls: list[str] = []
    orchestrator = SchedulingOrchestrator(
        Recorder("candidate", calls, TINY),
        Recorder("control", calls, TINY),
        "shadow",
        sample=sample,
        seed=seed,
    )
    result = orchestrator.schedule_candidates(EMPTY)
    return calls, result


def test_the_engines_run_in_a_random_order_that_a_seed_fixes() -> None:
    orders = set()
    for seed in range(20):
        calls, result = _recorded(seed)
        assert tuple(calls) == result.order
        assert result.schedule.engine == "control"
        assert result.comparison is not None and result.comparison.passed
        assert _recorded(seed)[0] == calls  # the same seed, the same order
        orders.add(tuple(calls))
    assert orders == {("control", "candidate"), ("candidate", "control")}


def test_sample_decides_whether_the_candidate_runs_at_all() -> None:
    never = [_recorded(seed, sample=0.0) for seed in range(10)]
    assert all(calls == ["control"] and not r.sampled for calls, r in never)
    assert all(r.schedule.engine == "control" and r.comparison is None for _, r in never)
    always = [_recorded(seed, sample=100.0) for seed in range(10)]
    assert all(len(calls) == 2 and r.sampled for calls, r in always)
    orchestrator = SchedulingOrchestrator(
        Recorder("candidate", calls := [], TINY),
        Recorder("control", [], TINY),
        "shadow",
        sample=25.0,
        seed=7,
    )
    for _ in range(400):
        orchestrator.schedule_candidates(EMPTY)
    assert 60 <= len(calls) <= 140  # about a quarter of 400 runs


def test_a_comparator_that_raises_does_not_lose_the_control(small: Dataset) -> None:
    def broken(*args: object) -> Any:
        raise ValueError("comparator bug")

    result = _shadow(create_engine("parity"), comparator=broken, seed=1).schedule_candidates(small)
    assert result.schedule.engine == "legacy:memory"
    assert result.comparison is None
    assert result.comparison_error == "ValueError: comparator bug"


def test_shadow_comparison_uses_waivers_tolerances_and_noise(small: Dataset) -> None:
    parity = create_engine("parity")
    plain = _shadow(parity, seed=1).schedule_candidates(small).comparison
    assert plain is not None and plain.noise_baseline is None
    waived = _shadow(
        parity,
        comparator=HarnessComparator(waivers=load_waivers(str(WAIVERS)), noise=True),
        seed=1,
    ).schedule_candidates(small)
    assert waived.comparison is not None and waived.comparison.passed
    assert waived.comparison.noise_baseline is not None
    assert waived.comparison.waived == plain.real  # the legacy's errors, waived


# ------------------------------------------------------------------ the command


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    """``run SMALL ARGS… --json F`` → (exit code, stdout, stderr, the schedule written)."""

    def invoke(tmp_path: Path, *args: str, mode: str = "shadow") -> tuple[int, str, str, Any]:
        out = tmp_path / "schedule.json"
        out.unlink(missing_ok=True)
        code = main(["run", str(SMALL), "--mode", mode, "--json", str(out), *args])
        captured = capsys.readouterr()
        data = json.loads(out.read_text()) if out.exists() else {}
        return code, captured.out, captured.err, data

    return invoke


def _without_notes(schedule: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schedule.items() if k in ("engine", "decisions", "queue")}


def test_run_shadow_with_a_raising_engine_returns_the_legacys_schedule(
    run: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = tmp_path / "legacy.json"
    assert main(["schedule", str(SMALL), "--engine", "legacy", "--json", str(reference)]) == 0
    capsys.readouterr()
    expected = _without_notes(json.loads(reference.read_text()))
    code, out, _, data = run(tmp_path, "--engine", "plugin_engine:raising:run", "--no-noise")
    assert code == 0
    assert _without_notes(data) == expected
    assert "new engine failures: whole run 1, candidates 0" in out
    assert "RuntimeError: the experimental engine is down" in out
    assert any("plugin_engine:raising:run raised" in n for n in data["notes"])
    # the candidate failing per candidate: still the legacy's answer, exit 0
    code, out, _, data = run(tmp_path, "--engine", "plugin_engine:raising:candidate", "--no-noise")
    assert code == 0
    assert _without_notes(data) == expected
    assert "whole run 0, candidates " in out and "candidates 0" not in out
    assert "ZeroDivisionError" in out
    # asked to, a crash of the candidate fails the run
    code, *_ = run(tmp_path, "--engine", "plugin_engine:raising:run", "--fail-on-divergence")
    assert code == 1


def test_run_shadow_divergence_exit_codes_and_comparator_options(run: Any, tmp_path: Path) -> None:
    doubled = ["--engine", "plugin_engine:create:2", "--no-noise", "--waivers", str(WAIVERS)]
    code, out, _, data = run(tmp_path, *doubled)
    assert code == 0 and data["engine"] == "legacy:memory"
    assert "shadow: FAIL" in out and "offset" in out
    code, *_ = run(tmp_path, *doubled, "--fail-on-divergence")
    assert code == 1
    loose = tmp_path / "loose.yaml"
    loose.write_text("version: 1\nfields:\n  offset: {absolute: 0.0, relative: 1.0}\n")
    code, out, *_ = run(tmp_path, *doubled, "--tolerances", str(loose), "--fail-on-divergence")
    assert code == 0 and "shadow: PASS" in out
    code, out, *_ = run(tmp_path, *doubled, "--sample", "0", "--fail-on-divergence")
    assert code == 0 and "did not run" in out


def test_run_fallback_with_a_raising_engine(run: Any, tmp_path: Path) -> None:
    code, out, _, data = run(tmp_path, "--engine", "plugin_engine:raising:run", mode="fallback")
    assert code == 0
    assert data["engine"] == "legacy:memory"
    assert "fallbacks: 293" in out and "experimental engine is down" in out


def test_shadow_only_options_are_refused_elsewhere(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SMALL), "--mode", "new", "--sample", "5"]) == 2
    assert "--sample: only with --mode shadow" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["run", "candidate"])
def test_a_user_sees_log_lines_not_tracebacks(option: str, tmp_path: Path) -> None:
    """In a fresh process, as a user runs it (no test logging handlers in the way)."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "tests")])}
    out = tmp_path / "schedule.json"
    engine = f"plugin_engine:raising:{option}"
    args = ["run", str(SMALL), "--mode", "shadow", "--engine", engine, "--no-noise"]
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args, "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"shadow: the new engine {engine} failed" in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2
    assert json.loads(out.read_text())["engine"] == "legacy:memory"
