"""``janitor-shadow compare`` and ``gate``: exit codes, outputs, baselines."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import orjson
import pytest

from harness.cli import main
from harness.data.schedule_json import read_schedule
from reports.json_summary import load_schema

SCENARIO = str(Path(__file__).parent / "data" / "compare_small.yaml")
GOOD = "support_engines:simple"


def test_the_test_engines_resolve_by_module_and_factory() -> None:
    from engines.base import get_engine

    assert get_engine("support_engines:simple:prob").name == "support_engines:simple:prob"


def test_compare_same_engine_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", SCENARIO, "--a", GOOD, "--b", GOOD]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS: 0 real divergence(s)")
    assert "10 identical" in out


def test_compare_injected_bug_exits_1_and_names_the_cause(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    json_path, junit_path = tmp_path / "s.json", tmp_path / "j.xml"
    code = main(
        [
            "compare",
            SCENARIO,
            "--a",
            GOOD,
            "--b",
            f"{GOOD}:prob",
            "--json",
            str(json_path),
            "--junit",
            str(junit_path),
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL: 10 real divergence(s) exceed the budget of 0")
    assert "causes: success_probability 10" in out
    doc = orjson.loads(json_path.read_bytes())
    jsonschema.Draft202012Validator(load_schema()).validate(doc)
    assert doc["causes"] == {"success_probability": 10}
    assert doc["noise_baseline"]["runs"][0] == "rerun"  # --noise is the default
    root = ET.parse(junit_path).getroot()
    assert int(root.get("failures", "0")) > 0


def test_budget_and_waivers_turn_a_failure_into_a_pass(tmp_path: Path) -> None:
    args = ["compare", SCENARIO, "--a", GOOD, "--b", f"{GOOD}:drop", "--no-noise"]
    assert main(args) == 1
    assert main([*args, "--budget", "1"]) == 0
    waivers = tmp_path / "w.yaml"
    waivers.write_text(
        "waivers:\n  - field: presence\n    codebase: alpha\n    reason: dropped on purpose\n",
        encoding="utf-8",
    )
    assert main([*args, "--waivers", str(waivers)]) == 0


@pytest.mark.parametrize(
    "args",
    [
        ["compare", SCENARIO, "--a", GOOD],  # --b missing
        ["compare", SCENARIO, "--a", "no-such-engine", "--b", GOOD],
        ["compare", "/nonexistent.yaml", "--a", GOOD, "--b", GOOD],
        ["compare", SCENARIO, "--a", GOOD, "--b", GOOD, "--budget", "-1"],
        ["gate", SCENARIO, "--engine", GOOD, "--baseline", "/nonexistent.json"],
        ["gate", SCENARIO, "--engine", GOOD],  # --baseline missing
    ],
)
def test_bad_input_or_usage_exits_2(args: list[str]) -> None:
    assert main(args) == 2


def test_bad_tolerances_exit_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "tol.yaml"
    bad.write_text("fields:\n  offest: {relative: 0.1}\n", encoding="utf-8")
    assert main(["compare", SCENARIO, "--a", GOOD, "--b", GOOD, "--tolerances", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "'offest'" in err


def test_gate_accept_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.json"
    assert main(["gate", "accept", SCENARIO, "--engine", GOOD, "--baseline", str(baseline)]) == 0
    assert len(read_schedule(baseline).decisions) == 10
    assert "baseline" in capsys.readouterr().out
    assert main(["gate", SCENARIO, "--engine", GOOD, "--baseline", str(baseline)]) == 0
    assert main(["gate", "check", SCENARIO, "--engine", GOOD, "--baseline", str(baseline)]) == 0
    capsys.readouterr()
    # a regression against the stored baseline fails the gate and leaves the baseline alone
    before = baseline.read_bytes()
    code = main(["gate", SCENARIO, "--engine", f"{GOOD}:duration", "--baseline", str(baseline)])
    assert code == 1 and baseline.read_bytes() == before
    out = capsys.readouterr().out
    assert "FAIL" in out and "causes: duration 10" in out
    assert f"({baseline})" in out  # A is the baseline file
    # accepting the new behaviour explicitly makes it the baseline
    assert (
        main(
            [
                "gate",
                "accept",
                SCENARIO,
                "--engine",
                f"{GOOD}:duration",
                "--baseline",
                str(baseline),
            ]
        )
        == 0
    )
    assert "10 real divergence(s)" in capsys.readouterr().out
    assert (
        main(["gate", SCENARIO, "--engine", f"{GOOD}:duration", "--baseline", str(baseline)]) == 0
    )


def test_gate_rejects_a_file_that_is_not_a_schedule(tmp_path: Path) -> None:
    bogus = tmp_path / "b.json"
    bogus.write_text('{"schema": "something-else"}', encoding="utf-8")
    assert main(["gate", SCENARIO, "--engine", GOOD, "--baseline", str(bogus)]) == 2


def test_report_option_renders_or_says_why_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.html"
    assert main(["compare", SCENARIO, "--a", GOOD, "--b", GOOD, "--report", str(report)]) == 0
    out = capsys.readouterr().out
    try:
        import reports.html  # noqa: F401
    except ModuleNotFoundError:
        assert "HTML report is not available" in out
    else:
        assert report.exists() and report.stat().st_size > 0


def test_json_to_stdout_is_only_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", SCENARIO, "--a", GOOD, "--b", GOOD, "--no-noise", "--json", "-"]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert doc["verdict"] == "pass" and doc["noise_baseline"] is None


def test_help_documents_exit_codes_and_accept(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", "--help"]) == 0
    text = capsys.readouterr().out
    assert "accept" in text and "exit 0" in text
    assert main(["compare", "--help"]) == 0
    assert "--budget" in capsys.readouterr().out


def test_progress_only_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli.commands.compare import Progress

    quiet = Progress(2)  # stderr is captured, not a terminal
    with quiet.step("reading"):
        pass
    assert capsys.readouterr().err == ""
    loud = Progress(2, enabled=True)
    with loud.step("reading"), loud.step("comparing"):
        pass
    err = capsys.readouterr().err
    assert "[1/2] reading" in err and "[2/2] comparing" in err


def test_unwritable_outputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nowhere = tmp_path / "no" / "such" / "dir"
    args = ["compare", SCENARIO, "--a", GOOD, "--b", GOOD, "--no-noise"]
    assert main([*args, "--json", str(nowhere / "s.json")]) == 2
    assert main([*args, "--junit", str(nowhere / "j.xml")]) == 2
    accept = ["gate", "accept", SCENARIO, "--engine", GOOD, "--baseline", str(nowhere / "b.json")]
    assert main(accept) == 2
    assert "cannot write" in capsys.readouterr().err


def test_malformed_baseline_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "b.json"
    bogus.write_text(
        '{"schema": "janitor-shadow/schedule", "schema_version": 1, "decisions": []}',
        encoding="utf-8",
    )
    assert main(["gate", SCENARIO, "--engine", GOOD, "--baseline", str(bogus)]) == 2
    assert str(bogus) in capsys.readouterr().err
