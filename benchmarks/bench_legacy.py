"""The foundation at production scale: load, legacy memory, restore, record, legacy sql.

    python benchmarks/bench_legacy.py [--snapshot DIR] [--candidates 100000]
        [--runs-per-candidate 20] [--sql-sample 400] [--dsn DSN]

Without ``--snapshot`` it generates the data first (seeded). Without
``--dsn`` it starts a throwaway PostgreSQL server (removed afterwards) and
restores the snapshot into it. ``record`` is the live reader plus writing a
snapshot directory. The legacy ``sql`` backend asks several queries per
candidate; it runs on a sample of codebases (all their candidates) and its
rate is extrapolated to the whole set — the output says so. Peak memory is
the process's maximum RSS after each step (it only grows).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throwaway_pg import throwaway_postgres

from engines.base import get_engine
from harness.data.janitor_db import read_dataset
from harness.data.restore import restore_dataset
from harness.data.snapshot import load_snapshot, write_snapshot

T = TypeVar("T")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step(label: str, fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - started
    print(f"{label:<34} {elapsed:8.2f} s   peak RSS {peak_rss_mib():7.0f} MiB", flush=True)
    return result, elapsed


@contextmanager
def scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="bench-legacy-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, help="An existing snapshot directory.")
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--runs-per-candidate", type=float, default=20.0)
    parser.add_argument("--sql-sample", type=int, default=400, help="Codebases for legacy:sql.")
    parser.add_argument("--dsn", help="An empty database to restore into (default: throwaway).")
    args = parser.parse_args()

    with scratch() as tmp:
        snapshot = args.snapshot
        if snapshot is None:
            from scenarios.generator import GeneratorSettings, generate

            settings = GeneratorSettings(
                candidates=args.candidates, runs_per_candidate=args.runs_per_candidate, seed=1
            )
            scenario, _ = step("generate", lambda: generate(settings))
            snapshot = tmp / "generated"
            step("write snapshot", lambda: write_snapshot(scenario.dataset, snapshot))
            del scenario
        dataset, _ = step("load snapshot", lambda: load_snapshot(snapshot))
        counts = dataset.counts()
        print(f"  {counts['candidate']:,} candidates, {counts['run']:,} runs")
        memory, memory_s = step("legacy:memory", lambda: get_engine("legacy").schedule(dataset))
        rate = len(memory.decisions) / memory_s
        print(f"  {len(memory.decisions):,} candidates, {rate:,.0f} candidates/s")

        server: Any = nullcontext(args.dsn) if args.dsn else throwaway_postgres()
        with server as dsn:
            step(
                "restore into PostgreSQL", lambda: restore_dataset(dataset, dsn, create_schema=True)
            )
            step(
                "record (live read + write snapshot)",
                lambda: write_snapshot(read_dataset(dsn), tmp / "recorded"),
            )
            sample, _ = step(
                f"live read, {args.sql_sample} codebases",
                lambda: read_dataset(dsn, sample_codebases=args.sql_sample, seed=1),
            )
            sql, sql_s = step(
                "legacy:sql (sample)", lambda: get_engine("legacy:sql").schedule(sample)
            )
            sql_rate = len(sql.decisions) / sql_s
            print(
                f"  {len(sql.decisions):,} candidates sampled, {sql_rate:,.0f} candidates/s; "
                f"extrapolated to {counts['candidate']:,}: {counts['candidate'] / sql_rate:,.0f} s"
            )
            # The sample's dataset holds only the sampled codebases' runs, while
            # legacy:sql sees the whole database: the per-campaign AVG fallback of
            # candidates without runs differs by design. Those with runs must agree.
            memory_sample = get_engine("legacy:memory").schedule(sample)
            with_runs = [
                (a, b)
                for a, b in zip(memory_sample.decisions, sql.decisions, strict=True)
                if a.total_previous_runs
            ]
            fields = ("offset", "success_probability", "estimated_duration_us", "error")
            agree = all(
                getattr(a, name) == getattr(b, name) for a, b in with_runs for name in fields
            )
            print(
                f"  sql and memory agree on all {len(with_runs):,} sampled candidates with runs: {agree}"
            )


if __name__ == "__main__":
    main()
