"""``janitor-shadow shadow-report HISTORY --report out.html``: chart a service's history."""

from __future__ import annotations

import click


@click.command("shadow-report")
@click.argument("history", type=click.Path(dir_okay=False))
@click.option(
    "--report",
    "report_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the HTML report (replaced atomically).",
)
@click.option(
    "--last", type=click.IntRange(min=1), help="Only the last N cycles (default: all of them)."
)
def command(history: str, report_path: str, last: int | None) -> int:
    """Render the shadow service's HISTORY (history.jsonl) as an HTML report."""
    from harness.service.history import read_history
    from reports.shadow_history import write_history_report

    records = read_history(history, last=last)
    write_history_report(records.records, report_path)
    skipped = f", {records.skipped} incomplete line skipped" if records.skipped else ""
    click.echo(f"{report_path}: {len(records.records)} cycles{skipped}")
    return 0
