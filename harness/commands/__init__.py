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
    return click.option("--campaign", help="Only this campaign's candidates.")(function)
