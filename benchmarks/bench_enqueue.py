"""Enqueue 100,000 decisions into a fresh Redis and a fresh queue table; print the figures.

Targets (issue 10, on 2 cores): Redis ≤ 5 s, queue table ≤ 15 s, for the
whole enqueue: the schedule's entries, the plan (what is there already) and
the batched write. A second run of the same schedule (nothing changes) is
timed too. The schedule is synthetic: 100,000 decisions with the legacy's
queue arithmetic (priorities relative to the queue's minimum, truncated,
with ties), over 12 campaigns and 10,000 codebases, a few in other buckets.
The servers are throwaway ones started here (Redis without persistence;
PostgreSQL with the Janitor's schema, fsync off). Besides the wall time it
prints the CPU time of this process and of the server (the Redis process,
the PostgreSQL backend), since on a shared 2-core machine the wall time
mostly measures the neighbours.

    python benchmarks/bench_enqueue.py [--decisions N] [--batch-size N] [--only redis|table]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from engines.model import BUCKETS, Decision, Schedule
from engines.queue_sim import QueueSimulator
from harness.enqueue import DEFAULT_BATCH_SIZE, items_from_schedule, open_target
from harness.enqueue.table import QueueTable

CAMPAIGNS = tuple(f"campaign-{n}" for n in range(12))


def synthetic_schedule(decisions: int, codebases: int, seed: int = 0) -> Schedule:
    rng = random.Random(seed)
    queue = QueueSimulator()
    made: list[Decision] = []
    for n in range(decisions):
        codebase = f"pkg-{n % codebases}"
        campaign = CAMPAIGNS[(n // codebases) % len(CAMPAIGNS)]
        bucket = rng.choice(BUCKETS) if rng.random() < 0.02 else "default"
        offset = rng.lognormvariate(10, 1.5)
        duration = rng.randrange(10_000_000, 3_600_000_000)
        made.append(
            Decision(
                codebase=codebase,
                campaign=campaign,
                change_set=None,
                context=f"ctx {n}",
                command=f"run-{campaign}",
                estimated_duration_us=duration,
                offset=offset,
                bucket=bucket,
            )
        )
        queue.add(
            codebase=codebase,
            campaign=campaign,
            command=f"run-{campaign}",
            offset=offset,
            bucket=bucket,
            context=f"ctx {n}",
            estimated_duration_us=duration,
            requester="scheduler",
        )
    return Schedule(
        engine="synthetic",
        profile=None,
        settings={},
        as_of=datetime(2026, 1, 1),
        decisions=made,
        queue=queue.rows(),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_cpu(pid: int | None) -> float:
    """CPU seconds a server process has used (Linux /proc; 0 elsewhere)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def enqueue_twice(url: str, schedule: Schedule, batch_size: int, server: int | None) -> list[str]:
    """Enqueue, then enqueue again; ``server`` is the pid whose CPU is counted too."""
    lines = []
    with open_target(url, batch_size=batch_size) as target:
        if server is None and isinstance(target, QueueTable):
            server = target.backend_pid
        for label in ("fresh", "again"):
            started, cpu = time.perf_counter(), time.process_time()
            served = server_cpu(server)
            items = items_from_schedule(schedule)
            planned = time.perf_counter()
            plan = target.plan(items)
            applied = time.perf_counter()
            result = target.apply(plan)
            done = time.perf_counter()
            cpu = time.process_time() - cpu
            served = server_cpu(server) - served
            c = result.counts
            lines.append(
                f"  {label:<5} {done - started:6.2f} s  (entries {planned - started:.2f}, "
                f"plan {applied - planned:.2f}, write {done - applied:.2f}; {result.batches} "
                f"batches; CPU: this process {cpu:.2f} s, the server {served:.2f} s)  added {c.added}, moved {c.moved}, unchanged {c.unchanged}, "
                f"kept {c.kept}"
            )
        entries = len(target.entries())
    lines.append(f"  queue holds {entries} entries")
    return lines


def bench_redis(schedule: Schedule, batch_size: int) -> list[str]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server not found: install the Debian package redis-server")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        proc = subprocess.Popen(
            [
                server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                directory,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            import redis

            client = redis.Redis(port=port)
            for _ in range(200):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            return enqueue_twice(f"redis://127.0.0.1:{port}/0", schedule, batch_size, proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)


def bench_table(schedule: Schedule, batch_size: int, codebases: int) -> list[str]:
    import psycopg
    from throwaway_pg import throwaway_postgres

    from harness.data.pgschema import create_janitor_schema

    with throwaway_postgres("enqueue") as dsn:
        with psycopg.connect(dsn) as conn:
            create_janitor_schema(conn, with_debian_versions=False)
            with conn.cursor().copy("COPY codebase (name) FROM STDIN") as copy:
                for n in range(codebases):
                    copy.write_row((f"pkg-{n}",))
        return enqueue_twice(dsn, schedule, batch_size, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--codebases", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--only", choices=("redis", "table"))
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    started = time.perf_counter()
    schedule = synthetic_schedule(args.decisions, args.codebases)
    print(
        f"schedule: {len(schedule.decisions)} decisions, {len(schedule.queue)} queue entries "
        f"(built in {time.perf_counter() - started:.1f} s, not counted)"
    )
    if args.only in (None, "redis"):
        print(f"Redis (target <= 5 s), batch size {args.batch_size}:")
        print("\n".join(bench_redis(schedule, args.batch_size)))
    if args.only in (None, "table"):
        print(f"queue table (target <= 15 s), batch size {args.batch_size}:")
        print("\n".join(bench_table(schedule, args.batch_size, args.codebases)))


if __name__ == "__main__":
    main()
