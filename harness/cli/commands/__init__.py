"""One module per CLI command; each exposes a click ``command``."""

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])


def source_filters(function: F) -> F:
    """``--campaign`` and ``--codebase``: the live reader's filters, same words everywhere."""
    function = click.option(
        "--codebase", "codebases", multiple=True, help="Only these codebases (repeatable)."
    )(function)
    return click.option("--campaign", help="Only this campaign's candidates.")(function)


#: ``--as-of``: the same words on every command that decides.
AS_OF_HELP = "Decide as if now were this naive-UTC time (default: the source's own moment)."


def as_of_option(function: F) -> F:
    """``--as-of T``, parsed by :func:`harness.cli.commands.record.parse_as_of` in the command."""
    return click.option("--as-of", "as_of", help=AS_OF_HELP)(function)


class SourceArgument(click.ParamType):
    """SOURCE or DSN on the command line: a connection URL is parsed before any
    work, so a malformed one is a usage error (exit 2), never a crash later.
    Paths and scenario names pass through unchanged (their loaders check them)."""

    name = "source"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value)
        if text.startswith(("postgresql://", "postgres://")):
            problem = connection_url_problem(text)
            if problem is not None:
                from harness.cli.crash import redact_secrets

                self.fail(redact_secrets(f"invalid connection URL: {problem}"), param, ctx)
        return value


def connection_url_problem(url: str) -> str | None:
    """Why libpq (or the URL syntax) rejects ``url``, or ``None`` when it parses."""
    from urllib.parse import urlsplit

    try:
        urlsplit(url).port  # noqa: B018 (raises on a malformed host or port)
    except ValueError as exc:
        return str(exc)
    from psycopg import Error
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except Error as exc:
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    return None


SOURCE = SourceArgument()


def output_path(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An output file's directory is checked before the work, not after it."""
    if value is None or value == "-":
        return value
    import os

    parent = os.path.dirname(os.path.abspath(value))
    if not os.path.isdir(parent):
        raise click.BadParameter(f"cannot write {value}: the directory {parent} does not exist")
    if os.path.isdir(value):
        raise click.BadParameter(f"cannot write {value}: it is a directory")
    return value
