"""``janitor-shadow compare``: run two engines on one source and compare their schedules.

Exit codes: 0 within tolerance (real divergences within the budget), 1
beyond the budget, 2 bad input or usage (via :func:`harness.cli.main`).
The helpers here (options, noise, outputs, the verdict text) are shared with
``janitor-shadow gate``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import click

from harness.cli.commands import AS_OF_HELP, SOURCE, output_path
from harness.cli.console import Progress
from harness.errors import EXIT_DIVERGED, EXIT_OK, EngineCrash, InputError, ShadowError

if TYPE_CHECKING:  # the commands import what they use when they run (fast --help)
    from engines.base import Engine
    from engines.model import Dataset, Schedule
    from harness.comparison.comparison_model import Comparison
    from harness.comparison.noise import NoiseProfile
    from harness.comparison.self_runs import SelfRuns
    from harness.comparison.tolerances import Settings
    from harness.comparison.waivers import Waiver
    from harness.data.sources import Input

__all__ = ["EXIT_DIVERGED", "EXIT_OK", "Progress"]
F = TypeVar("F", bound=Callable[..., Any])


def output_options(func: F) -> F:
    """The options compare and gate share, in the order --help shows them."""
    options = [
        click.option(
            "--tolerances",
            "tolerances_path",
            type=click.Path(dir_okay=False),
            help="Tolerances YAML (overrides harness/comparison/tolerances.default.yaml).",
        ),
        click.option(
            "--waivers",
            "waivers_path",
            type=click.Path(dir_okay=False),
            help="Waivers YAML: intended divergences (field, campaign/codebase globs, reason, expires).",
        ),
        click.option(
            "--noise/--no-noise",
            default=True,
            show_default=True,
            help="Measure the reference engine against itself (rerun + shuffled rows): "
            "a difference no larger than the noise measured for that candidate and field "
            "is noise. The reference in B's row order runs either way.",
        ),
        click.option(
            "--seed", default=1, show_default=True, help="Seed for the shuffled-rows noise run."
        ),
        click.option(
            "--parallel/--no-parallel",
            default=True,
            show_default=True,
            help="Run the noise self-runs in a second process while the engines run "
            "(when there is a second core and the reference engine computes in memory).",
        ),
        click.option(
            "--budget",
            default=0,
            show_default=True,
            type=click.IntRange(min=0),
            help="Real divergences allowed before exit code 1.",
        ),
        click.option("--as-of", "as_of", help=AS_OF_HELP),
        click.option("--campaign", help="Only this campaign's candidates."),
        click.option(
            "--codebase", "codebases", multiple=True, help="Only these codebases (repeatable)."
        ),
        click.option(
            "--report",
            "report_path",
            type=click.Path(dir_okay=False),
            callback=output_path,
            help="Write the HTML report.",
        ),
        click.option(
            "--json",
            "json_path",
            type=click.Path(dir_okay=False),
            callback=output_path,
            help="Write the JSON summary (reports/summary.schema.json; '-': stdout).",
        ),
        click.option(
            "--junit",
            "junit_path",
            type=click.Path(dir_okay=False),
            callback=output_path,
            help="Write JUnit XML.",
        ),
        click.option(
            "--table-rows",
            type=click.IntRange(min=1),
            help="Candidate rows in the HTML report's table (default: report.table_rows, 500).",
        ),
        click.option(
            "--allow-empty",
            is_flag=True,
            help="Compare even when SOURCE (after the filters) has no candidate; "
            "without it that is bad input (exit 2), never a vacuous pass.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def load_config(
    tolerances_path: str | None, waivers_path: str | None, table_rows: int | None = None
) -> tuple[Settings, tuple[Waiver, ...]]:
    from harness.comparison.tolerances import load_settings
    from harness.comparison.waivers import load_waivers

    settings = load_settings(tolerances_path)
    if table_rows is not None:
        settings = replace(settings, table_rows=table_rows)
    waivers = load_waivers(waivers_path) if waivers_path else ()
    return settings, waivers


def require_candidates(
    dataset: Dataset,
    source: str,
    campaign: str | None,
    codebases: tuple[str, ...],
    allow_empty: bool,
) -> None:
    """Zero candidates would PASS any comparison: an empty database or a misspelled
    --campaign must not look like success in CI."""
    if dataset.candidates or allow_empty:
        return
    from harness.data.sources import describe_source

    raise InputError(
        f"nothing to compare: 0 candidates in {describe_source(source, campaign, codebases)} "
        "(--allow-empty accepts that)"
    )


def resolve_engine(spec: str) -> Engine:
    from engines.base import get_engine

    return get_engine(spec)


def run_engine(engine: Engine, source: Input) -> Schedule:
    """Run an engine the way it reads SOURCE best; a crash names the engine."""
    try:
        return source.schedule(engine)
    except ShadowError:
        raise
    except Exception as exc:
        raise EngineFailed(
            f"engine {engine.name!r} failed: {type(exc).__name__}: {exc}", engine=engine.name
        ) from exc


class EngineFailed(EngineCrash):
    """An engine raised instead of returning a schedule: a crash (exit 3) naming it."""


def start_self_runs(
    engine: Engine, source: Input, seed: int, settings: Settings, *, parallel: bool
) -> SelfRuns:
    """The reference's noise self-runs, started now: in a second process unless
    the engine reads this command's database connection, which a child must
    not share."""
    from engines.base import ReadsDatabase
    from harness.comparison.self_runs import SelfRuns

    shares_connection = source.session is not None and isinstance(engine, ReadsDatabase)
    return SelfRuns(
        engine,
        source.dataset_for(engine),
        seed=seed,
        shuffles=settings.noise_shuffles,
        parallel=parallel and not shares_connection,
    )


def measure(
    engine: Engine,
    dataset: Dataset,
    reference: Schedule,
    seed: int,
    settings: Settings,
    processed: Schedule | None = None,
    *,
    self_runs: SelfRuns | bool = True,
) -> NoiseProfile | None:
    """Self-runs of the reference (``True``: run them now; ``False``: none; or
    the ones :func:`start_self_runs` started), and (given B's schedule as
    ``processed``) the reference in B's row order (see
    :mod:`harness.comparison.noise`); ``None`` when there is neither."""
    from harness.comparison.noise import measure_noise, order_run
    from harness.comparison.ranking import load_statistics
    from harness.comparison.self_runs import SelfRuns

    if self_runs is True:
        self_runs = SelfRuns(
            engine, dataset, seed=seed, shuffles=settings.noise_shuffles, parallel=False
        )
    # the order run first: in the parent, while a child may still be busy
    order = None if processed is None else order_run(engine, dataset, processed)
    if isinstance(self_runs, SelfRuns) and self_runs.in_child:
        load_statistics()  # what comparing needs next, while the child finishes
    runs = self_runs.result() if isinstance(self_runs, SelfRuns) else []
    if not runs and order is None:
        return None
    return measure_noise(reference, runs, rbo_p=settings.ranking.rbo_p, order=order)


@contextmanager
def writing(path: str) -> Iterator[None]:
    """An output file that cannot be written is bad input (exit 2), not a traceback."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", file=path) from exc


