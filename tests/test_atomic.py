"""Every output appears whole or not at all: a writer that fails, is
interrupted or is killed leaves nothing under the target's name."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.data.atomic import (
    TEMP_SUFFIX,
    atomic_directory,
    atomic_file,
    refuse_existing,
    write_atomic,
)
from harness.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


class Boom(Exception):
    pass


@pytest.mark.parametrize("raised", [Boom, KeyboardInterrupt])
def test_a_file_writer_failing_midway_leaves_nothing(tmp_path: Path, raised: type) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(raised), atomic_file(target) as out:
        out.write(b"{half of a docu")
        raise raised()
    assert list(tmp_path.iterdir()) == []


def test_a_failing_rewrite_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "baseline.json"
    write_atomic(target, "old\n")
    with pytest.raises(Boom), atomic_file(target) as out:
        out.write(b"new, but not finished")
        raise Boom
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.json"]
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"


def test_no_overwrite_refuses_and_keeps_the_file(tmp_path: Path) -> None:
    target = tmp_path / "scenario.yaml"
    write_atomic(target, "mine\n", overwrite=False)
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_atomic(target, "theirs\n", overwrite=False)
    assert target.read_text() == "mine\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scenario.yaml"]


def test_a_directory_writer_failing_midway_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "snap"
    with pytest.raises(Boom), atomic_directory(target) as staging:
        (staging / "candidate.jsonl.gz").write_bytes(b"x" * 1000)
        (staging / "sub").mkdir()
        raise Boom
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(target) as staging:
        (staging / "manifest.json").write_text("{}")
    assert [p.name for p in target.iterdir()] == ["manifest.json"]


def test_a_directory_may_replace_an_empty_one_only(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_directory(empty) as staging:
        (staging / "f").write_text("1")
    assert (empty / "f").read_text() == "1"
    ran = False
    with pytest.raises(InputError, match="refusing to overwrite"), atomic_directory(empty):
        ran = True
    assert not ran, "the existence check comes before the work"
    with pytest.raises(InputError, match="refusing"):
        refuse_existing(empty, directory=True)


def test_leftovers_of_killed_writers_are_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale_file = tmp_path / f".out.json.{dead.pid}-0000{TEMP_SUFFIX}"
    stale_dir = tmp_path / f".snap.{dead.pid}-0000{TEMP_SUFFIX}"
    alive = tmp_path / f".out.json.{os.getppid()}-0000{TEMP_SUFFIX}"
    stale_file.write_text("half")
    stale_dir.mkdir()
    (stale_dir / "x").write_text("half")
    alive.write_text("someone else is writing")
    write_atomic(tmp_path / "out.json", "whole")
    with atomic_directory(tmp_path / "snap") as staging:
        (staging / "m").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.json", "snap", alive.name])


def test_record_refuses_before_reading_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No server listens there: the refusal must come first, not a connection error."""
    existing = tmp_path / "scenario.yaml"
    existing.write_text("mine\n")
    dsn = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    assert main(["record", dsn, str(existing), "--format", "yaml"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert existing.read_text() == "mine\n"
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "f").write_text("x")
    assert main(["record", dsn, str(tmp_path / "snap")]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_report_writers_leave_no_partial_files(tmp_path: Path) -> None:
    scenario = str(ROOT / "tests" / "data" / "compare_small.yaml")
    outputs = {
        "--json": tmp_path / "summary.json",
        "--junit": tmp_path / "junit.xml",
        "--report": tmp_path / "report.html",
    }
    args = ["compare", scenario, "--a", "legacy", "--b", "new:parity", "--no-noise"]
    for flag, path in outputs.items():
        args += [flag, str(path)]
    assert main(args) in (0, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in outputs.values())


# ---------------------------------------------------------------- killed processes


@pytest.fixture(scope="module")
def medium_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Large enough that writing takes a noticeable share of a command's time."""
    from harness.data.snapshot import write_snapshot
    from scenarios.generator import GeneratorSettings, generate

    path = tmp_path_factory.mktemp("medium") / "snap"
    settings = GeneratorSettings(candidates=20_000, runs_per_candidate=5, seed=3)
    write_snapshot(generate(settings).dataset, path)
    return path


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _only_whole_or_nothing(folder: Path, target: Path, check: Any) -> None:
    for entry in folder.iterdir():
        if entry == target:
            check(target)
        else:
            assert entry.name.startswith(f".{target.name}.") and entry.name.endswith(TEMP_SUFFIX)


def _timed_run(*args: str) -> float:
    started = time.perf_counter()
    proc = _spawn(*args)
    assert proc.wait(timeout=600) == 0
    return time.perf_counter() - started


def _kills(duration: float, count: int) -> Iterator[float]:
    rng = random.Random(7)
    for _ in range(count):
        yield rng.uniform(0.2, duration)


@pytest.mark.slow
def test_schedule_json_killed_at_random_points(medium_snapshot: Path, tmp_path: Path) -> None:
    target = tmp_path / "schedule.json"
    args = ("schedule", str(medium_snapshot), "--engine", "new:parity", "--json", str(target))
    duration = _timed_run(*args)
    decisions = json.loads(target.read_bytes())["summary"]["decisions"]
    target.unlink()
    for delay in _kills(duration, 6):
        proc = _spawn(*args)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        _only_whole_or_nothing(
            tmp_path, target, lambda p: json.loads(p.read_bytes())["summary"]["decisions"]
        )
    assert _timed_run(*args) > 0
    assert [p.name for p in tmp_path.iterdir()] == ["schedule.json"], "leftovers swept"
    assert json.loads(target.read_bytes())["summary"]["decisions"] == decisions


@pytest.mark.slow
def test_interrupted_schedule_json_is_130_and_leaves_nothing(
    medium_snapshot: Path, tmp_path: Path
) -> None:
    """SIGINT (Ctrl-C) and SIGTERM while the file is being written: exit 130, no file."""
    target = tmp_path / "schedule.json"
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = _spawn("schedule", str(medium_snapshot), "--json", str(target), "--engine", "new")
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if any(p.name.endswith(TEMP_SUFFIX) for p in tmp_path.iterdir()):
                proc.send_signal(sig)
                break
            time.sleep(0.001)
        code = proc.wait(timeout=120)
        if code == 0:  # finished before the temporary file was seen
            target.unlink()
            continue
        assert code == 130
        assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.postgres
def test_record_killed_at_random_points(
    medium_snapshot: Path, janitor_databases: Any, tmp_path: Path
) -> None:
    with janitor_databases.fresh() as dsn:
        assert main(["restore", str(medium_snapshot), dsn]) == 0
        for fmt, name in (("dir", "snap"), ("yaml", "small.yaml")):
            target = tmp_path / name
            args = ["record", dsn, str(target), "--format", fmt]
            if fmt == "yaml":
                args += ["--sample-codebases", "300"]
            duration = _timed_run(*args)
            check = load_whole
            check(target)
            _remove(target)
            for delay in _kills(duration, 4):
                proc = _spawn(*args)
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
                _only_whole_or_nothing(tmp_path, target, check)
                _remove(target)
            # never an empty file that the next run refuses: the next run succeeds
            assert _timed_run(*args) > 0
            assert [p.name for p in tmp_path.iterdir()] == [name]
            check(target)
            _remove(target)


def load_whole(path: Path) -> None:
    from harness.data.snapshot import load_snapshot

    assert len(load_snapshot(path).candidates) > 0


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
