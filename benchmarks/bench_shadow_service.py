"""The shadow service: one cycle over 100,000 candidates, and memory over 20 cycles.

    python benchmarks/bench_shadow_service.py [--candidates 100000] [--runs-per-candidate 20]
        [--memory-candidates 10000] [--memory-cycles 20] [--dsn DSN]

Generates seeded data (the generator of ``janitor-shadow generate``),
restores it into a throwaway PostgreSQL server (or the empty database
``--dsn``) with a production queue of a quarter of the candidates, and runs
the service as a user would (``ShadowService``: snapshot read, both engines,
comparator, production queue, history append, report) for one cycle, phase
by phase. Target (issue 10): a cycle over 100,000 candidates in <= 45 s.

Memory: the service then runs ``--memory-cycles`` cycles back to back on a
second database of ``--memory-candidates`` candidates (default 10,000, so
the 20 cycles take minutes, not a quarter of an hour; ``--memory-candidates
100000`` measures the full size) and prints the resident memory recorded
after cycle 2 and after the last. Target: the last within 10% of cycle 2's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
from throwaway_pg import throwaway_postgres

from harness.data.restore import restore_dataset
from harness.service.config import ServiceConfig, validate
from harness.service.history import read_history
from harness.service.runner import ShadowService
from scenarios.generator import GeneratorSettings, generate

CYCLE_TARGET_S = 45.0
MEMORY_TARGET = 0.10


def _database(admin_dsn: str, name: str) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_dsn.rsplit("/", 1)[0] + f"/{name}"


def _fill(dsn: str, candidates: int, runs_per_candidate: float) -> None:
    started = time.perf_counter()
    scenario = generate(
        GeneratorSettings(candidates=candidates, runs_per_candidate=runs_per_candidate, seed=1)
    )
    dataset = scenario.dataset
    del scenario
    print(
        f"  generated {len(dataset.candidates):,} candidates, {len(dataset.runs):,} runs "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    started = time.perf_counter()
    restore_dataset(dataset, dsn, create_schema=True)
    del dataset
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO queue (bucket, codebase, suite, command, priority) "
            "SELECT 'default', codebase, suite, command, id * 100 FROM candidate "
            "WHERE id % 4 = 0 AND change_set IS NULL"
        )
        conn.execute("ANALYZE")
    print(f"  restored (and queued a quarter) in {time.perf_counter() - started:.1f} s", flush=True)


def _service(dsn: str, state: Path, cycles: int) -> None:
    config = validate(ServiceConfig(dsn=dsn, state_dir=state, interval_s=0.001, max_cycles=cycles))
    ShadowService(config).run()


def _run(dsn: str, state: Path, cycles: int) -> list[dict[str, Any]]:
    """The service in a fresh interpreter, as a user starts it (this process
    holds the generator's data; its memory says nothing about the service's)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        pool.submit(_service, dsn, state, cycles).result()
    return list(read_history(state / "history.jsonl").records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--runs-per-candidate", type=float, default=20.0)
    parser.add_argument("--memory-candidates", type=int, default=10_000)
    parser.add_argument("--memory-cycles", type=int, default=20)
    parser.add_argument("--dsn", help="A server's admin DSN (…/postgres); default: throwaway.")
    args = parser.parse_args()

    from contextlib import nullcontext

    server: Any = nullcontext(args.dsn) if args.dsn else throwaway_postgres("postgres_bench")
    with server as admin, tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        print(f"cycle over {args.candidates:,} candidates", flush=True)
        big = _database(admin, "shadow_big")
        _fill(big, args.candidates, args.runs_per_candidate)
        (record,) = _run(big, Path(tmp) / "big", 1)
        if record["status"] != "ok":
            raise SystemExit(f"the cycle failed: {record.get('phase')}: {record.get('error')}")
        d = record["durations"]
        for name in ("read_s", "engines_s", "legacy_s", "new_s", "compare_s", "production_s"):
            print(f"  {name[:-2]:<11} {d.get(name, 0.0):7.2f} s")
        ok = "meets" if d["total"] <= CYCLE_TARGET_S else "MISSES"
        print(f"  cycle total {d['total']:7.2f} s ({ok} the {CYCLE_TARGET_S:.0f} s target)")
        print(
            f"  service CPU {d['cpu']:7.2f} s; load average now "
            + " ".join(f"{x:.1f}" for x in os.getloadavg())
            + f" on {os.cpu_count()} CPUs (wall times grow with it)"
        )
        print(
            f"  {record['candidates']:,} candidates, {record['divergences']['real']:,} real "
            f"divergences, tau {record['rank']['kendall_tau_b']:.4f}, "
            f"RSS after the cycle {record['rss_bytes'] / 2**20:,.0f} MiB"
        )

        print(
            f"memory over {args.memory_cycles} cycles of {args.memory_candidates:,} candidates",
            flush=True,
        )
        small = (
            big if args.memory_candidates == args.candidates else _database(admin, "shadow_small")
        )
        if small != big:
            _fill(small, args.memory_candidates, args.runs_per_candidate)
        started = time.perf_counter()
        records = _run(small, Path(tmp) / "small", args.memory_cycles)
        elapsed = time.perf_counter() - started
        rss = [r["rss_bytes"] for r in records]
        second, last = rss[1], rss[-1]
        growth = (last - second) / second
        ok = "meets" if growth <= MEMORY_TARGET else "MISSES"
        print(f"  {len(records)} cycles in {elapsed:.1f} s; RSS by cycle (MiB):")
        print("  " + " ".join(f"{b / 2**20:.0f}" for b in rss))
        print(
            f"  after cycle 2: {second / 2**20:,.1f} MiB, after cycle {len(rss)}: "
            f"{last / 2**20:,.1f} MiB, growth {growth:+.1%} ({ok} the 10% target)"
        )


if __name__ == "__main__":
    main()
