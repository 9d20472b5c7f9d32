"""Benchmark (and check) the new engine's live-database path on an existing database.

    python benchmarks/bench_live_aggregates.py DSN [--profile parity] [--repeat 3]
        [--snapshot /tmp/big] [--save FILE] [--against FILE] [--legacy]

Runs :func:`engines.new.live.schedule_from_database` ``--repeat`` times and
prints the phases of each run (reading the scheduling rows, the aggregate
queries, deciding). ``--save`` pickles the decisions and queue of the last
run, ``--against`` compares them with such a file (a change to the SQL must
not change a single decision); ``--legacy`` compares with ``legacy:memory``
on the snapshot (parity). ``as_of`` is the snapshot's, so runs are
comparable.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engines.base import get_engine
from engines.model import Schedule
from engines.new import aggregates_sql, create_engine
from engines.new import live as live_module
from harness.data.janitor_db import JanitorSession
from harness.data.snapshot import load_snapshot


def _backend_cpu(conn: Any) -> float:
    """CPU seconds used so far by ``conn``'s server process (same machine only)."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    fields = Path(f"/proc/{row[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _detail(spent: dict[str, float], started: list[float]) -> None:
    """Time the aggregate queries on their threads (wall from the start, server CPU)."""
    for name in ("groups", "others"):
        original = getattr(aggregates_sql._Plan, name)

        def timed(self: Any, c: Any, _original: Any = original, _name: str = name) -> Any:
            cpu = _backend_cpu(c)
            try:
                return _original(self, c)
            finally:
                spent[f"{_name} done at"] = time.perf_counter() - started[0]
                spent[f"{_name} server cpu"] = _backend_cpu(c) - cpu

        setattr(aggregates_sql._Plan, name, timed)


def _timed_run(
    engine: Any, dsn: str, as_of: Any, detail: bool = False
) -> tuple[Schedule, dict[str, float]]:
    """One live run, with the time spent reading the scheduling rows split out."""
    spent: dict[str, float] = {}
    started_at = [time.perf_counter()]
    saved = {name: getattr(aggregates_sql._Plan, name) for name in ("groups", "others")}
    if detail:
        _detail(spent, started_at)
    original = JanitorSession.rows

    def timed_rows(self: JanitorSession) -> Any:
        started = time.perf_counter()
        try:
            return original(self)
        finally:
            spent["rows"] = time.perf_counter() - started

    JanitorSession.rows = timed_rows  # type: ignore[method-assign]
    cpu = time.process_time()
    try:
        started = started_at[0] = time.perf_counter()
        schedule = live_module.schedule_from_database(engine, dsn, as_of=as_of)
        spent["total"] = time.perf_counter() - started
    finally:
        JanitorSession.rows = original  # type: ignore[method-assign]
        for name, function in saved.items():
            setattr(aggregates_sql._Plan, name, function)
    spent["python cpu"] = time.process_time() - cpu
    spent["aggregate"] = schedule.timings["aggregate_seconds"]
    spent["decide"] = schedule.timings["decide_seconds"]
    return schedule, spent


def _differences(a: Schedule, b: Schedule, limit: int = 5) -> list[str]:
    out: list[str] = []
    if len(a.decisions) != len(b.decisions):
        out.append(f"{len(a.decisions)} vs {len(b.decisions)} decisions")
    for da, db in zip(a.decisions, b.decisions, strict=False):
        if da != db:
            out.append(f"{da.codebase}/{da.campaign}: {da} != {db}")
            if len(out) >= limit:
                break
    if a.queue != b.queue:
        out.append("queues differ")
    return out


def _parity(live: Schedule, legacy: Schedule) -> int:
    """Candidates whose offset, probability, duration or bucket differ from the legacy's."""
    theirs = legacy.decision_by_key
    differ = 0
    for key, d in live.decision_by_key.items():
        other = theirs.get(key)
        if other is None or (
            d.offset,
            d.success_probability,
            d.estimated_duration_us,
            d.bucket,
            d.error is None,
        ) != (
            other.offset,
            other.success_probability,
            other.estimated_duration_us,
            other.bucket,
            other.error is None,
        ):
            differ += 1
    differ += len(set(theirs) - set(live.decision_by_key))
    if [(q.codebase, q.suite, q.priority, q.bucket) for q in live.queue] != [
        (q.codebase, q.suite, q.priority, q.bucket) for q in legacy.queue
    ]:
        print("queue differs from the legacy's")
        differ += 1
    return differ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dsn")
    parser.add_argument("--profile", default="parity")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--snapshot", default="/tmp/big")
    parser.add_argument("--save", type=Path)
    parser.add_argument("--against", type=Path)
    parser.add_argument("--legacy", action="store_true")
    parser.add_argument(
        "--detail", action="store_true", help="time each aggregate query (wall, server CPU)"
    )
    args = parser.parse_args()

    as_of = load_snapshot(args.snapshot, runs=False).as_of
    engine = create_engine(args.profile)
    schedule: Schedule | None = None
    for i in range(args.repeat):
        schedule, spent = _timed_run(engine, args.dsn, as_of, args.detail)
        phases = "  ".join(f"{k} {v:6.2f}s" for k, v in spent.items())
        print(
            f"run {i + 1}: {phases}  (aggregate without rows {spent['aggregate'] - spent['rows']:.2f}s)"
        )
    assert schedule is not None
    status = 0
    if args.save:
        args.save.write_bytes(pickle.dumps((schedule.decisions, schedule.queue)))
    if args.against:
        decisions, queue = pickle.loads(args.against.read_bytes())
        saved = Schedule(
            engine="saved", profile=None, settings={}, as_of=as_of, decisions=decisions, queue=queue
        )
        diff = _differences(saved, schedule)
        print("identical to the saved run" if not diff else "\n".join(["DIFFERENT:", *diff]))
        status |= bool(diff)
    if args.legacy:
        legacy = get_engine("legacy:memory").schedule(load_snapshot(args.snapshot))
        differ = _parity(schedule, legacy)
        print(f"parity with legacy:memory: {differ} differ")
        status |= bool(differ)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
