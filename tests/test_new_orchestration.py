"""Orchestration modes (new / fallback / shadow), metrics, structured logs, the run command."""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
from pathlib import Path

import pytest
from paths import VECTORS
from prometheus_client.parser import text_string_to_metric_families

from engines.base import get_engine
from engines.model import Candidate, Dataset
from engines.new import create_engine
from engines.new.config import load_profile
from engines.new.logs import JsonFormatter
from engines.new.metrics import SchedulingMetrics
from engines.new.orchestrator import OrchestrationMode, SchedulingOrchestrator
from engines.new.scoring import SchedulingEngine
from harness.cli import main
from harness.data.snapshot import load_snapshot

WAIVERS = Path(__file__).resolve().parents[1] / "scenarios" / "waivers" / "legacy-errors.yaml"


class BrokenOn(SchedulingEngine):
    """The new engine with a bug that bites on some codebases (a real exception path)."""

    def __init__(self, codebases: set[str]) -> None:
        super().__init__(load_profile("parity"), name="new:broken", profile="parity")
        self.codebases = codebases

    def decide(self, candidate: Candidate, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if candidate.codebase in self.codebases:
            raise RuntimeError(f"bug on {candidate.codebase}")
        return super().decide(candidate, *args, **kwargs)  # type: ignore[arg-type]


class BrokenRun(SchedulingEngine):
    def __init__(self) -> None:
        super().__init__(load_profile("parity"), name="new:down", profile="parity")

    def schedule(self, dataset: Dataset):  # type: ignore[no-untyped-def]
        raise RuntimeError("engine down")


@pytest.fixture(scope="module")
def small() -> Dataset:
    return load_snapshot(VECTORS / "small")


def _values(metrics: SchedulingMetrics) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def test_new_only_is_the_new_engines_schedule(small: Dataset) -> None:
    result = SchedulingOrchestrator(
        create_engine("parity"), get_engine("legacy:memory"), "new"
    ).schedule_candidates(small)
    assert result.mode is OrchestrationMode.NEW_ONLY
    assert result.schedule.engine == "new:parity"
    assert result.fallback_count == 0


def test_fallback_counts_and_uses_the_legacys_decisions(small: Dataset) -> None:
    victims = {c.codebase for c in small.joined_candidates[:5]}
    metrics = SchedulingMetrics()
    legacy = get_engine("legacy:memory")
    result = SchedulingOrchestrator(
        BrokenOn(victims), legacy, "fallback", metrics=metrics
    ).schedule_candidates(small)
    expected = [c.key for c in small.joined_candidates if c.codebase in victims]
    assert list(result.fallback_keys) == expected
    assert result.fallback_count == len(expected) >= 5
    assert _values(metrics)["janitor_scheduler_fallback_candidates_total"] == len(expected)
    reference = legacy.schedule(small)
    # the merged run equals the legacy's run: parity everywhere else, legacy where it failed
    assert [(q.id, q.key, q.priority) for q in result.schedule.queue] == [
        (q.id, q.key, q.priority) for q in reference.queue
    ]
    fell_back = [d for d in result.schedule.decisions if d.key in set(expected)]
    assert all(any("decided by the legacy" in r for r in d.reasons) for d in fell_back)
    assert any("fallback" in n for n in result.schedule.notes)


def test_fallback_of_the_whole_run(small: Dataset) -> None:
    result = SchedulingOrchestrator(
        BrokenRun(), get_engine("legacy:memory"), "fallback"
    ).schedule_candidates(small)
    assert result.fallback_count == len(small.joined_candidates)
    assert result.schedule.engine == "legacy:memory"


def test_shadow_returns_the_legacys_result_and_compares(small: Dataset) -> None:
    result = SchedulingOrchestrator(
        create_engine("parity"), get_engine("legacy:memory"), "shadow", seed=3
    ).schedule_candidates(small)
    assert result.schedule.engine == "legacy:memory"
    assert result.shadow_schedule is not None and result.shadow_schedule.engine == "new:parity"
    assert result.comparison is not None and result.comparison.passed
    assert result.comparison.counts.aligned == len(small.joined_candidates)
    assert result.comparison.real == 0 and not result.failures
    # the default profile is a different engine: the harness's comparator says so
    other = SchedulingOrchestrator(
        create_engine("default"), get_engine("legacy:memory"), "shadow"
    ).schedule_candidates(small)
    assert other.comparison is not None and not other.comparison.passed
    assert other.comparison.real > 0
    assert other.schedule.engine == "legacy:memory"


def test_metrics_are_exposed_on_their_own_registry(small: Dataset) -> None:
    metrics = SchedulingMetrics()
    engine = create_engine("parity")
    engine.metrics = metrics
    engine.schedule(small)
    engine.schedule(small)
    metrics.observe_outcome(
        "new:parity",
        predicted_probability=0.25,
        succeeded=True,
        estimated_duration_us=90,
        actual_duration_us=60,
    )
    values = _values(metrics)
    n = len(small.joined_candidates)
    assert values["janitor_scheduler_candidates_processed_total"] == 2 * n
    assert values["janitor_scheduler_queue_items_added_total"] == 2 * n
    assert values["janitor_scheduler_scheduling_duration_seconds_count"] == 2
    assert values["janitor_scheduler_success_probability_accuracy_sum"] == 0.75
    assert values["janitor_scheduler_duration_estimation_accuracy_sum"] == 1.5
    # not on the global registry
    from prometheus_client import REGISTRY

    assert REGISTRY.get_sample_value("janitor_scheduler_candidates_processed_total") is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_served_over_http(small: Dataset) -> None:
    metrics = SchedulingMetrics()
    port = _free_port()
    server = metrics.serve(port)
    try:
        engine = create_engine("parity")
        engine.metrics = metrics
        engine.schedule(small)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'janitor_scheduler_candidates_processed_total{engine="new:parity"} 293.0' in body
    finally:
        if isinstance(server, tuple):
            server[0].shutdown()


def test_structured_log_of_every_run(small: Dataset, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="engines.new"):
        create_engine("parity").schedule(small)
    record = next(r for r in caplog.records if r.name == "engines.new")
    assert record.candidate_count == 293  # type: ignore[attr-defined]
    assert record.duration_seconds > 0  # type: ignore[attr-defined]
    line = json.loads(JsonFormatter().format(record))
    assert line["candidate_count"] == 293 and "duration_seconds" in line


@pytest.mark.parametrize("mode", ["new", "fallback", "shadow"])
def test_run_command(mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "schedule.json"
    code = main(
        [
            "run",
            str(VECTORS / "quirks"),
            "--mode",
            mode,
            "--engine",
            "new:parity",
            "--json",
            str(out),
            *(["--waivers", str(WAIVERS), "--seed", "1"] if mode == "shadow" else []),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    data = json.loads(out.read_text())
    if mode == "shadow":
        assert "shadow: PASS: 0 real divergence(s) within the budget of 0" in text
        assert "new engine failures: whole run 0, candidates 0" in text
        assert data["engine"] == "legacy:memory"
    else:
        assert data["engine"].startswith("new:parity")
    if mode == "fallback":
        assert "fallbacks: 0" in text


def test_run_command_rejects_an_unknown_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(VECTORS / "small"), "--mode", "rust"]) == 2
