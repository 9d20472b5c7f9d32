"""The command line's promises: fast start, one line per problem, exit codes
that mean one thing each (0 fine, 1 diverged, 2 bad input, 3 crash, 130
interrupted), no password on stderr."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from harness import cli as cli_module
from harness.cli import COMMANDS, EXIT_CRASH, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
SCENARIO = str(TESTS / "data" / "compare_small.yaml")
GOOD = "support_engines:simple"
HEAVY = ("numpy", "scipy", "psycopg", "jinja2", "pyarrow", "yaml", "deepdiff", "engines")


def _python(code: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}", **(env or {})},
    )


def _janitor_shadow(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return _python(
        f"import sys; from harness.cli import main; sys.exit(main({list(args)!r}))", env=env
    )


# ---------------------------------------------------------------- start-up


@pytest.mark.parametrize(
    "argv",
    [None, ["--help"], ["--version"], ["schedul"], ["schedule", "default", "--frobnicate"]],
    ids=["import", "help", "version", "unknown-command", "bad-option"],
)
def test_start_up_imports_nothing_heavy(argv: list[str] | None) -> None:
    run = "" if argv is None else f"main({argv!r})"
    done = _python(
        "import sys\n"
        "from harness.cli import main\n"
        f"{run}\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(heavy, file=sys.stderr)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    assert done.returncode == 0, done.stderr.splitlines()[-1]


@pytest.mark.parametrize(("given", "seen"), [(None, "0"), ("1", "1")])
def test_numpy_is_asked_for_plain_pages_unless_the_user_said_otherwise(
    given: str | None, seen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)  # an in-process main sets it
    env = None if given is None else {"NUMPY_MADVISE_HUGEPAGE": given}
    done = _python(
        "import os, sys\n"
        "from harness.cli import main\n"
        "main(['--version'])\n"
        "print(os.environ.get('NUMPY_MADVISE_HUGEPAGE'), file=sys.stderr)\n",
        env=env,
    )
    assert done.stderr.strip().splitlines()[-1] == seen


def test_no_command_module_imports_anything_heavy() -> None:
    """A usage error of any command (which loads that command's module) stays fast:
    the modules import what they use inside the command."""
    done = _python(
        "import sys\n"
        "from harness.cli import COMMANDS, main\n"
        "for name in COMMANDS:\n"
        "    main([name, '--frobnicate'])\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(heavy, file=sys.stderr)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    assert done.returncode == 0, done.stderr.splitlines()[-1]


def _first_sentence(doc: str) -> str:
    """The docstring's summary as click shows it: its first paragraph up to
    the first word that ends a sentence (click deprecates its own helper)."""
    words = inspect.cleandoc(doc).split("\n\n")[0].split()
    for i, word in enumerate(words):
        if word.endswith("."):
            return " ".join(words[: i + 1])
    return " ".join(words)


def test_every_command_is_listed_with_its_own_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out.split("Commands:")[1]
    for name, entry in COMMANDS.items():
        assert f"\n  {name} " in listed
        command = cli_module.cli.get_command(click.Context(cli_module.cli), name)
        assert command is not None and command.help is not None
        assert entry.summary == _first_sentence(command.help), (
            f"COMMANDS[{name!r}] drifted from its docstring"
        )
    modules = {p.stem for p in (ROOT / "harness" / "cli" / "commands").glob("*.py")} - {"__init__"}
    assert {e.module.rsplit(".", 1)[1] for e in COMMANDS.values()} == modules


def test_run_modes_spelled_for_help_are_the_orchestrators() -> None:
    from engines.new.orchestrator import OrchestrationMode
    from harness.cli.commands.run import MODES

    assert set(MODES) == {m.value for m in OrchestrationMode}


def test_global_options_before_and_after_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["-q", "schedule", "default", "--head", "1"], ["schedule", "-q", "default"]):
        assert main([*argv, "--head", "1"]) == 0
    assert main(["gate", "check", "--help"]) == 0
    assert "--debug" in capsys.readouterr().out


# ---------------------------------------------------------------- one line, exit 2


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["schedule", "postgresql://u:sekrit@[::1/db"], "Invalid IPv6 URL"),
        (["record", "postgresql://u:sekrit@[::1/db", "/tmp/never"], "Invalid IPv6 URL"),
        (["schedule", "postgresql://u:sekrit@h/db?bogus=1"], "invalid URI query parameter"),
        (["schedule", "host=localhost password=sekrit"], "no such file"),
        (["record", "host=localhost password='se krit'", "/tmp/never"], "postgresql://"),
        (["restore", "default", "dbname=x password=sekrit"], "postgresql://"),
        (["run", "default", "--pushgateway", "http://[::1"], "--pushgateway"),
        (["run", "default", "--pushgateway", "localhost:99999"], "--pushgateway"),
        (["schedule", "default", "--engine", "os:system"], "'os:system'"),
        (["schedule", "default", "--engine", "os:getcwd"], "'os:getcwd'"),
        (["schedule", "default", "--engine", "os:sep"], "not callable"),
        (["schedule", "default", "--json", "/no/such/dir/s.json"], "does not exist"),
        (["schedule", "default", "--frobnicate"], "--frobnicate"),
        (["schedul"], "schedul"),
    ],
)
def test_bad_input_is_one_line_exit_2_without_password(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("janitor-shadow: error: ")
    assert expected in lines[0]
    assert "sekrit" not in captured.err + captured.out and "se krit" not in captured.err


# ---------------------------------------------------------------- crashes, exit 3


def _crash_file(line: str) -> Path:
    path = Path(line.split("the traceback is in ", 1)[1].split(" ", 1)[0])
    assert path.is_file()
    return path


def test_third_party_engine_crash_names_the_engine_and_exit_3(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["compare", SCENARIO, "--a", GOOD, "--b", f"{GOOD}:crash", "--no-noise"]
    assert main(args) == EXIT_CRASH
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert f"engine '{GOOD}:crash' crashed: RuntimeError: boom" in lines[0]
    assert "bug in the third-party engine" in lines[0] and "module support_engines" in lines[0]
    report = _crash_file(lines[0])
    text = report.read_text()
    assert "Traceback" in text and 'raise RuntimeError("boom")' in text
    report.unlink()


def test_own_bug_is_exit_3_with_the_traceback_in_a_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import harness.data.sources

    def broken(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("postgresql://u:sekrit@h/db went wrong")

    monkeypatch.setattr(harness.data.sources, "schedule_source", broken)
    assert main(["schedule", "default"]) == EXIT_CRASH
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "internal error: ZeroDivisionError" in err and "a bug in janitor-shadow" in err
    assert "sekrit" not in err
    report = _crash_file(err)
    assert "sekrit" not in report.read_text() and "ZeroDivisionError" in report.read_text()
    report.unlink()

    for argv, env in ((["--debug", "schedule", "default"], None), (["schedule", "default"], "1")):
        if env:
            monkeypatch.setenv("JANITOR_SHADOW_DEBUG", env)
        assert main(argv) == EXIT_CRASH
        err = capsys.readouterr().err
        assert err.startswith("Traceback") and "(traceback above)" in err.splitlines()[-1]


def test_a_crash_inside_a_factory_is_the_factorys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "default", "--engine", "support_engines:broken_factory"]) == EXIT_CRASH
    err = capsys.readouterr().err
    assert "third-party engine" in err and "module support_engines" in err
    _crash_file(err).unlink()


@pytest.mark.parametrize("raised", [KeyboardInterrupt, click.exceptions.Abort])
def test_interrupt_is_130(
    raised: type[BaseException], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import harness.data.sources

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise raised()

    monkeypatch.setattr(harness.data.sources, "schedule_source", interrupted)
    assert main(["schedule", "default"]) == 130
    assert capsys.readouterr().err.strip().endswith("interrupted")


def test_logs_are_iso_utc(capsys: pytest.CaptureFixture[str]) -> None:
    import logging
    import re

    assert main(["-v", "schedule", "default", "--head", "1"]) == 0
    logging.getLogger("janitor-shadow-test").warning("hello")
    logging.getLogger("janitor-shadow-test").warning("to postgresql://u:sekrit@h/db")
    err = capsys.readouterr().err
    assert "sekrit" not in err and "postgresql://u:***@h/db" in err
    assert re.search(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING janitor-shadow-test: hello$", err, re.M
    )


def test_stdout_closed_early_is_not_a_divergence() -> None:
    """``janitor-shadow schedule … | head -1``: click alone would exit 1 ("diverged")."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "schedule", "default", "--head", "800"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert err == b""
