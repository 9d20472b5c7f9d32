"""Time the user's own commands, each in a fresh process, on a big live database.

    python benchmarks/bench_commands.py --start-postgres
        [--snapshot DIR] [--candidates 100000] [--runs-per-candidate 20] [--seed 1]
    python benchmarks/bench_commands.py --dsn DSN [--no-restore] --snapshot DIR

Without ``--snapshot`` the data is generated (``janitor-shadow generate``);
it is restored into the database (``janitor-shadow restore``, an EMPTY
database, or a throwaway server with ``--start-postgres``) unless
``--no-restore`` says it already is. Then each command runs as a user runs
it, ``python -m harness.cli …`` from this checkout, output files included,
and its wall time (start-up included) is printed against the issue's target:

* ``schedule DSN --engine new:parity --json F``            (≤ 10 s)
* ``schedule SNAPSHOT --engine new:parity --json F``       (≤ 5 s)
* ``compare DSN --a legacy --b new`` + HTML, JSON, JUnit   (≤ 45 s)
* ``compare SNAPSHOT --a legacy --b new`` + the same        (≤ 30 s)
* ``schedule DSN --engine legacy --json F`` (legacy:memory: the issue's
  "several times faster" check, the new engine's first command with the
  other engine, timed the same way), and ``legacy:sql`` on ``--sql-sample``
  codebases, extrapolated to every candidate;
* ``--version``                                             (≤ 0.3 s).

Each targeted command runs ``--repeat`` times (3), each run a fresh process
writing fresh output files, after the earlier runs' files are flushed to disk;
the median is set against the target, and every run's time is printed beside
it (one run of a command moves by a tenth of its time on a machine shared
with others).

It first prints a calibration: a fresh interpreter's time for a plain loop
of ten million additions, to set figures from different machines side by side.

The comparisons run with stderr on a pseudo-terminal, so their own progress
lines (reading, A, B, noise, comparing) give the phases; "outputs" is what
is left (writing the report files, start-up). The client's CPU time is
printed beside each wall time: on a busy machine it says what the command
itself cost (the server's share is not in it).
"""

from __future__ import annotations

import argparse
import os
import pty
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: Seconds, from issue 9.
TARGETS = {
    "schedule DSN new:parity --json": 10.0,
    "schedule SNAPSHOT new:parity --json": 5.0,
    "compare DSN legacy vs new (html+json+junit)": 45.0,
    "compare SNAPSHOT legacy vs new (html+json+junit)": 30.0,
    "--version": 0.3,
}
STEP = re.compile(r"\[\d+/\d+\] (.+?)…\s*([0-9.]+)s")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def run(
    label: str,
    argv: Sequence[str] | Callable[[int], Sequence[str]],
    *,
    phases: bool = False,
    repeat: int = 1,
) -> float:
    """Run one command ``repeat`` times, each in a fresh process; print and return
    the median wall time. ``argv`` may be a function of the run's number, so that
    each run writes fresh output files (replacing a 250 MB file makes ext4 flush it)."""
    results = [once(argv(i) if callable(argv) else argv, phases=phases) for i in range(repeat)]
    results.sort(key=lambda r: r.elapsed)
    median = results[len(results) // 2]
    target = TARGETS.get(label)
    verdict = (
        ""
        if target is None
        else f"  target ≤ {target:g} s: {'met' if median.elapsed <= target else 'MISSED'}"
    )
    runs = f" (median of {repeat}: {', '.join(f'{r.elapsed:.2f}' for r in results)})"
    print(
        f"{label:52s} {median.elapsed:8.2f} s (client CPU {median.cpu:6.2f} s)  "
        f"exit {median.returncode}{verdict}{runs if repeat > 1 else ''}",
        flush=True,
    )
    for result in results:
        if result.returncode not in (0, 1):
            print(result.err.decode(errors="replace")[-2000:], file=sys.stderr)
    if phases:
        steps = STEP.findall(median.err.decode(errors="replace"))
        for name, seconds in steps:
            print(f"    {name:48s} {float(seconds):8.2f} s")
        rest = median.elapsed - sum(float(s) for _, s in steps)
        print(f"    {'outputs + start-up':48s} {rest:8.2f} s")
    last = median.out.decode(errors="replace").strip().splitlines()
    if last:
        print(f"    {last[-1][:120]}")
    return median.elapsed


@dataclass
class Result:
    elapsed: float
    cpu: float
    returncode: int
    out: bytes
    err: bytes


def once(argv: Sequence[str], *, phases: bool) -> Result:
    """One run in a fresh process: wall time, the client's CPU time, its output.

    The earlier runs' output files (250 MB each) are flushed to disk first:
    their write-back would otherwise land on this run's time, as it never
    does on a user's single command.
    """
    os.sync()
    master = slave = None
    if phases:
        master, slave = pty.openpty()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=slave if phases else subprocess.PIPE
    )
    err = b""
    if phases:
        assert master is not None and slave is not None
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        err = b"".join(chunks)
    out, err2 = proc.communicate()
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Result(elapsed, cpu, proc.returncode, out, err + (err2 or b""))


