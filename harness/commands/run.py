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

from harness.commands import SOURCE, output_path, source_filters
from harness.errors import ShadowError

#: The orchestrator's modes (engines.new.orchestrator.OrchestrationMode's values;
#: a test keeps them equal), spelled here so that --help imports no engine.
MODES = ("new", "fallback", "shadow")


def _gateway(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A Pushgateway address that cannot be a URL is refused before any work."""
    if value is None:
        return None
    from urllib.parse import urlsplit

    url = value if value.startswith(("http://", "https://")) else f"http://{value}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a host:port or URL ({exc})") from None
    if not parts.hostname:
        raise click.BadParameter(f"{value!r} names no host")
    return value


@click.command("run")
@click.argument("source", type=SOURCE)
@click.option(
    "--mode",
    type=click.Choice(MODES),
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
    callback=output_path,
    help="Write the returned schedule as JSON ('-': stdout).",
)
@click.option("--head", default=20, show_default=True, help="How many queue rows to print.")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve Prometheus metrics on 127.0.0.1:PORT (stays up for --linger seconds).",
)
@click.option("--linger", default=0.0, show_default=True, help="Seconds to keep serving metrics.")
@click.option(
    "--pushgateway",
    callback=_gateway,
    help="Push the metrics to this Prometheus Pushgateway (host:port).",
)
@click.option("--log-json", is_flag=True, help="Log one JSON object per line on stderr.")
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
) -> int:
    """Schedule SOURCE with the new engine in MODE and print the head of the resulting queue."""
    from engines.base import get_engine
    from engines.new.metrics import SchedulingMetrics
    from engines.new.orchestrator import OrchestrationMode, SchedulingOrchestrator
    from harness.commands.schedule import format_queue_head, summary_line
    from harness.schedule_json import write_schedule
    from harness.sources import open_source

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
    dataset = open_source(source, campaign=campaign, codebases=codebases or None)
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
