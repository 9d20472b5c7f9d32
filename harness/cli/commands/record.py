"""``janitor-shadow record``: a live database → a snapshot (read only)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from harness.cli.commands import SOURCE
from harness.errors import InputError, SourceError


def parse_as_of(value: str | None) -> datetime | None:
    """``--as-of``: a naive UTC timestamp."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"expected a timestamp YYYY-MM-DDTHH:MM:SS[.ffffff], got {value!r}", field="--as-of"
        ) from None
    if moment.tzinfo is not None:
        raise InputError("expected a naive UTC timestamp (no offset)", field="--as-of")
    return moment


@click.command("record")
@click.argument("dsn", type=SOURCE)
@click.argument("out", type=click.Path())
@click.option("--campaign", help="Only this campaign's candidates (and the runs they need).")
@click.option("--codebase", "codebases", multiple=True, help="Only these codebases (repeatable).")
@click.option(
    "--sample-codebases",
    type=click.IntRange(min=1),
    help="Keep a random sample of this many candidate codebases (all codebase rows stay).",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the codebase sample.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["dir", "yaml"]),
    default="dir",
    show_default=True,
    help="dir: snapshot directory (large data); yaml: one editable file.",
)
@click.option("--as-of", help="Record this moment (naive UTC) as the snapshot's 'now'.")
def command(
    dsn: str,
    out: str,
    campaign: str | None,
    codebases: tuple[str, ...],
    sample_codebases: int | None,
    seed: int,
    fmt: str,
    as_of: str | None,
) -> int:
    """Record everything the scheduler reads from the database DSN into OUT.

    One read-only, repeatable-read transaction; the snapshot's provenance
    says where it came from (without the password), when, and with which
    filters.
    """
    from harness.cli.console import Progress
    from harness.data.atomic import refuse_existing, write_atomic
    from harness.data.janitor_db import read_dataset
    from harness.data.snapshot import dataset_to_yaml, write_snapshot
    from harness.data.sources import is_dsn

    if not is_dsn(dsn):
        raise SourceError(f"{dsn}: expected a postgresql:// DSN")
    target = Path(out)
    refuse_existing(target, directory=fmt == "dir")  # before reading the whole database
    progress = Progress(2)
    with progress.step("reading the database"):
        dataset = read_dataset(
            dsn,
            campaign=campaign,
            codebases=codebases or None,
            sample_codebases=sample_codebases,
            seed=seed,
            as_of=parse_as_of(as_of),
        )
    with progress.step(f"writing {out}"):
        if fmt == "yaml":
            text = dataset_to_yaml(
                dataset, description=f"recorded from {dataset.provenance.source}"
            )
            write_atomic(target, text, overwrite=False)
        else:
            write_snapshot(dataset, target)
    counts = ", ".join(f"{k} {v}" for k, v in dataset.counts().items() if v is not None)
    click.echo(f"recorded {dataset.provenance.source} as of {dataset.as_of.isoformat()}: {counts}")
    for note in dataset.provenance.details.get("notes", ()):
        click.echo(f"note: {note}")
    return 0