#: The machine's speed at plain interpreted Python, the kind of work most of
#: these commands do: figures from two machines compare after dividing by it.
CALIBRATION = "s = 0\nfor i in range(10_000_000):\n    s += i\n"


def calibration() -> float:
    """Seconds a fresh interpreter takes for :data:`CALIBRATION` (best of three)."""
    code = f"import time\nt = time.perf_counter()\n{CALIBRATION}print(time.perf_counter() - t)"
    return min(
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
        for _ in range(3)
    )


def codebase_sample(dsn: str, size: int, seed: int) -> tuple[list[str], int, int]:
    """``size`` candidate codebases, their candidates and all candidates."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        per_codebase: dict[str, int] = dict(
            conn.execute("SELECT codebase, count(*) FROM candidate GROUP BY codebase").fetchall()
        )
    names = sorted(per_codebase)
    chosen = sorted(random.Random(seed).sample(names, min(size, len(names))))
    return chosen, sum(per_codebase[n] for n in chosen), sum(per_codebase.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, help="a snapshot directory (else generated)")
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--runs-per-candidate", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dsn", help="an EMPTY database (or restored, with --no-restore)")
    parser.add_argument("--start-postgres", action="store_true", help="a throwaway server")
    parser.add_argument("--no-restore", action="store_true")
    parser.add_argument("--sql-sample", type=int, default=300, help="codebases for legacy:sql")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each targeted command (the median counts)"
    )
    args = parser.parse_args()
    if not args.dsn and not args.start_postgres:
        parser.error("give --dsn or --start-postgres")

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-commands-")))
        snapshot = args.snapshot
        if snapshot is None:
            snapshot = tmp / "snapshot"
            started = time.perf_counter()
            subprocess.run(
                cli(
                    "generate",
                    str(snapshot),
                    "--candidates",
                    str(args.candidates),
                    "--runs-per-candidate",
                    str(args.runs_per_candidate),
                    "--seed",
                    str(args.seed),
                ),
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            print(f"(generated {snapshot} in {time.perf_counter() - started:.1f} s)")
        dsn = args.dsn
        if args.start_postgres:
            from throwaway_pg import throwaway_postgres

            dsn = stack.enter_context(throwaway_postgres("bench_commands"))
        if not args.no_restore:
            started = time.perf_counter()
            subprocess.run(
                cli("restore", str(snapshot), dsn, "--create-schema"),
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            print(f"(restored in {time.perf_counter() - started:.1f} s)")
        sample, in_sample, total = codebase_sample(dsn, args.sql_sample, args.seed)
        print(f"{total} candidates; each command in a fresh process, wall time:")
        out = tmp / "out"
        out.mkdir()

        print(f"{'machine: pure-Python loop (calibration)':52s} {calibration():8.2f} s")
        repeat = args.repeat
        run("--version", cli("--version"), repeat=repeat)
        # the server's cache warm, as on a production machine
        run("(warm-up) schedule DSN new:parity", cli("schedule", dsn, "--engine", "new:parity"))
        new_on_dsn = run(
            "schedule DSN new:parity --json",
            lambda i: cli("schedule", dsn, "--engine", "new:parity", "--json", f"{out}/a{i}.json"),
            repeat=repeat,
        )
        run(
            "schedule SNAPSHOT new:parity --json",
            lambda i: cli(
                "schedule", str(snapshot), "--engine", "new:parity", "--json", f"{out}/b{i}.json"
            ),
            repeat=repeat,
        )
        legacy_memory = run(
            "schedule DSN legacy:memory --json",
            lambda i: cli("schedule", dsn, "--engine", "legacy", "--json", f"{out}/m{i}.json"),
            repeat=repeat,
        )
        filters = [arg for name in sample for arg in ("--codebase", name)]
        sql_seconds = run(
            f"schedule DSN legacy:sql, {len(sample)} codebases",
            cli("schedule", dsn, "--engine", "legacy:sql", *filters),
        )
        print(
            f"    legacy:sql: {in_sample} candidates; extrapolated to {total}: "
            f"~{sql_seconds * total / max(1, in_sample):.0f} s (start-up included)"
        )
        outputs = ["--report", "--json", "--junit"]
        for where, source in (("DSN", dsn), ("SNAPSHOT", str(snapshot))):

            def compare(i: int, where: str = where, source: str = source) -> list[str]:
                files = [
                    arg
                    for flag, name in zip(outputs, ("r.html", "s.json", "j.xml"), strict=True)
                    for arg in (flag, str(out / f"{where}{i}-{name}"))
                ]
                return cli("compare", source, "--a", "legacy", "--b", "new", *files)

            run(
                f"compare {where} legacy vs new (html+json+junit)",
                compare,
                phases=True,
                repeat=repeat,
            )
        print(
            f"new:parity against legacy:memory, the same command on the database: "
            f"{new_on_dsn:.1f} s against {legacy_memory:.1f} s, "
            f"{legacy_memory / new_on_dsn:.1f} times faster"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
