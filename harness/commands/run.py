"""``janitor-shadow run``: the new engine under one of the plan's orchestration modes.

``--mode new`` runs the new engine alone; ``fallback`` lets the legacy decide
every candidate the new engine fails on (counted); ``shadow`` runs both,
compares them and keeps the legacy's result. Metrics can be served for
scraping (``--metrics-port``) or pushed (``--pushgateway``).
"""

from __future__ import annotations

import logging
import time

import click

from engines.base import get_engine
from engines.new.metrics import SchedulingMetrics
from engines.new.orchestrator import OrchestrationMode, SchedulingOrchestrator
from harness.commands import as_of_option, source_filters
from harness.commands.record import parse_as_of
from harness.commands.schedule import format_queue_head, summary_line
from harness.errors import ShadowError
from harness.schedule_json import write_schedule
from harness.sources import open_input


@click.command("run")
@click.argument("source")
@click.option(
    "--mode",
    type=click.Choice([m.value for m in OrchestrationMode]),
    default="new",
    show_default=True,
    help="new: new engine only; fallback: legacy decides what the new engine fails on; "
    "shadow: both run, compared, the legacy's result is kept.",
)
@click.option(
    "--engine",
    "engine_spec",
    default="new:default",
    show_default=True,
    help="The new engine: new[:parity|:default|:config=PATH].",
)
@click.option(
    "--legacy",
    "legacy_spec",
    default="legacy:memory",
    show_default=True,
    help="The legacy engine for fallback and shadow modes.",
)
@source_filters
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    help="Write the returned schedule as JSON ('-': stdout).",
)
@click.option("--head", default=20, show_default=True, help="How many queue rows to print.")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve Prometheus metrics on 127.0.0.1:PORT (stays up for --linger seconds).",
)
@click.option("--linger", default=0.0, show_default=True, help="Seconds to keep serving metrics.")
@click.option("--pushgateway", help="Push the metrics to this Prometheus Pushgateway (host:port).")
@click.option("--log-json", is_flag=True, help="Log one JSON object per line on stderr.")
@as_of_option
def command(
    source: str,
    mode: str,
    engine_spec: str,
    legacy_spec: str,
    campaign: str | None,
    codebases: tuple[str, ...],
    json_path: str | None,
    head: int,
    metrics_port: int | None,
    linger: float,
    pushgateway: str | None,
    log_json: bool,
    as_of: str | None = None,
) -> int:
    """Schedule SOURCE with the new engine in MODE and print the head of the resulting queue."""
    if log_json:
        from engines.new.logs import configure_json_logging

        configure_json_logging()
    metrics = SchedulingMetrics()
    if metrics_port is not None:
        try:
            metrics.serve(metrics_port)
        except OSError as exc:
            raise ShadowError(f"--metrics-port {metrics_port}: {exc.strerror or exc}") from exc
    engine = get_engine(engine_spec)
    if hasattr(engine, "metrics"):
        engine.metrics = metrics
    legacy = get_engine(legacy_spec)
    moment = parse_as_of(as_of)
    with open_input(source, campaign=campaign, codebases=codebases or None, as_of=moment) as opened:
        # Both engines on one snapshot; the full dataset only if one of them needs it.
        engines = (engine,) if mode == "new" else (engine, legacy)
        dataset = opened.dataset_for(*engines)
        result = SchedulingOrchestrator(engine, legacy, mode, metrics=metrics).schedule_candidates(
            dataset
        )
    schedule = result.schedule
    if json_path != "-":
        click.echo(format_queue_head(schedule, head))
        click.echo(summary_line(schedule))
        for note in schedule.notes:
            click.echo(f"note: {note}")
        if result.mode is OrchestrationMode.FALLBACK:
            click.echo(f"fallbacks: {result.fallback_count}")
        if result.comparison is not None:
            c = result.comparison
            click.echo(
                f"shadow: {len(c.differing)} of {c.compared} candidates differ, queue order "
                + ("equal" if c.queue_order_equal else "differs")
            )
    if json_path:
        write_schedule(schedule, json_path)
    if pushgateway:
        try:
            metrics.push(pushgateway)
        except OSError as exc:
            raise ShadowError(f"--pushgateway {pushgateway}: {exc}") from exc
    if metrics_port is not None and linger > 0:
        time.sleep(linger)
    logging.getLogger("engines.new").debug("run command finished")
    return 0
