"""``janitor-shadow run``: the new engine under one of the plan's orchestration modes.

``--mode new`` runs the new engine alone; ``fallback`` lets the legacy decide
every candidate the new engine fails on (counted); ``shadow`` runs both,
compares them and keeps the legacy's result. Metrics can be served for
scraping (``--metrics-port``) or pushed (``--pushgateway``).

Exit codes: 0 whenever the returned schedule was produced. In shadow mode the
new engine raising (whole run or per candidate) and a divergence are
observations, reported and counted, not failures: the legacy's answer is what
counts. ``--fail-on-divergence`` makes them exit 1 (a divergence beyond
``--budget``, or a new engine that raised on the whole run).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import click

from harness.cli.commands import SOURCE, as_of_option, output_path, source_filters
from harness.errors import ShadowError

if TYPE_CHECKING:
    from engines.new.orchestrator import OrchestrationResult

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
@click.option(
    "--sample",
    type=click.FloatRange(0, 100),
    help="Shadow: percent of runs on which the new engine runs at all (the legacy always "
    "runs). Default 100.",
)
@click.option(
    "--seed",
    type=int,
    help="Shadow: seed for the engines' random order, the sample and the noise run's "
    "shuffle (default: fresh randomness; the noise shuffle uses 1).",
)
@click.option(
    "--tolerances",
    "tolerances_path",
    type=click.Path(dir_okay=False),
    help="Shadow: tolerances YAML for the comparison (as compare).",
)
@click.option(
    "--waivers",
    "waivers_path",
    type=click.Path(dir_okay=False),
    help="Shadow: waivers YAML for the comparison (as compare).",
)
@click.option(
    "--noise/--no-noise",
    default=True,
    show_default=True,
    help="Shadow: measure the legacy against itself (two more legacy runs) and classify "
    "differences within that noise as noise, as compare does.",
)
@click.option(
    "--budget",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Shadow: real divergences the comparison allows.",
)
@click.option(
    "--fail-on-divergence",
    is_flag=True,
    help="Shadow: exit 1 when the comparison fails (beyond --budget) or the new engine "
    "raised on the whole run (default: exit 0, the legacy's schedule is the answer).",
)
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
    sample: float | None,
    seed: int | None,
    tolerances_path: str | None,
    waivers_path: str | None,
    noise: bool,
    budget: int,
    fail_on_divergence: bool,
    as_of: str | None = None,
) -> int:
    """Schedule SOURCE with the new engine in MODE and print the head of the resulting queue.

    Exit status: 0 when the returned schedule was produced (in shadow mode,
    the legacy's, even if the new engine raised or diverged); 1 only with
    --fail-on-divergence; 2 on bad input or usage.
    """
    from engines.base import get_engine
    from engines.new.metrics import SchedulingMetrics
    from engines.new.orchestrator import OrchestrationMode, SchedulingOrchestrator
    from harness.cli.commands.record import parse_as_of
    from harness.cli.commands.schedule import format_queue_head, summary_line
    from harness.data.schedule_json import write_schedule
    from harness.data.sources import open_input

    shadow_only = {
        "--sample": sample is not None,
        "--seed": seed is not None,
        "--tolerances": tolerances_path is not None,
        "--waivers": waivers_path is not None,
        "--budget": budget != 0,
        "--fail-on-divergence": fail_on_divergence,
    }
    misplaced = [name for name, given in shadow_only.items() if given]
    if misplaced and mode != OrchestrationMode.SHADOW.value:
        raise click.UsageError(f"{', '.join(misplaced)}: only with --mode shadow")
    comparator = None
    if mode == OrchestrationMode.SHADOW.value:
        from harness.cli.commands.compare import load_config
        from harness.comparison.shadow import HarnessComparator
        from harness.data.janitor_db import redact_dsn
        from harness.data.sources import is_dsn

        settings, waivers = load_config(tolerances_path, waivers_path)
        comparator = HarnessComparator(
            settings,
            waivers,
            noise=noise,
            seed=1 if seed is None else seed,
            budget=budget,
            source=redact_dsn(source) if is_dsn(source) else source,
        )
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
        # Both engines (and the shadow comparison's noise runs) on one snapshot;
        # the full dataset only if one of them needs it.
        engines = (engine,) if mode == "new" else (engine, legacy)
        dataset = opened.dataset_for(*engines)
        result = SchedulingOrchestrator(
            engine,
            legacy,
            mode,
            metrics=metrics,
            comparator=comparator,
            sample=100.0 if sample is None else sample,
            seed=seed,
        ).schedule_candidates(dataset)
    schedule = result.schedule
    if json_path != "-":
        click.echo(format_queue_head(schedule, head))
        click.echo(summary_line(schedule))
        for note in schedule.notes:
            click.echo(f"note: {note}")
        if result.mode is OrchestrationMode.FALLBACK:
            click.echo(f"fallbacks: {result.fallback_count}")
        if result.mode is OrchestrationMode.SHADOW:
            click.echo(shadow_text(result))
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
    if fail_on_divergence and result.sampled:
        if result.run_failed or result.comparison_error is not None:
            return 1
        if result.comparison is not None and not result.comparison.passed:
            return 1
    return 0


def shadow_text(result: OrchestrationResult) -> str:
    """What a shadow run observed, for stdout (the schedule printed above is the legacy's)."""
    from harness.cli.commands.compare import verdict_text

    run = sum(1 for f in result.failures if f.key is None)
    lines = [
        f"shadow: order {' then '.join(result.order)}; new engine failures: "
        f"whole run {run}, candidates {result.candidate_failures}"
    ]
    if not result.sampled:
        lines.append("shadow: the new engine did not run (not sampled this run)")
    for failure in result.failures[:5]:
        lines.append(f"shadow: the new engine failed ({failure.where}): {failure.error}")
    if result.comparison_error is not None:
        lines.append(f"shadow: the comparison failed: {result.comparison_error}")
    if result.comparison is not None:
        lines.extend(f"shadow: {line}" for line in verdict_text(result.comparison).splitlines())
    return "\n".join(lines)
