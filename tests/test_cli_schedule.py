"""``janitor-shadow schedule`` as a user runs it, and the CLI's conventions."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from paths import VECTORS

from harness.cli import EXIT_USAGE, cli, main

ROOT = Path(__file__).resolve().parents[1]
SMALL = VECTORS / "small"
SCHEMA = json.loads((ROOT / "harness" / "data" / "schedule.schema.json").read_text())


def test_schedule_prints_queue_head_and_writes_valid_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "schedule.json"
    assert (
        main(["schedule", str(SMALL), "--engine", "legacy", "--json", str(out), "--head", "5"]) == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:4] == ["#", "bucket", "priority", "codebase"]
    assert len(printed) == 2 + 5 + 1  # header, rule, five rows, summary
    assert printed[-1].startswith("legacy:memory: 293 candidates, 0 errors, 293 queue rows")
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["queue"][0]["codebase"] == printed[2].split()[3]
    assert [q["position"] for q in doc["queue"]] == list(range(293))
    # each printed row carries its own decision's offset and probability
    decided = {(d["codebase"], d["campaign"]): d for d in doc["decisions"]}
    for row, item in zip(printed[2:7], doc["queue"][:5], strict=True):
        d = decided[(item["codebase"], item["campaign"])]
        assert row.split()[5:7] == [f"{d['offset']:.1f}", f"{d['success_probability']:.4f}"]


def test_schedule_json_to_stdout_is_only_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", str(SMALL), "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"] == {"decisions": 293, "errors": 0, "queue_rows": 293}


def test_schedule_round_trips_through_json(tmp_path: Path) -> None:
    from engines.base import get_engine
    from harness.data.schedule_json import read_schedule, write_schedule
    from harness.data.snapshot import load_snapshot

    schedule = get_engine("legacy").schedule(load_snapshot(SMALL))
    write_schedule(schedule, tmp_path / "s.json")
    again = read_schedule(tmp_path / "s.json")
    assert again.decisions == schedule.decisions
    assert again.queue == schedule.queue


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["schedule", "/no/such/snapshot"], "no such file, directory or bundled scenario"),
        (["schedule", str(SMALL), "--engine", "nosuch"], "unknown engine 'nosuch'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err


def test_unknown_option_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", str(SMALL), "--frobnicate"]) == EXIT_USAGE
    assert "No such option" in capsys.readouterr().err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    for name, command in cli.commands.items():
        assert command.help, f"{name} has no help text"
        assert main([name, "--help"]) == 0
        assert "Usage:" in capsys.readouterr().out
        for param in command.params:
            if param.param_type_name == "option":
                assert getattr(param, "help", None), f"{name} {param.opts} has no help"
