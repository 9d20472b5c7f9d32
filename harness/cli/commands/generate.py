"""``janitor-shadow generate``: seeded synthetic Janitor data, with its truth."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.commands.record import parse_as_of
from harness.errors import InputError
from scenarios.settings import DEFAULT_AS_OF, GeneratorSettings

#: Above this many runs a YAML scenario stops being something a person edits.
YAML_MAX_RUNS = 50_000

_FRACTION = click.FloatRange(0.0, 1.0)


@click.command("generate")
@click.argument("out", type=click.Path())
@click.option(
    "--codebases",
    type=click.IntRange(min=1),
    help="Number of codebases (candidates: twice as many). Default 400.",
)
@click.option(
    "--candidates",
    type=click.IntRange(min=1),
    help="Number of candidate rows instead (codebases: half as many).",
)
@click.option(
    "--runs-per-candidate",
    type=click.FloatRange(0.0, 10_000.0),
    default=GeneratorSettings.runs_per_candidate,
    show_default=True,
    help="Runs in total = this × candidates (some candidates have none, some many).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option(
    "--as-of",
    default=DEFAULT_AS_OF.isoformat(),
    show_default=True,
    help="The snapshot's 'now' (naive UTC); all runs finish before it.",
)
@click.option(
    "--campaigns",
    type=click.IntRange(1, 14),
    default=GeneratorSettings.campaigns,
    show_default=True,
    help="How many of the Debian Janitor's campaigns to use (lintian-fixes first).",
)
@click.option(
    "--push-derived-fraction",
    type=_FRACTION,
    default=0.0,
    show_default=True,
    help="Share of candidates on a policy with the push-derived mode (legacy: KeyError).",
)
@click.option(
    "--strict-op-fraction",
    type=_FRACTION,
    default=0.0,
    show_default=True,
    help="Share of dependency version constraints using Debian's << or >> (legacy: SQL error).",
)
@click.option(
    "--changeset-candidate-fraction",
    type=_FRACTION,
    default=0.0,
    show_default=True,
    help="Share of candidates with a change_set (twins of a plain candidate, or alone).",
)
@click.option(
    "--null-value-fraction",
    type=_FRACTION,
    default=0.0,
    show_default=True,
    help="Share of candidates whose value is NULL (legacy: TypeError with a non-empty policy).",
)
@click.option(
    "--zero-value-fraction",
    type=_FRACTION,
    default=0.0,
    show_default=True,
    help="Share of codebases whose popularity value is 0 (rather than NULL or positive).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["dir", "yaml"]),
    default="dir",
    show_default=True,
    help="dir: snapshot directory with truth.jsonl.gz; yaml: one editable file (small sizes) "
    "with OUT-stem.truth.jsonl.gz beside it.",
)
def command(
    out: str,
    codebases: int | None,
    candidates: int | None,
    runs_per_candidate: float,
    seed: int,
    as_of: str,
    campaigns: int,
    push_derived_fraction: float,
    strict_op_fraction: float,
    changeset_candidate_fraction: float,
    null_value_fraction: float,
    zero_value_fraction: float,
    fmt: str,
) -> int:
    """Generate realistic Janitor-like data into OUT, and the truth it was drawn from.

    Each candidate's runs come from a latent success rate and duration
    distribution (drifting over time for some); the truth file records them
    per candidate so that predictions can be scored. With every fraction at
    0 the legacy scheduler runs on the data without errors.
    """
    moment = parse_as_of(as_of)
    assert moment is not None
    settings = GeneratorSettings(
        codebases=codebases,
        candidates=candidates,
        runs_per_candidate=runs_per_candidate,
        seed=seed,
        as_of=moment,
        campaigns=campaigns,
        push_derived_fraction=push_derived_fraction,
        strict_op_fraction=strict_op_fraction,
        changeset_candidate_fraction=changeset_candidate_fraction,
        null_value_fraction=null_value_fraction,
        zero_value_fraction=zero_value_fraction,
    )
    settings.validate()
    from harness.cli.console import Progress
    from harness.data.atomic import atomic_directory, refuse_existing, write_atomic
    from harness.data.snapshot import dataset_to_yaml, write_snapshot_files
    from scenarios.generator import TRUTH_FILE, generate, truth_path_for, write_truth

    target = Path(out)
    if fmt == "yaml":
        estimated = round(settings.runs_per_candidate * settings.candidate_count)
        if estimated > YAML_MAX_RUNS:
            raise InputError(
                f"{estimated} runs is too many for a YAML scenario (at most {YAML_MAX_RUNS}); "
                "use --format dir",
                field="--format",
            )
    # Checked before generating: a large generation should not be wasted.
    refuse_existing(target, directory=fmt == "dir")
    progress = Progress(2)
    with progress.step("generating"):
        scenario = generate(settings)
    with progress.step(f"writing {out}"):
        if fmt == "yaml":
            text = dataset_to_yaml(
                scenario.dataset, description=f"janitor-shadow generate, seed {settings.seed}"
            )
            # the truth first: a scenario file that exists always has its truth beside it
            truth_file = write_truth(scenario.truth, truth_path_for(target))
            write_atomic(target, text, overwrite=False)
        else:
            with atomic_directory(target) as staging:  # data and truth appear together
                write_snapshot_files(scenario.dataset, staging)
                write_truth(scenario.truth, staging / TRUTH_FILE)
            truth_file = target / TRUTH_FILE
    click.echo(f"wrote {target} (truth: {truth_file.name})")
    width = max(len(k) for k in scenario.stats)
    for name, count in scenario.stats.items():
        click.echo(f"  {name.ljust(width)}  {count}")
    return 0
