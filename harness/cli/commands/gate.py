"""``janitor-shadow gate``: compare a fresh schedule with a stored baseline, for CI.

``gate SOURCE --engine E --baseline F.json`` (also spelled ``gate check …``)
runs the engine and compares its schedule (B) against the baseline schedule
JSON (A, written by ``schedule --json`` or ``gate accept``). ``gate accept
SOURCE --engine E --baseline F.json`` stores the engine's current schedule as
the new baseline: accepting is always explicit, a failing gate never
rewrites it.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harness.cli.commands import SOURCE, as_of_option, output_path, source_filters
from harness.cli.commands.compare import (
    EXIT_DIVERGED,
    EXIT_OK,
    Progress,
    load_config,
    measure,
    output_options,
    require_candidates,
    resolve_engine,
    run_engine,
    start_self_runs,
    verdict_text,
    write_outputs,
    writing,
)
from harness.errors import InputError, ShadowError

if TYPE_CHECKING:
    from engines.model import Schedule


def read_baseline(path: str) -> Schedule:
    """The stored baseline; a malformed one is bad input naming the file."""
    from harness.data.schedule_json import read_schedule

    try:
        return read_schedule(path)
    except ShadowError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"malformed baseline schedule: {exc!r}", file=path) from exc


class _DefaultToCheck(click.Group):
    """``gate SOURCE …`` means ``gate check SOURCE …``; ``gate accept …`` accepts."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["check", *args]
        return super().parse_args(ctx, args)


@click.group("gate", cls=_DefaultToCheck)
def command() -> None:
    """CI gate: compare a fresh schedule with a stored baseline (exit 0/1/2/3).

    \b
    janitor-shadow gate SOURCE --engine E --baseline F.json [options]
        compare (same as `gate check`); exit 0 within the budget,
        1 beyond it, 2 on bad input or usage, 3 on a crash
    janitor-shadow gate accept SOURCE --engine E --baseline F.json
        store the engine's current schedule as the new baseline
    """


@command.command("check")
@click.argument("source", type=SOURCE)
@click.option("--engine", "engine_spec", required=True, help="Engine to run (B).")
@click.option(
    "--baseline",
    "baseline_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Baseline schedule JSON (A).",
)
@output_options
def check(
    source: str,
    engine_spec: str,
    baseline_path: str,
    tolerances_path: str | None,
    waivers_path: str | None,
    noise: bool,
    seed: int,
    parallel: bool,
    budget: int,
    as_of: str | None,
    campaign: str | None,
    codebases: tuple[str, ...],
    report_path: str | None,
    json_path: str | None,
    junit_path: str | None,
    table_rows: int | None,
    allow_empty: bool,
) -> int:
    """Run ENGINE on SOURCE and compare its schedule against the stored baseline."""
    from harness.cli.commands.record import parse_as_of
    from harness.comparison.compare import compare_schedules
    from harness.data.sources import open_input

    settings, waivers = load_config(tolerances_path, waivers_path, table_rows)
    baseline = read_baseline(baseline_path)
    engine = resolve_engine(engine_spec)
    moment = parse_as_of(as_of)
    progress = Progress(4 if noise else 3)
    with open_input(source, campaign=campaign, codebases=codebases or None, as_of=moment) as opened:
        with progress.step(f"reading {source}"):
            opened.prepare(engine)
        require_candidates(opened.rows(), source, campaign, codebases, allow_empty)
        with ExitStack() as running:
            # the self-runs need no schedule: on the other core meanwhile
            self_runs = (
                running.enter_context(
                    start_self_runs(engine, opened, seed, settings, parallel=parallel)
                )
                if noise
                else None
            )
            with progress.step(f"running {engine_spec}"):
                fresh = run_engine(engine, opened)
            profile = None
            if self_runs is not None:
                with progress.step(f"noise baseline ({engine_spec} against itself)"):
                    profile = measure(
                        engine,
                        opened.dataset_for(engine),
                        fresh,
                        seed,
                        settings,
                        self_runs=self_runs,
                    )
    comparison = compare_schedules(
        baseline,
        fresh,
        settings=settings,
        noise=profile,
        waivers=waivers,
        budget=budget,
        source_a=str(baseline_path),
        source_b="engine",
    )
    write_outputs(comparison, report_path, json_path, junit_path)
    if json_path != "-":
        click.echo(verdict_text(comparison))
    return EXIT_OK if comparison.passed else EXIT_DIVERGED


@command.command("accept")
@click.argument("source", type=SOURCE)
@click.option("--engine", "engine_spec", required=True, help="Engine to run.")
@click.option(
    "--baseline",
    "baseline_path",
    required=True,
    type=click.Path(dir_okay=False),
    callback=output_path,
    help="Where to store the baseline schedule JSON (replaced if it exists).",
)
@source_filters
@as_of_option
def accept(
    source: str,
    engine_spec: str,
    baseline_path: str,
    campaign: str | None,
    codebases: tuple[str, ...],
    as_of: str | None = None,
) -> int:
    """Store ENGINE's current schedule on SOURCE as the new baseline."""
    from harness.cli.commands.record import parse_as_of
    from harness.comparison.compare import compare_schedules
    from harness.data.schedule_json import write_schedule
    from harness.data.sources import open_input

    engine = resolve_engine(engine_spec)
    with open_input(
        source, campaign=campaign, codebases=codebases or None, as_of=parse_as_of(as_of)
    ) as opened:
        schedule = run_engine(engine, opened)
    previous = None
    if Path(baseline_path).exists():
        previous = compare_schedules(read_baseline(baseline_path), schedule, source_a=baseline_path)
    with writing(baseline_path):
        write_schedule(schedule, baseline_path)
    click.echo(
        f"baseline {baseline_path}: {schedule.engine}, {len(schedule.decisions)} decisions, "
        f"{len(schedule.queue)} queue rows"
    )
    if previous is not None:
        click.echo(f"against the previous baseline: {previous.real} real divergence(s)")
    return EXIT_OK