def write_outputs(
    comparison: Comparison,
    report_path: str | None,
    json_path: str | None,
    junit_path: str | None,
    backtest: dict[str, Any] | None = None,
) -> None:
    if json_path:
        from reports.json_summary import write_json_summary

        with writing(json_path):
            write_json_summary(comparison, json_path, backtest=backtest)
    if junit_path:
        from reports.junit import write_junit

        with writing(junit_path):
            write_junit(comparison, junit_path)
    if report_path:
        try:
            html = importlib.import_module("reports.html")
        except ModuleNotFoundError as exc:
            if exc.name not in ("reports.html", "reports"):
                raise
            click.echo("note: the HTML report is not available in this build (no reports.html)")
            return
        with writing(report_path):
            html.render_html(comparison, report_path, backtest=backtest)


def verdict_text(c: Comparison) -> str:
    """The short verdict printed on stdout."""
    counts = c.counts
    lines = [
        f"{c.verdict.upper()}: {c.verdict_reason}",
        f"A {c.a.engine} ({c.a.source}) vs B {c.b.engine} ({c.b.source}): "
        f"{counts.a} vs {counts.b} candidates, {counts.aligned} aligned, "
        f"{counts.identical} identical, {counts.missing} missing, {counts.extra} extra, "
        f"{counts.error_mismatches} error mismatch(es)",
    ]
    if any(k.real or k.noise or k.waived for k in c.kinds):
        lines.append(
            "kinds: "
            + "; ".join(
                f"{k.kind.replace('_', ' ')} {k.real} real/{k.noise} noise/{k.waived} waived"
                for k in c.kinds
                if k.real or k.noise or k.waived
            )
        )
    divergent = [s for s in c.fields if s.divergent]
    if divergent:
        lines.append(
            "fields: "
            + "; ".join(
                f"{s.field} {s.real} real/{s.noise} noise/{s.waived} waived" for s in divergent
            )
        )
    if c.ranking is not None:
        r = c.ranking
        tau = "n/a" if r.kendall_tau_b is None else f"{r.kendall_tau_b:.4f}"
        tops = ", ".join(f"top-{t.k} {t.overlap:.3f}" for t in r.top_k)
        lines.append(f"ordering: Kendall tau-b {tau}, RBO(p={r.rbo_p:g}) {r.rbo:.4f}, {tops}")
    if c.causes:
        lines.append(
            "causes: "
            + ", ".join(f"{f} {n}" for f, n in sorted(c.causes.items(), key=lambda x: -x[1]))
        )
    for d in c.candidates[:5]:
        if d.status != "real":
            break
        why = ""
        if d.attribution is not None and d.attribution.cause:
            why = f" (cause: {d.attribution.cause})"
        elif d.rule is not None:
            why = f" ({d.rule.input}; cause: {d.rule.factor})"
        elif d.moved_by:
            why = f" (moved by {', '.join(d.moved_by[:2])})"
        what = ", ".join(f.field for f in d.fields) or d.category.replace("_", " ")
        lines.append(f"  {d.label}: {what}{why}")
    from harness.comparison.waivers import describe

    lines.extend(describe(c.waivers))
    return "\n".join(lines)


