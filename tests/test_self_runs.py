"""The noise self-runs in a forked child measure what the same runs measure in place."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from support_engines import SimpleEngine

from engines.base import get_engine
from engines.model import Dataset, Schedule
from harness.cli import cli
from harness.comparison.noise import NoiseProfile, measure_noise, noise_runs
from harness.comparison.self_runs import SelfRuns
from harness.data.snapshot import load_snapshot
from harness.errors import EXIT_OK
from harness.forked import ChildFailed, Forked, can_fork

SCENARIO = "tests/data/compare_small.yaml"


def _require_fork() -> None:
    """The suite runs on a machine with two cores; a thread left running by
    another test would silently turn every child here into a run in place."""
    assert can_fork(), (
        f"cannot fork: {os.sched_getaffinity(0)} cores, threads {threading.enumerate()}"
    )


def _same_profile(p: NoiseProfile, q: NoiseProfile) -> None:
    assert p.runs == q.runs and p.index == q.index
    for name in p.fields:
        np.testing.assert_array_equal(p.fields[name], q.fields[name], err_msg=name)
        np.testing.assert_array_equal(p.relative[name], q.relative[name], err_msg=name)
    for flags in ("presence", "error", "structure"):
        np.testing.assert_array_equal(getattr(p, flags), getattr(q, flags), err_msg=flags)
    assert p.extra_keys == q.extra_keys and p.rank == q.rank


def test_self_runs_in_a_child_measure_the_same_noise_as_in_place() -> None:
    _require_fork()
    dataset = load_snapshot(SCENARIO)
    engine = get_engine("legacy")
    reference = engine.schedule(dataset)
    with SelfRuns(engine, dataset, seed=3, shuffles=2) as child:
        assert child.in_child
        forked = child.result()
    in_place = noise_runs(engine, dataset, seed=3, shuffles=2)
    from_child = measure_noise(reference, forked)
    here = measure_noise(reference, in_place)
    _same_profile(from_child, here)
    # not a vacuous agreement: the legacy moves priorities when its rows are shuffled
    assert float(here.fields["queue_priority"].max()) > 0
    assert [label for label, _ in forked] == [label for label, _ in in_place]
    # the columns came without the Decision objects
    assert all(side.decisions == [] and side.schedule.decisions == [] for _, side in forked)


class _Raises(SimpleEngine):
    def __init__(self, exc: BaseException) -> None:
        super().__init__(None)
        self.exc = exc

    def schedule(self, dataset: Dataset) -> Schedule:
        raise self.exc


class _Unpicklable(Exception):
    def __init__(self) -> None:
        super().__init__("holds a lock")
        self.lock = threading.Lock()


def test_an_engine_that_raises_in_the_child_raises_in_the_parent() -> None:
    _require_fork()
    dataset = load_snapshot(SCENARIO)
    with SelfRuns(_Raises(KeyError("in the child")), dataset, seed=1, shuffles=1) as runs:
        assert runs.in_child
        with pytest.raises(KeyError, match="in the child"):
            runs.result()
    unpicklable = SelfRuns(_Raises(_Unpicklable()), dataset, seed=1, shuffles=1)
    with unpicklable, pytest.raises(ChildFailed, match="_Unpicklable: holds a lock"):
        unpicklable.result()


def _a_lock() -> threading.Lock:
    return threading.Lock()


def test_an_answer_that_cannot_be_sent_back_is_the_childs_failure() -> None:
    _require_fork()
    with Forked(_a_lock, name="test") as child, pytest.raises(TypeError, match="cannot pickle"):
        child.result()


class _DiesInChild(SimpleEngine):
    def __init__(self) -> None:
        super().__init__(None)
        self.parent = os.getpid()

    def schedule(self, dataset: Dataset) -> Schedule:
        if os.getpid() != self.parent:
            os._exit(9)
        return super().schedule(dataset)


def test_a_child_that_dies_is_replaced_by_runs_in_place(caplog: pytest.LogCaptureFixture) -> None:
    _require_fork()
    dataset = load_snapshot(SCENARIO)
    engine = _DiesInChild()
    with caplog.at_level(logging.WARNING), SelfRuns(engine, dataset, seed=1, shuffles=1) as runs:
        assert runs.in_child
        got = runs.result()
    assert "ended without an answer (exit code 9)" in caplog.text
    reference = engine.schedule(dataset)
    _same_profile(
        measure_noise(reference, got),
        measure_noise(reference, noise_runs(engine, dataset, seed=1, shuffles=1)),
    )


def test_no_fork_while_another_thread_runs() -> None:
    _require_fork()
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        runs = SelfRuns(get_engine("legacy"), load_snapshot(SCENARIO), seed=1, shuffles=1)
        assert not runs.in_child
        assert [label for label, _ in runs.result()] == [
            "rerun",
            "shuffled candidate rows (seed 1)",
        ]
    finally:
        stop.set()
        thread.join()


def _untimed(value: object) -> object:
    """A JSON document without what differs between any two runs (times)."""
    if isinstance(value, dict):
        return {
            k: _untimed(v)
            for k, v in value.items()
            if not (k.endswith("seconds") or k in ("created_at", "elapsed_s"))
        }
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def test_compare_says_the_same_with_and_without_a_second_process(tmp_path) -> None:
    _require_fork()
    outputs = {}
    for flag in ("--parallel", "--no-parallel"):
        out = tmp_path / f"{flag}.json"
        result = CliRunner().invoke(
            cli,
            ["compare", SCENARIO, "--a", "legacy", "--b", "new", flag, "--json", str(out)],
        )
        assert result.exit_code == EXIT_OK, result.output
        outputs[flag] = json.loads(out.read_text())
    assert "shuffled candidate rows (seed 1)" in json.dumps(outputs["--parallel"])
    assert _untimed(outputs["--parallel"]) == _untimed(outputs["--no-parallel"])


def test_an_interrupted_compare_stops_its_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the child is still busy: exit 130, and no child left behind."""
    _require_fork()
    import harness.cli.commands.compare as compare_command
    from harness.cli import main
    from harness.comparison import self_runs

    monkeypatch.setattr(self_runs, "noise_runs", lambda *_a, **_k: time.sleep(120))
    children: list[multiprocessing.process.BaseProcess | None] = []
    started = SelfRuns.__init__

    def recorded(self: SelfRuns, *args: Any, **kwargs: Any) -> None:
        started(self, *args, **kwargs)
        children.append(None if self._child is None else self._child._process)

    monkeypatch.setattr(SelfRuns, "__init__", recorded)
    engines_run: list[str] = []
    interrupted: list[float] = []
    run_engine = compare_command.run_engine

    def interrupted_at_b(engine: Any, source: Any) -> Any:
        engines_run.append(engine.name)
        if len(engines_run) == 2:
            interrupted.append(time.monotonic())
            raise KeyboardInterrupt
        return run_engine(engine, source)

    monkeypatch.setattr(compare_command, "run_engine", interrupted_at_b)
    assert main(["compare", SCENARIO, "--a", "legacy", "--b", "new"]) == 130
    # stopped at once, not after the grace a finished child gets
    assert time.monotonic() - interrupted[0] < 3
    (child,) = children
    assert child is not None and not child.is_alive()
    assert child.exitcode == -signal.SIGTERM
