"""``janitor-shadow restore``: a snapshot → an empty database with the production schema."""

from __future__ import annotations

import click

from harness.cli.commands import SOURCE
from harness.errors import SourceError


@click.command("restore")
@click.argument("snapshot")
@click.argument("dsn", type=SOURCE)
@click.option(
    "--create-schema",
    is_flag=True,
    help="Create the Janitor schema (and debversion) first if the database has none.",
)
def command(snapshot: str, dsn: str, create_schema: bool) -> int:
    """Load SNAPSHOT (a snapshot directory, YAML scenario, golden-vector set or
    bundled scenario) into the empty database DSN.

    For running legacy:sql on recorded data and reproducing production bugs.
    Refuses a database whose Janitor tables hold rows.
    """
    from harness.cli.console import Progress
    from harness.data.restore import restore_dataset
    from harness.data.sources import is_dsn, open_source

    if not is_dsn(dsn):
        raise SourceError(f"{dsn}: expected a postgresql:// DSN")
    progress = Progress(2)
    with progress.step(f"reading {snapshot}"):
        dataset = open_source(snapshot)
    with progress.step("loading into the database"):
        report = restore_dataset(dataset, dsn, create_schema=create_schema, snapshot=snapshot)
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
    created = " (schema created)" if report.created_schema else ""
    click.echo(f"restored {snapshot}{created}: {counts}")
    for note in report.notes:
        click.echo(f"note: {note}")
    return 0