@click.command("compare")
@click.argument("source", type=SOURCE)
@click.option("--a", "engine_a", required=True, help="Reference engine (e.g. legacy).")
@click.option("--b", "engine_b", required=True, help="Engine under test (e.g. new).")
@output_options
@click.option(
    "--backtest",
    "backtest_path",
    type=click.Path(dir_okay=False),
    help="A backtest document (backtest --json) to show in the report and the JSON summary.",
)
def command(
    source: str,
    engine_a: str,
    engine_b: str,
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
    backtest_path: str | None = None,
) -> int:
    """Run engines A and B on SOURCE and compare B's schedule against A's.

    SOURCE is a snapshot directory, a YAML scenario, a bundled scenario name
    or a postgresql:// DSN (read only). Engines: legacy[:memory|:sql],
    new[:parity|:default], or package.module:factory[:option].

    Exit status: 0 when the real divergences are within --budget, 1 when
    they exceed it, 2 on bad input or usage, 3 on a crash.
    """
    from harness.cli.commands.record import parse_as_of
    from harness.comparison.compare import compare_schedules
    from harness.data.sources import open_input

    settings, waivers = load_config(tolerances_path, waivers_path, table_rows)
    backtest = None
    if backtest_path is not None:
        from reports.backtest_report import read_backtest_json

        backtest = read_backtest_json(backtest_path)
    a, b = resolve_engine(engine_a), resolve_engine(engine_b)
    moment = parse_as_of(as_of)
    progress = Progress(5)
    # One snapshot for both engines and the noise reruns; the full dataset
    # only if an engine needs every run in memory.
    with open_input(source, campaign=campaign, codebases=codebases or None, as_of=moment) as opened:
        with progress.step(f"reading {source}"):
            opened.prepare(a, b)
        require_candidates(opened.rows(), source, campaign, codebases, allow_empty)
        with progress.step(f"running A ({engine_a})"):
            schedule_a = run_engine(a, opened)
        with ExitStack() as running:
            # A's self-runs, on the other core while B runs; started after A,
            # they inherit what A's run keeps for them (the legacy's run index)
            self_runs = (
                running.enter_context(start_self_runs(a, opened, seed, settings, parallel=parallel))
                if noise
                else False
            )
            with progress.step(f"running B ({engine_b})"):
                schedule_b = run_engine(b, opened)
            what = "noise baseline" if noise else "order run"
            with progress.step(f"{what} ({engine_a} against itself)"):
                # without --noise, still the order run: row order is never a finding
                profile = measure(
                    a,
                    opened.dataset_for(a),
                    schedule_a,
                    seed,
                    settings,
                    schedule_b,
                    self_runs=self_runs,
                )
    with progress.step("comparing"):
        comparison = compare_schedules(
            schedule_a,
            schedule_b,
            settings=settings,
            noise=profile,
            waivers=waivers,
            budget=budget,
        )
    write_outputs(comparison, report_path, json_path, junit_path, backtest)
    if json_path != "-":
        click.echo(verdict_text(comparison))
    return EXIT_OK if comparison.passed else EXIT_DIVERGED
