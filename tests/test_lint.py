"""The test command also keeps the code clean: ruff and mypy run as tests."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "command",
    [
        (sys.executable, "-m", "ruff", "check", "."),
        (sys.executable, "-m", "ruff", "format", "--check", "."),
        (sys.executable, "-m", "mypy"),
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_code_is_clean(command: tuple[str, ...]) -> None:
    # The interpreter's own tools, so a virtual environment works without being activated.
    if importlib.util.find_spec(command[2]) is None:
        pytest.fail(f"{command[2]} is not installed: pip install -e '.[test]'")
    result = _run(*command)
    assert result.returncode == 0, result.stdout + result.stderr
