"""Writing the schedule JSON of a large snapshot, and the whole command.

Two figures: the serialization alone, in one process, by the readable
reference (``schedule_to_json`` + the standard library's ``json``, what
``--json`` did before) and by the writer the command uses (orjson); then
``janitor-shadow schedule SNAPSHOT --engine ENGINE --json F`` in a fresh
process, with and without ``--json``. Target (issue 9): the command on
100,000 candidates from a snapshot ≤ 5 s with the file::

    janitor-shadow generate /tmp/big --candidates 100000 --runs-per-candidate 20 --seed 1
    python benchmarks/bench_schedule_json.py /tmp/big [--engine new:parity]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fresh(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of ``janitor-shadow ARGS`` in a new process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot")
    parser.add_argument("--engine", default="new:parity")
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from engines.base import get_engine
    from harness.data.schedule_json import schedule_bytes, schedule_to_json, write_schedule
    from harness.data.sources import schedule_source

    schedule = schedule_source(get_engine(options.engine), options.snapshot)
    print(f"{len(schedule.decisions)} decisions, {len(schedule.queue)} queue rows")
    with tempfile.TemporaryDirectory(dir=Path(options.snapshot).parent) as tmp:
        out = Path(tmp) / "schedule.json"
        started = time.process_time()
        text = json.dumps(schedule_to_json(schedule), indent=1, allow_nan=False) + "\n"
        out.write_text(text, encoding="utf-8")
        print(f"serialize + write, reference (json):  {time.process_time() - started:.2f}s CPU")
        del text
        started = time.process_time()
        data = schedule_bytes(schedule)
        middle = time.process_time()
        write_schedule(schedule, out)
        print(
            f"serialize, orjson writer:              {middle - started:.2f}s CPU "
            f"({len(data) / 1e6:.0f} MB)"
        )
        print(f"write_schedule (orjson + atomic file): {time.process_time() - middle:.2f}s CPU")
        del data, schedule
        base = ["schedule", options.snapshot, "--engine", options.engine, "--head", "1"]
        wall, cpu = _fresh(base)
        print(f"fresh process, schedule:               {wall:.2f}s wall, {cpu:.2f}s CPU")
        wall, cpu = _fresh([*base, "--json", str(out)])
        print(f"fresh process, schedule --json F:      {wall:.2f}s wall, {cpu:.2f}s CPU")


if __name__ == "__main__":
    main()
