"""Generate 100,000 candidates with 2,000,000 runs; time generate, record and load.

Prints seconds and peak memory per step. Peak memory is measured with
tracemalloc (Python allocations of that step alone) and, for the whole
process, ``ru_maxrss``. Each step runs in a fresh child process so that one
step's peak does not hide another's::

    python benchmarks/bench_generate.py [--candidates N] [--runs-per-candidate F]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(candidates: int, rpc: float, out: str | None, trace: bool) -> dict[str, Any]:
    from harness.data.snapshot import write_snapshot
    from scenarios.generator import GeneratorSettings, generate, write_truth

    settings = GeneratorSettings(candidates=candidates, runs_per_candidate=rpc, seed=1)
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    scenario = generate(settings)
    generate_s = time.perf_counter() - started
    generate_peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    if trace:
        tracemalloc.stop()
    result: dict[str, Any] = {
        "generate_s": generate_s,
        "generate_peak_mb": generate_peak,
        "candidates": len(scenario.dataset.candidates),
        "runs": len(scenario.dataset.runs),
    }
    if out is not None:
        started = time.perf_counter()
        write_snapshot(scenario.dataset, out)
        write_truth(scenario.truth, Path(out) / "truth.jsonl.gz")
        result["record_s"] = time.perf_counter() - started
    result["rss_mb"] = _rss_mb()
    return result


def _load(path: str, trace: bool) -> dict[str, Any]:
    from harness.data.snapshot import load_snapshot

    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    dataset = load_snapshot(path)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    return {"load_s": seconds, "load_peak_mb": peak, "runs": len(dataset.runs), "rss_mb": _rss_mb()}


def _in_child(function: Any, *args: Any) -> dict[str, Any]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result: dict[str, Any] = pool.apply(function, args)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--runs-per-candidate", type=float, default=20.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-generate-"))
    out = str(workdir / "snapshot")
    try:
        # Timings without tracemalloc (it slows allocation-heavy code severalfold) …
        gen = _in_child(_generate, args.candidates, args.runs_per_candidate, out, False)
        load = _in_child(_load, out, False)
        # … and Python-level peaks with it, in separate runs.
        gen_mem = _in_child(_generate, args.candidates, args.runs_per_candidate, None, True)
        load_mem = _in_child(_load, out, True)
        size = sum(f.stat().st_size for f in Path(out).iterdir()) / 2**20
        print(f"dataset: {gen['candidates']:,} candidates, {gen['runs']:,} runs")
        print(
            f"generate: {gen['generate_s']:.2f} s, peak traced {gen_mem['generate_peak_mb']:.0f} MiB"
        )
        print(f"record (write_snapshot + truth): {gen['record_s']:.2f} s, {size:.1f} MiB on disk")
        print(f"  process peak RSS (generate + record): {gen['rss_mb']:.0f} MiB")
        print(
            f"load (load_snapshot): {load['load_s']:.2f} s, peak traced {load_mem['load_peak_mb']:.0f} MiB"
        )
        print(f"  process peak RSS (load): {load['rss_mb']:.0f} MiB")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
