"""``janitor-shadow schedule``: run one engine on one source."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from harness.cli.commands import SOURCE, as_of_option, output_path, source_filters

if TYPE_CHECKING:  # the command imports what it uses when it runs (fast --help)
    from engines.model import Schedule


def format_queue_head(schedule: Schedule, limit: int) -> str:
    """The head of the queue as a fixed-width table a person can scan."""
    head = schedule.queue[:limit]
    # only the head's decisions: the whole table by key costs more than a scan
    wanted = {item.key for item in head}
    by_key = {
        d.key: d for d in schedule.decisions if (d.codebase, d.campaign, d.change_set) in wanted
    }
    header = ("#", "bucket", "priority", "codebase", "campaign", "offset", "p(success)", "duration")
    rows = []
    for position, item in enumerate(head, start=1):
        d = by_key.get(item.key)
        offset = "" if d is None or d.offset is None else f"{d.offset:.1f}"
        prob = "" if d is None or d.success_probability is None else f"{d.success_probability:.4f}"
        dur = item.estimated_duration_us
        rows.append(
            (
                str(position),
                item.bucket,
                str(item.priority),
                item.codebase,
                item.suite,
                offset,
                prob,
                "" if dur is None else f"{dur / 1e6:.1f}s",
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def summary_line(schedule: Schedule) -> str:
    errors = schedule.errors()
    total = sum(schedule.timings.values()) if schedule.timings else 0.0
    return (
        f"{schedule.engine}: {len(schedule.decisions)} candidates, {len(errors)} errors, "
        f"{len(schedule.queue)} queue rows, {total:.2f}s"
    )


@click.command("schedule")
@click.argument("source", type=SOURCE)
@click.option(
    "--engine",
    "engine_spec",
    default="legacy",
    show_default=True,
    help="Engine: legacy[:memory|:sql], new[:parity|:default], or package.module:factory.",
)
@source_filters
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    callback=output_path,
    help="Write the whole schedule as JSON ('-': stdout).",
)
@click.option("--head", default=20, show_default=True, help="How many queue rows to print.")
@as_of_option
def command(
    source: str,
    engine_spec: str,
    campaign: str | None,
    codebases: tuple[str, ...],
    json_path: str | None,
    head: int,
    as_of: str | None = None,
) -> int:
    """Decide every candidate of SOURCE with one engine and print the head of the queue.

    SOURCE is a snapshot directory, a YAML scenario, a bundled scenario name
    or a postgresql:// DSN (read only).
    """
    from engines.base import get_engine
    from harness.cli.commands.record import parse_as_of
    from harness.cli.console import Progress
    from harness.data.schedule_json import write_schedule
    from harness.data.sources import schedule_source

    engine = get_engine(engine_spec)

    progress = Progress(2 if json_path and json_path != "-" else 1)
    with progress.step(f"scheduling {source} with {engine_spec}"):
        schedule = schedule_source(
            engine, source, campaign=campaign, codebases=codebases or None, as_of=parse_as_of(as_of)
        )
    if json_path != "-":
        click.echo(format_queue_head(schedule, head))
        click.echo(summary_line(schedule))
        for note in schedule.notes:
            click.echo(f"note: {note}")
    if json_path == "-":
        write_schedule(schedule, json_path)
    elif json_path:
        with progress.step(f"writing {json_path}"):
            write_schedule(schedule, json_path)
    return 0
