"""One module per CLI command; each exposes a click ``command``."""

from collections.abc import Callable
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])


def source_filters(function: F) -> F:
    """``--campaign`` and ``--codebase``: the live reader's filters, same words everywhere."""
    function = click.option(
        "--codebase", "codebases", multiple=True, help="Only these codebases (repeatable)."
    )(function)
    return click.option("--campaign", help="Only this campaign (live databases).")(function)


#: ``--as-of``: the same words on every command that decides.
AS_OF_HELP = "Decide as if now were this naive-UTC time (default: the source's own moment)."


def as_of_option(function: F) -> F:
    """``--as-of T``, parsed by :func:`harness.commands.record.parse_as_of` in the command."""
    return click.option("--as-of", "as_of", help=AS_OF_HELP)(function)
