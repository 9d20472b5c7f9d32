"""Fresh-process start-up of the command line: what a user waits for before
anything happens. Target (issue 9): ``--version`` and ``--help`` well under 0.3 s.

Each figure is the median (and the minimum) of ``--repeat`` fresh
interpreters running ``janitor-shadow ARGS`` through :func:`harness.cli.main`,
with the bare interpreter's start-up printed beside them for scale::

    python benchmarks/bench_startup.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES: list[tuple[str, list[str] | None]] = [
    ("python -c pass (the floor)", None),
    ("--version", ["--version"]),
    ("--help", ["--help"]),
    ("unknown command (usage error)", ["schedul"]),
    ("schedule --frobnicate (usage error)", ["schedule", "default", "--frobnicate"]),
    ("schedule --help", ["schedule", "--help"]),
    ("compare --help", ["compare", "--help"]),
]


def _once(args: list[str] | None) -> float:
    code = "pass" if args is None else f"import sys; from harness.cli import main; main({args!r})"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    options = parser.parse_args()
    width = max(len(label) for label, _ in CASES)
    print(f"{'fresh process':<{width}}  median     min  (n={options.repeat})")
    for label, args in CASES:
        times = [_once(args) for _ in range(options.repeat)]
        print(f"{label:<{width}}  {statistics.median(times):.3f}s  {min(times):.3f}s")


if __name__ == "__main__":
    main()
