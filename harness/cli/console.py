"""What the tool says on stderr besides its results: logs, progress, verbosity.

Stdout carries results (queue heads, verdicts, JSON with ``-``); stderr
carries everything else, so that a pipe never mixes the two. Progress is
shown only when stderr is a terminal (never in CI logs) and not ``-q``; log
lines carry ISO-8601 UTC times (``2026-12-05T01:02:03.456Z``), whatever the
machine's time zone, so logs of several machines sort together.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

import click


@dataclass
class Verbosity:
    """Set by the global options (``-q``/``-v``/``--debug``) before a command runs."""

    level: int = 0  # -q: -1, -qq: -2; -v: 1, -vv: 2
    debug: bool = False


VERBOSITY = Verbosity()


def iso_utc(seconds: float) -> str:
    """``seconds`` since the epoch as ISO-8601 UTC with milliseconds and a ``Z``."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{int(seconds % 1 * 1000):03d}Z"


class UtcFormatter(logging.Formatter):
    """``TIME LEVEL logger: message`` with TIME in ISO-8601 UTC."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_utc(record.created)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (tests swap it), passwords masked."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(UtcFormatter())

    def format(self, record: logging.LogRecord) -> str:
        from harness.cli.crash import redact_secrets

        return redact_secrets(super().format(record))

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


_HANDLER = _StderrHandler()


def log_level(verbosity: int) -> int:
    """-qq CRITICAL, -q ERROR, default WARNING, -v INFO, -vv DEBUG."""
    levels = {-2: logging.CRITICAL, -1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}
    return levels.get(max(-2, verbosity), logging.DEBUG)


def configure_logging() -> None:
    """Route every logger to stderr at the level ``VERBOSITY`` asks for (idempotent)."""
    root = logging.getLogger()
    level = log_level(VERBOSITY.level)
    _HANDLER.setLevel(level)
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    root.setLevel(level)


def reset() -> None:
    """Back to the defaults (each ``main()`` call starts here; tests call it many times)."""
    VERBOSITY.level = 0
    VERBOSITY.debug = False


def progress_enabled() -> bool:
    return VERBOSITY.level >= 0 and sys.stderr.isatty()


class Progress:
    """Step-by-step progress on stderr: ``[2/3] running new:parity… 4.1s``."""

    def __init__(self, total: int, *, enabled: bool | None = None) -> None:
        self.total = total
        self.done = 0
        self.enabled = progress_enabled() if enabled is None else enabled

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        from harness.cli.crash import redact_secrets

        label = redact_secrets(label)
        self.done += 1
        started = time.perf_counter()
        if self.enabled:
            click.echo(f"[{self.done}/{self.total}] {label}…", err=True, nl=False)
        try:
            yield
        finally:
            if self.enabled:
                click.echo(f" {time.perf_counter() - started:.1f}s", err=True)
