"""The ``janitor-shadow`` command line.

Each command lives in its own module under ``harness/cli/commands/`` and is
listed in :data:`COMMANDS` by name, module and one-line summary: a module is
imported only when its command runs or its own ``--help`` is asked for, so
``--help``, ``--version`` and usage errors never pay for numpy, scipy,
pyarrow, psycopg or an engine.

Only :func:`main` turns exceptions into exit codes (see
:mod:`harness.errors`): bad input one line and 2; a crash one line naming
whose bug it is and where the traceback went, 3; Ctrl-C 130. Exit code 1
comes from a command's own return value (a divergence), never from here.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, NamedTuple

import click

from harness.cli import console
from harness.errors import (
    EXIT_CRASH,
    EXIT_DIVERGED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ShadowError,
)

__all__ = ["COMMANDS", "EXIT_CRASH", "EXIT_DIVERGED", "EXIT_OK", "EXIT_USAGE", "cli", "main"]

#: stdout closed before the output was written (``| head``): 128 + SIGPIPE, as the shell says.
EXIT_BROKEN_PIPE = 141

#: click >= 8.2 raises it for a group called without a command (older ones print help).
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())

#: Setting it to anything but ``""``/``0`` is the same as ``--debug``.
DEBUG_ENV = "JANITOR_SHADOW_DEBUG"


def _short_help(summary: str, limit: int) -> str:
    """The summary cut at a word to fit ``limit`` (click deprecates its own helper)."""
    if len(summary) <= limit:
        return summary
    cut = summary[: max(limit - 3, 1)].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "..."


class LazyCommand(NamedTuple):
    module: str
    #: What ``janitor-shadow --help`` lists; a test keeps it equal to the
    #: command's own docstring summary.
    summary: str


#: The commands in the order ``--help`` lists them (the data's path through the tool).
COMMANDS: dict[str, LazyCommand] = {
    "generate": LazyCommand(
        "harness.cli.commands.generate",
        "Generate realistic Janitor-like data into OUT, and the truth it was drawn from.",
    ),
    "record": LazyCommand(
        "harness.cli.commands.record",
        "Record everything the scheduler reads from the database DSN into OUT.",
    ),
    "restore": LazyCommand(
        "harness.cli.commands.restore",
        "Load SNAPSHOT (a snapshot directory, YAML scenario, golden-vector set or "
        "bundled scenario) into the empty database DSN.",
    ),
    "schedule": LazyCommand(
        "harness.cli.commands.schedule",
        "Decide every candidate of SOURCE with one engine and print the head of the queue.",
    ),
    "compare": LazyCommand(
        "harness.cli.commands.compare",
        "Run engines A and B on SOURCE and compare B's schedule against A's.",
    ),
    "gate": LazyCommand(
        "harness.cli.commands.gate",
        "CI gate: compare a fresh schedule with a stored baseline (exit 0/1/2/3).",
    ),
    "run": LazyCommand(
        "harness.cli.commands.run",
        "Schedule SOURCE with the new engine in MODE and print the head of the resulting queue.",
    ),
    "shadow": LazyCommand(
        "harness.cli.commands.shadow",
        "Every INTERVAL, read one snapshot of DSN, run both engines, compare, record.",
    ),
    "shadow-report": LazyCommand(
        "harness.cli.commands.shadow_report",
        "Render the shadow service's HISTORY (history.jsonl) as an HTML report.",
    ),
    "enqueue": LazyCommand(
        "harness.cli.commands.enqueue",
        "Schedule SOURCE with an engine and write its queue entries to --to.",
    ),
    "backtest": LazyCommand(
        "harness.cli.commands.backtest",
        "Cut SOURCE at each --at time, let each engine decide, score against what followed.",
    ),
}

#: Kept for callers that iterate the modules.
COMMAND_MODULES = tuple(entry.module for entry in COMMANDS.values())


# ---------------------------------------------------------------- global options


def _set_debug(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        console.VERBOSITY.debug = True


def _add_verbose(_ctx: click.Context, _param: click.Parameter, value: int) -> None:
    console.VERBOSITY.level += value
    console.configure_logging()


def _add_quiet(_ctx: click.Context, _param: click.Parameter, value: int) -> None:
    console.VERBOSITY.level -= value
    console.configure_logging()


def _global_options() -> list[click.Option]:
    """``-q``, ``-v`` and ``--debug``: accepted before the command and after it."""
    return [
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_add_verbose,
            help="More log output on stderr (-vv: debug).",
        ),
        click.Option(
            ["-q", "--quiet"],
            count=True,
            expose_value=False,
            callback=_add_quiet,
            help="No progress, only errors on stderr (-qq: not even those logged).",
        ),
        click.Option(
            ["--debug"],
            is_flag=True,
            expose_value=False,
            callback=_set_debug,
            help=f"Print the traceback of a crash (also: {DEBUG_ENV}=1).",
        ),
    ]


def _with_global_options(command: click.Command) -> click.Command:
    """Give ``command`` (and a group's subcommands) the global options, once."""
    names = {p.name for p in command.params}
    if "verbose" not in names and "quiet" not in names:
        command.params.extend(_global_options())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_global_options(sub)
    return command


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (see :data:`COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        command = importlib.import_module(entry.module).command
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.module}.command is not a click command")
        return _with_global_options(command)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, _short_help(entry.summary, limit)) for name, entry in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    params=_global_options(),
)
@click.version_option(package_name="janitor-shadow")
def cli() -> None:
    """Shadow-mode comparison and validation of the Debian Janitor's scheduler.

    \b
    Exit status: 0 fine; 1 the engines diverged beyond the budget;
    2 bad input or usage; 3 a crash (a bug: the traceback's file is named);
    130 interrupted.
    """


# ---------------------------------------------------------------- main


def _error(message: str) -> None:
    from harness.cli.crash import redact_secrets

    click.echo(redact_secrets(f"janitor-shadow: {message}"), err=True)


def _debug_wanted() -> bool:
    return console.VERBOSITY.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _report_crash(exc: BaseException, argv: list[str]) -> int:
    """One line on stderr: what raised, whose bug, where the traceback went."""
    from harness.cli import crash

    line = crash.describe(exc)
    if _debug_wanted():
        click.echo(crash.format_traceback(exc), err=True, nl=False)
        _error(f"{line} (traceback above)")
        return EXIT_CRASH
    path = crash.write_traceback(exc, argv)
    where = (
        f"the traceback is in {path}"
        if path is not None
        else "the traceback could not be written to a file"
    )
    _error(f"{line}; {where} (--debug or {DEBUG_ENV}=1 prints it)")
    return EXIT_CRASH


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so that ``finally`` blocks remove temporary files."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous: Callable[..., Any] | int | None = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _quiet_broken_pipe() -> None:
    """After ``| head`` closed stdout: no second error when Python flushes at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _plain_pages_for_numpy() -> None:
    """Ask numpy, before it is imported, not to request transparent huge pages.

    With the kernel's usual ``madvise`` setting, each first touch of a huge
    page may compact memory synchronously; a command that builds arrays of
    millions of rows once, in a fresh process, then pays more than it gains
    (a tenth of a 100,000-candidate schedule here). The user's own setting
    of ``NUMPY_MADVISE_HUGEPAGE`` wins.
    """
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    _plain_pages_for_numpy()
    console.reset()
    console.configure_logging()
    try:
        # not cli.main(): it turns a closed stdout into exit 1, the code for "diverged"
        with _sigterm_as_interrupt(), cli.make_context("janitor-shadow", args) as ctx:
            result = cli.invoke(ctx)
    except ShadowError as exc:
        _error(f"error: {exc}")
        return EXIT_USAGE
    except (KeyboardInterrupt, click.exceptions.Abort):
        _error("interrupted")
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        if isinstance(exc, _NO_ARGS_IS_HELP):  # `janitor-shadow gate`: the help, then 2
            exc.show()
            return EXIT_USAGE
        # one line like every other bad input (click would print usage and a hint too)
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        _error(f"error: {' '.join(exc.format_message().split())}{hint}")
        return EXIT_USAGE
    except BrokenPipeError:
        _quiet_broken_pipe()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        return _report_crash(exc, args)
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
