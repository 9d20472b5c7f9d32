"""``janitor-shadow backtest``: which engine forecasts better, on what really happened."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import click

from harness.cli.commands import SOURCE, output_path
from harness.errors import InputError

if TYPE_CHECKING:
    from harness.comparison.backtest_run import BacktestResult


def feed_metrics(result: BacktestResult, metrics: object) -> None:
    """Every scored forecast into the plan's two accuracy histograms, per engine."""
    from engines.new.metrics import SchedulingMetrics

    assert isinstance(metrics, SchedulingMetrics)
    rows = result.rows
    outcome = rows.outcome.tolist()
    actual = rows.actual_us.tolist()
    for engine, f in rows.forecasts.items():
        for p, y, est, act in zip(
            f.probability.tolist(), outcome, f.duration_us.tolist(), actual, strict=True
        ):
            metrics.observe_outcome(
                engine,
                predicted_probability=p,
                succeeded=y == 1.0,
                estimated_duration_us=est,
                actual_duration_us=act,
            )


def summary_lines(result: BacktestResult) -> list[str]:
    from reports.backtest_report import backtest_document, fmt, headline

    doc = backtest_document(result)
    lines = [
        f"{len(result.cuts)} cut point(s), {doc['overall']['scored']} forecasts scored "
        f"({doc['overall']['candidates']} candidates)"
    ]
    for engine in result.engines:
        s = doc["overall"]["engines"][engine]
        lines.append(
            f"  {engine:<14} Brier {fmt(s['brier']['value'])} "
            f"[{fmt(s['brier']['low'])}, {fmt(s['brier']['high'])}]  "
            f"log loss {fmt(s['log_loss']['value'])}  "
            f"duration |ln ratio| {fmt(s['duration_malr']['value'])}  "
            f"MdAE {fmt(s['duration_mdae_s']['value'])} s"
        )
    lines.extend(headline(doc))
    for cut in doc["by_cut"]:
        replays = ", ".join(
            f"{e} {fmt(r['value_per_worker_hour'])}/worker-h, top {r['top_reached']}/{r['top_wanted']}"
            + (f" in {fmt(r['top_reached_hours'])} h" if r["top_reached_hours"] is not None else "")
            for e, r in cut["replay"].items()
        )
        lines.append(f"  replay {cut['cut']}: {replays}")
    return lines


@click.command("backtest")
@click.argument("source", type=SOURCE)
@click.option(
    "--at",
    "cuts",
    multiple=True,
    required=True,
    help="A cut point (naive UTC); repeat for a series.",
)
@click.option(
    "--horizon",
    default="14d",
    show_default=True,
    help="How long after each cut to score (d/h/m/s).",
)
@click.option(
    "--engines",
    default="legacy,new",
    show_default=True,
    help="Comma-separated engines; 'truth' is the generator's truth (generated data only).",
)
@click.option(
    "--workers",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Simulated workers in the queue replay.",
)
@click.option(
    "--top",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many top candidates the replay must reach.",
)
@click.option(
    "--bootstrap",
    "resamples",
    default=1000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Paired bootstrap resamples.",
)
@click.option(
    "--confidence",
    default=0.95,
    show_default=True,
    type=click.FloatRange(0.5, 0.999),
    help="Level of the bootstrap intervals.",
)
@click.option(
    "--seed", default=0, show_default=True, help="Seed of the bootstrap and the replay's draws."
)
@click.option(
    "--jobs",
    default=min(2, os.cpu_count() or 1),
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes deciding cut points in parallel (forked; 1: in this process).",
)
@click.option(
    "--report",
    "report_path",
    callback=output_path,
    help="Write the HTML report here.",
)
@click.option(
    "--json",
    "json_path",
    callback=output_path,
    help="Write the JSON document here ('-': stdout).",
)
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(),
    help="The generator's truth (default: beside SOURCE).",
)
@click.option(
    "--metrics-file",
    callback=output_path,
    help="Write the accuracy histograms in Prometheus' text format (textfile collector).",
)
@click.option("--pushgateway", help="Push the accuracy histograms to this Prometheus Pushgateway.")
def command(
    source: str,
    cuts: tuple[str, ...],
    horizon: str,
    engines: str,
    workers: int,
    top: int,
    resamples: int,
    confidence: float,
    seed: int,
    jobs: int,
    report_path: str | None,
    json_path: str | None,
    truth_path: str | None,
    metrics_file: str | None,
    pushgateway: str | None,
) -> int:
    """Cut SOURCE at each --at time, let each engine decide, score against what followed.

    Only runs that finished before a cut are visible to the engines; each
    candidate's next run within the horizon is the outcome its forecast is
    scored against. Exit 0 whatever the scores say (a backtest informs, it
    does not gate); 2 on bad input.
    """
    from harness.cli.commands.record import parse_as_of
    from harness.comparison.backtest import BacktestSettings, open_backtest_source, parse_horizon
    from harness.comparison.backtest_run import run_backtest

    moments = []
    for text in cuts:
        try:
            moment = parse_as_of(text)
        except InputError as exc:
            raise InputError(str(exc).replace("'--as-of'", "'--at'")) from None
        assert moment is not None
        moments.append(moment)
    if len(set(moments)) != len(moments):
        raise InputError("the same cut point is given twice", field="--at")
    names = tuple(e.strip() for e in engines.split(",") if e.strip())
    settings = BacktestSettings(
        cuts=tuple(sorted(moments)),
        horizon=parse_horizon(horizon),
        engines=names,
        workers=workers,
        top=top,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
    )
    wants_columns = any(n.startswith("new") or n == "truth" for n in names)
    started = time.perf_counter()
    data = open_backtest_source(source, verdict_worker=wants_columns)
    opened = time.perf_counter() - started
    try:
        truth = None
        if "truth" in names:
            from scenarios.generator import load_truth

            if truth_path is None and data.path is None:
                raise InputError("no truth beside a database source: give --truth", field="--truth")
            truth = load_truth(truth_path or data.path)  # type: ignore[arg-type]
        result = run_backtest(data, settings, truth=truth, jobs=jobs)
        result.timings = {"open_seconds": opened, **result.timings}
    finally:
        data.close()
    quiet = json_path == "-"
    if not quiet:
        for line in summary_lines(result):
            click.echo(line)
    if json_path or report_path:
        from reports.backtest_report import (
            backtest_document,
            write_backtest_html,
            write_backtest_json,
        )

        document = backtest_document(result)
        if json_path:
            write_backtest_json(document, json_path)
        if report_path:
            write_backtest_html(document, report_path)
    if metrics_file or pushgateway:
        from engines.new.metrics import SchedulingMetrics

        metrics = SchedulingMetrics()
        feed_metrics(result, metrics)
        if metrics_file:
            from harness.data.atomic import write_atomic

            write_atomic(metrics_file, metrics.exposition())
        if pushgateway:
            metrics.push(pushgateway, job="janitor-shadow-backtest")
    return 0
