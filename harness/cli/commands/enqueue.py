"""``janitor-shadow enqueue``: the one command that writes a queue.

Every other command only reads. This one runs an engine on SOURCE and
writes its queue entries to Redis or to the Janitor's ``queue`` table, in
batches that are each wholly written or not at all; ``--dry-run`` shows what
it would add, move and leave alone, and writes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from harness.cli.commands import SOURCE, source_filters
from harness.errors import InputError

if TYPE_CHECKING:
    from harness.enqueue import EnqueueCounts, EnqueuePlan, PlanEntry

#: harness.enqueue.DEFAULT_BATCH_SIZE (a test keeps them equal), spelled here so
#: that --help imports no engine.
DEFAULT_BATCH_SIZE = 1000


def describe(entry: PlanEntry) -> str:
    """One plan line: verb, where the entry goes (from where), which entry."""
    item, before, verb = entry.item, entry.existing, entry.action.value
    where = f"{item.bucket} {item.priority}"
    if verb == "move" and before is not None:
        where = f"{before.bucket} {before.priority} -> {where}"
    elif verb == "keep" and before is not None:
        where = f"{before.bucket} {before.priority} (kept: re-add would be {where})"
    return f"{verb:<9} {where}  {item.key.label()}"


def counts_line(counts: EnqueueCounts) -> str:
    return (
        f"added {counts.added}, moved {counts.moved}, updated {counts.updated}, "
        f"left alone {counts.left_alone} ({counts.unchanged} unchanged, "
        f"{counts.kept} kept by the upsert rule)"
    )


def print_plan(plan: EnqueuePlan, show: int) -> None:
    changing = [e for e in plan.entries if e.action.value != "unchanged"]
    for entry in changing[:show]:
        click.echo(describe(entry))
    if len(changing) > show > 0:
        click.echo(f"… and {len(changing) - show} more")


@click.command("enqueue")
@click.argument("source", type=SOURCE)
@click.option(
    "--to",
    "target_url",
    required=True,
    help="Where to write: redis://[:PASSWORD@]HOST[:PORT]/DB, rediss://… (TLS), "
    "unix://…, or a postgresql:// DSN of the Janitor's database (its queue table).",
)
@click.option(
    "--engine",
    "engine_spec",
    default="new",
    show_default=True,
    help="Engine whose decisions are written: new[:parity|:default|:config=PATH], or any engine.",
)
@click.option(
    "--mode",
    type=click.Choice(["new", "fallback"]),
    default="new",
    show_default=True,
    help="new: the engine alone; fallback: the legacy decides every candidate the engine fails on.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be added, moved, left alone.")
@source_filters
@click.option("--as-of", "as_of", help="Schedule as if now were this naive-UTC time.")
@click.option(
    "--batch-size",
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Entries per batch (one MULTI/EXEC or one transaction).",
)
@click.option(
    "--key-prefix", default="queue", show_default=True, help="Redis key prefix (Redis only)."
)
@click.option(
    "--show", default=20, show_default=True, help="How many changing entries to list (0: none)."
)
def command(
    source: str,
    target_url: str,
    engine_spec: str,
    mode: str,
    dry_run: bool,
    campaign: str | None,
    codebases: tuple[str, ...],
    as_of: str | None,
    batch_size: int,
    key_prefix: str,
    show: int,
) -> int:
    """Schedule SOURCE with an engine and write its queue entries to --to.

    Re-adding an entry follows the Janitor's upsert rule (a more urgent
    bucket is never overwritten); enqueueing the same schedule twice changes
    nothing the second time.
    """
    from engines.base import get_engine
    from harness.cli.commands.record import parse_as_of
    from harness.data.sources import schedule_source
    from harness.enqueue import open_target

    if batch_size < 1:
        raise InputError(f"expected a positive number, got {batch_size}", field="--batch-size")
    engine = get_engine(engine_spec)
    if mode == "fallback":
        from harness.enqueue.fallback import FallbackEngine

        engine = FallbackEngine(engine)
    # Open the target first: a wrong URL fails before a long scheduling run.
    with open_target(target_url, batch_size=batch_size, key_prefix=key_prefix) as target:
        schedule = schedule_source(
            engine,
            source,
            campaign=campaign,
            codebases=codebases or None,
            as_of=parse_as_of(as_of),
        )
        for note in schedule.notes:
            click.echo(f"note: {note}")
        plan = target.plan(schedule)
        print_plan(plan, show)
        if dry_run:
            click.echo(
                f"dry run, nothing written to {target.url}: {len(plan.entries)} entries from "
                f"{schedule.engine} would be {counts_line(plan.counts)}"
            )
            return 0
        result = target.apply(plan)
        seconds = sum(result.timings.values())
        click.echo(
            f"wrote {len(plan.entries)} entries from {schedule.engine} to {target.url} in "
            f"{result.batches} batches ({seconds:.2f}s): {counts_line(result.counts)}"
        )
    return 0
