"""Compare two 100,000-candidate schedules and render every output; print the figures.

Target: compare + JSON + JUnit (+ HTML when ``reports.html`` exists) in ≤ 5 s
on 2 cores, report ≤ 5 MB.

With ``--snapshot DIR`` it times instead what ``janitor-shadow compare DIR
--a legacy --b new --report … --json … --junit …`` does, phase by phase
(reading, both engines, the noise baseline and the order run, the comparison,
the three outputs). Target: ≤ 30 s of CPU at 100,000 candidates. The schedules are synthetic (no engine needed): B
differs from A the way a new engine would — probabilities smoothed for one
campaign, durations re-estimated for another, a few candidates missing, extra
or failing — so every code path (attribution, ranking, lists) does real work.

    python benchmarks/bench_compare.py [--candidates N] [--out DIR]
    python benchmarks/bench_compare.py --snapshot DIR [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib
import math
import random
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engines.model import Decision, ErrorInfo, QueueItem, Schedule, sorted_queue
from harness.comparison.compare import compare_schedules
from reports.json_summary import write_json_summary
from reports.junit import write_junit

CAMPAIGNS = ("lintian-fixes", "fresh-releases", "fresh-snapshots", "multiarch-fixes", "debianize")


def _cost(duration_us: int) -> float:
    return 20_000.0 + duration_us / 1000.0 + (duration_us % 1_000_000) / 1000.0


def _decision(rng: random.Random, i: int) -> Decision:
    campaign = CAMPAIGNS[i % len(CAMPAIGNS)]
    duration = rng.randrange(5_000_000, 3_600_000_000)
    probability = rng.uniform(0.01, 1.0)
    ncv = rng.random()
    value = float(rng.randrange(1, 500))
    runs = rng.randrange(0, 20)
    cv = value + 100 if runs == 0 else value
    ncv_eff = max(0.1, ncv)
    cost = _cost(duration)
    offset = cost / (ncv_eff * probability * cv)
    return Decision(
        codebase=f"codebase-{i // len(CAMPAIGNS)}",
        campaign=campaign,
        change_set=None,
        command=f"{campaign} --run",
        candidate_value=int(value),
        value=value,
        normalized_codebase_value=ncv,
        success_probability=probability,
        estimated_duration_us=duration,
        total_previous_runs=runs,
        offset=offset,
        bucket="default",
        factors={
            "cost": cost,
            "normalized_codebase_value_effective": ncv_eff,
            "candidate_value_effective": cv,
            "success_probability": probability,
        },
        reasons=(f"value {value:g}", f"probability {probability:.4f}", f"duration {duration}us"),
    )


def _with(d: Decision, **changes: float) -> Decision:
    probability = changes.get("success_probability", d.success_probability or 0.0)
    duration = int(changes.get("estimated_duration_us", d.estimated_duration_us or 0))
    factors = dict(d.factors)
    factors["success_probability"] = probability
    factors["cost"] = _cost(duration)
    worth = (
        factors["normalized_codebase_value_effective"]
        * probability
        * factors["candidate_value_effective"]
    )
    return replace(
        d,
        success_probability=probability,
        estimated_duration_us=duration,
        offset=factors["cost"] / worth,
        factors=factors,
    )


def _schedule(name: str, decisions: list[Decision]) -> Schedule:
    queue: list[QueueItem] = []
    for d in decisions:
        if d.error is None and d.offset is not None:
            queue.append(
                QueueItem(
                    id=len(queue) + 1,
                    codebase=d.codebase,
                    suite=d.campaign,
                    command=d.command,
                    priority=int(math.log2(d.offset) * 100),
                    estimated_duration_us=d.estimated_duration_us,
                )
            )
    return Schedule(
        engine=name,
        profile=None,
        settings={},
        as_of=datetime(2026, 1, 1),
        decisions=decisions,
        queue=sorted_queue(queue),
    )


def build(n: int, seed: int = 7) -> tuple[Schedule, Schedule]:
    rng = random.Random(seed)
    a = [_decision(rng, i) for i in range(n)]
    b = [replace(d) for d in a]  # distinct objects, as a second engine would return
    for i, d in enumerate(a):
        if d.campaign == "lintian-fixes" and i % 3 == 0:
            b[i] = _with(d, success_probability=min(1.0, (d.success_probability or 0) * 1.3))
        elif d.campaign == "fresh-releases" and i % 4 == 0:
            b[i] = _with(d, estimated_duration_us=(d.estimated_duration_us or 0) * 2)
        elif i % 997 == 0:
            b[i] = replace(d, error=ErrorInfo("builtins.KeyError", "'policy'"), offset=None)
    del b[5::5000]
    b.extend(_decision(rng, n + i) for i in range(10))
    return _schedule("synthetic-a", a), _schedule("synthetic-b", b)


def from_snapshot(snapshot: str, out: Path) -> int:
    """The compare command's phases on a snapshot, wall and CPU seconds each."""
    from engines.base import get_engine
    from harness.comparison.noise import measure_noise, noise_runs, order_run
    from harness.comparison.tolerances import default_settings
    from harness.data.sources import open_source
    from reports.html import render_html

    rows: list[tuple[str, float, float]] = []

    def timed(label: str, step: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        result = step()
        rows.append((label, time.perf_counter() - wall, time.process_time() - cpu))
        return result

    settings = default_settings()
    legacy, new = get_engine("legacy"), get_engine("new")
    dataset = timed("read snapshot", lambda: open_source(snapshot))
    a = timed("engine A (legacy)", lambda: legacy.schedule(dataset))
    b = timed("engine B (new)", lambda: new.schedule(dataset))
    runs = timed(
        "noise self-runs",
        lambda: noise_runs(legacy, dataset, seed=1, shuffles=settings.noise_shuffles),
    )
    order = timed("order run", lambda: order_run(legacy, dataset, b))
    profile = timed("measure noise", lambda: measure_noise(a, runs, order=order))
    comparison = timed("compare", lambda: compare_schedules(a, b, noise=profile))
    timed("HTML", lambda: render_html(comparison, out / "report.html"))
    timed("JSON", lambda: write_json_summary(comparison, out / "summary.json"))
    timed("JUnit", lambda: write_junit(comparison, out / "junit.xml"))
    print(f"{len(a.decisions):,} decisions; verdict {comparison.verdict}: {comparison.real} real")
    for label, wall, cpu in rows:
        print(f"  {label:20s} wall {wall:6.2f}s  CPU {cpu:6.2f}s")
    total_cpu = sum(cpu for _, _, cpu in rows)
    compare_cpu = sum(
        cpu for label, _, cpu in rows if label in ("compare", "HTML", "JSON", "JUnit")
    )
    print(
        f"  {'total':20s} wall {sum(w for _, w, _ in rows):6.2f}s  CPU {total_cpu:6.2f}s (target ≤ 30 s)"
    )
    print(f"  compare + outputs CPU {compare_cpu:.2f}s")
    for path in sorted(out.iterdir()):
        print(f"  {path.name:14s} {path.stat().st_size / 1e6:6.2f} MB")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--snapshot", default=None, help="time the compare command on DIR")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-compare-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.snapshot:
        return from_snapshot(args.snapshot, out)

    started = time.perf_counter()
    a, b = build(args.candidates)
    print(f"built 2 × {args.candidates} decisions in {time.perf_counter() - started:.2f}s")

    figures: dict[str, float] = {}
    cpu_started = time.process_time()
    t = time.perf_counter()
    comparison = compare_schedules(a, b)
    figures["compare"] = time.perf_counter() - t
    t = time.perf_counter()
    write_json_summary(comparison, out / "summary.json")
    figures["json"] = time.perf_counter() - t
    t = time.perf_counter()
    write_junit(comparison, out / "junit.xml")
    figures["junit"] = time.perf_counter() - t
    try:
        html = importlib.import_module("reports.html")
    except ModuleNotFoundError:
        html = None
        print("reports.html not available: HTML not timed")
    if html is not None:
        t = time.perf_counter()
        try:
            html.render_html(comparison, out / "report.html")
        except Exception as exc:  # the HTML renderer is another module's business
            print(f"reports.html failed, HTML not timed: {type(exc).__name__}: {exc}")
        else:
            figures["html"] = time.perf_counter() - t

    total = sum(figures.values())
    cpu = time.process_time() - cpu_started
    print(
        f"verdict {comparison.verdict}: {comparison.real} real, {comparison.noise} noise, "
        f"{comparison.waived} waived; {comparison.candidates_total} divergent candidates"
    )
    for name, seconds in figures.items():
        print(f"  {name:8s} {seconds:6.2f}s")
    print(
        f"  {'total':8s} {total:6.2f}s (target ≤ 5 s); CPU {cpu:.2f}s (wall suffers on a busy machine)"
    )
    for path in sorted(out.iterdir()):
        print(f"  {path.name:14s} {path.stat().st_size / 1e6:6.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
