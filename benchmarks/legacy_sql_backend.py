"""Time the live reader and the legacy's two backends on one live database.

    python benchmarks/legacy_sql_backend.py DSN [--as-of T] [--sample-codebases N]

Prints the figures (seconds, candidates/s) and checks that ``sql`` and
``memory`` produce the same queue. To benchmark a snapshot, restore it into
an empty database first (``janitor-shadow restore SNAPSHOT DSN --create-schema``).
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from engines.base import get_engine
from harness.data.janitor_db import read_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dsn")
    parser.add_argument("--as-of", type=datetime.fromisoformat)
    parser.add_argument("--sample-codebases", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    dataset = read_dataset(
        args.dsn, as_of=args.as_of, sample_codebases=args.sample_codebases, seed=args.seed
    )
    read_s = time.perf_counter() - started
    counts = dataset.counts()
    print(f"read: {read_s:.2f} s ({counts['candidate']} candidates, {counts['run']} runs)")

    results = {}
    for spec in ("legacy:memory", "legacy:sql"):
        started = time.perf_counter()
        schedule = get_engine(spec).schedule(dataset)
        elapsed = time.perf_counter() - started
        results[spec] = schedule
        rate = len(schedule.decisions) / elapsed if elapsed else float("inf")
        print(
            f"{spec}: {elapsed:.2f} s, {len(schedule.decisions)} candidates, {rate:,.0f} candidates/s"
        )
    same = results["legacy:sql"].queue == results["legacy:memory"].queue
    print(f"sql and memory queues identical: {same}")


if __name__ == "__main__":
    main()
