"""The ``janitor-shadow`` command line.

Each command lives in its own module under ``harness/commands/`` and is
registered in :data:`COMMAND_MODULES`. Only :func:`main` turns a
:class:`~harness.errors.ShadowError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import sys

import click

from harness.errors import ShadowError

#: Exit codes: 0 fine, 1 divergence beyond the budget, 2 bad input or usage.
EXIT_OK, EXIT_DIVERGED, EXIT_USAGE = 0, 1, 2

COMMAND_MODULES = (
    "harness.commands.schedule",
    "harness.commands.record",
    "harness.commands.restore",
    "harness.commands.compare",
    "harness.commands.gate",
    "harness.commands.run",
    "harness.commands.generate",
    "harness.commands.backtest",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="janitor-shadow")
def cli() -> None:
    """Shadow-mode comparison and validation of the Debian Janitor's scheduler."""


for _module in COMMAND_MODULES:
    cli.add_command(importlib.import_module(_module).command)


def main(argv: list[str] | None = None) -> int:
    try:
        result = cli.main(args=argv, prog_name="janitor-shadow", standalone_mode=False)
    except ShadowError as exc:
        click.echo(f"janitor-shadow: error: {exc}", err=True)
        return EXIT_USAGE
    except click.exceptions.Abort:
        click.echo("janitor-shadow: aborted", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
