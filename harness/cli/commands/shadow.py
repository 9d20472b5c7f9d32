"""``janitor-shadow shadow DSN --interval …``: the long-running shadow service.

Settings come from ``--config`` (YAML, every key in
``harness/service.sample.yaml``), then the flags given here. Exit status: 0
when stopped (SIGTERM/SIGINT, ``--max-cycles`` reached), 2 on a bad
configuration; with ``--once``, 4 when that one cycle failed (3 stays "a crash").
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

#: ``enqueue.engine``'s choices (harness.service.config holds the same; imported late).
ENQUEUE_ENGINES = ("legacy", "new")


def _duration(flag: str, value: str | None) -> float | None:
    from harness.errors import ConfigError
    from harness.service.config import parse_duration

    if value is None:
        return None
    seconds = parse_duration(value, flag)
    if seconds <= 0:
        raise ConfigError(f"{flag}: expected a duration > 0, got {value!r}")
    return seconds


def configure_logging(json_lines: bool) -> None:
    """The service's and the engines' logs on stderr: INFO by default (a service
    says what each cycle did), ``-q`` quieter, ``-v`` more; JSON lines with
    ``--log-json``; passwords masked either way."""
    from harness.cli import console
    from harness.cli.crash import redact_secrets

    class Handler(logging.StreamHandler):
        def format(self, record: logging.LogRecord) -> str:
            return redact_secrets(super().format(record))

    handler = Handler(sys.stderr)
    if json_lines:
        from engines.new.logs import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(console.UtcFormatter())
    verbosity = console.VERBOSITY.level
    level = logging.INFO if verbosity == 0 else console.log_level(verbosity)
    for name in ("harness.service", "engines.new"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False  # one line per record, not a second one from the root


@click.command("shadow")
@click.argument("dsn", required=False)
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="Service settings (YAML)."
)
@click.option("--interval", help="Time from one cycle's start to the next: 300, 30s, 5m, 1h.")
@click.option(
    "--state-dir", type=click.Path(file_okay=False), help="Where history, report, heartbeat live."
)
@click.option("--campaign", help="Only this campaign.")
@click.option("--legacy", "legacy_engine", help="The legacy engine (default legacy:memory).")
@click.option("--engine", "new_engine", help="The new engine (default new:default).")
@click.option("--tolerances", type=click.Path(dir_okay=False), help="Comparator tolerances YAML.")
@click.option("--waivers", type=click.Path(dir_okay=False), help="Waivers YAML.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    help="HTML report, rewritten each cycle (default STATE/report.html).",
)
@click.option(
    "--metrics-port", type=click.IntRange(1, 65535), help="Serve Prometheus metrics on this port."
)
@click.option("--metrics-address", help="Address to serve metrics on (default 127.0.0.1).")
@click.option("--retention-age", help="Drop history records older than this (90d).")
@click.option(
    "--retention-records", type=click.IntRange(min=1), help="Keep at most this many records."
)
@click.option(
    "--enqueue-to", help="Also enqueue the chosen engine's decisions: redis://… or postgresql://…."
)
@click.option(
    "--enqueue-engine", type=click.Choice(ENQUEUE_ENGINES), help="Whose decisions to enqueue."
)
@click.option("--once", is_flag=True, help="Run one cycle and exit (4 if it failed).")
@click.option("--max-cycles", type=click.IntRange(min=1), help="Stop after this many cycles.")
@click.option("--log-json", is_flag=True, default=None, help="Log one JSON object per line.")
def command(
    dsn: str | None,
    config_path: str | None,
    interval: str | None,
    state_dir: str | None,
    campaign: str | None,
    legacy_engine: str | None,
    new_engine: str | None,
    tolerances: str | None,
    waivers: str | None,
    report_path: str | None,
    metrics_port: int | None,
    metrics_address: str | None,
    retention_age: str | None,
    retention_records: int | None,
    enqueue_to: str | None,
    enqueue_engine: str | None,
    once: bool,
    max_cycles: int | None,
    log_json: bool | None,
) -> int:
    """Every INTERVAL, read one snapshot of DSN, run both engines, compare, record.

    Runs until SIGTERM. The history (STATE/history.jsonl) grows by one record
    per cycle; the report (STATE/report.html) charts it; metrics are served
    with --metrics-port.
    """
    from harness.service.config import load_config, override, validate
    from harness.service.runner import ShadowService

    config = override(
        load_config(config_path),
        dsn=dsn,
        interval_s=_duration("--interval", interval),
        state_dir=None if state_dir is None else Path(state_dir),
        campaign=campaign,
        legacy_engine=legacy_engine,
        new_engine=new_engine,
        tolerances=tolerances,
        waivers=waivers,
        report_path=None if report_path is None else Path(report_path),
        metrics_port=metrics_port,
        metrics_address=metrics_address,
        retention_max_age_s=_duration("--retention-age", retention_age),
        retention_max_records=retention_records,
        enqueue_to=enqueue_to,
        enqueue_engine=enqueue_engine,
        max_cycles=max_cycles,
        log_json=log_json,
    )
    config = validate(config)
    configure_logging(config.log_json)
    return ShadowService(config, once=once).run()
