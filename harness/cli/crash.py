"""What the user is told when something goes wrong that is not their input.

A crash is one line: what raised, whose bug it is (janitor-shadow's, or a
third-party engine's when the innermost frame that is anybody's code belongs
to an engine loaded by ``module:factory``), and the file the traceback was
written to. Passwords never reach stderr or that file: every message goes
through :func:`redact_secrets` (connection strings travel inside error
messages from libpq, from paths that were not paths, from URLs).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

from harness.errors import EngineCrash

#: Top-level packages of this project: code in them is janitor-shadow's.
OWN_PACKAGES = frozenset({"harness", "engines", "scenarios", "reports"})

#: Module prefix → the engine spec that loaded it (filled by ``get_engine``).
_EXTERNAL_ENGINES: dict[str, str] = {}

_SECRETS = (
    # URL user info: scheme://user:PASSWORD@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)[^\s@]*(@)"), r"\1***\2"),
    # URL query or libpq key=value: password=..., quoted or not
    (
        re.compile(
            r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]*?(?=:?(?:\s|&|$)))", re.IGNORECASE
        ),
        r"\1***",
    ),
)


def redact_secrets(text: str) -> str:
    """``text`` with every connection-string password replaced by ``***``."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def note_external_engine(module: str, spec: str) -> None:
    """Remember that ``module`` (and its package, if not ours) is engine ``spec``'s code."""
    top = module.split(".")[0]
    _EXTERNAL_ENGINES[module if top in OWN_PACKAGES else top] = spec


def _engine_owning(module: str) -> str | None:
    for prefix, spec in _EXTERNAL_ENGINES.items():
        if module == prefix or module.startswith(prefix + "."):
            return spec
    return None


def blamed_engine(exc: BaseException) -> str | None:
    """The spec of the third-party engine whose code raised ``exc``, or ``None``.

    Walks from the innermost frame outwards to the first frame that is
    either ours or an external engine's; library frames (numpy, the
    standard library) in between belong to whoever called them."""
    if isinstance(exc, EngineCrash) and exc.__cause__ is not None:
        exc = exc.__cause__
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    for frame in reversed(frames):
        module = str(frame.f_globals.get("__name__", ""))
        spec = _engine_owning(module)
        if spec is not None:
            return spec
        if module.split(".")[0] in OWN_PACKAGES:
            return None
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    if len(line) > 200:
        line = line[:197] + "..."
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def describe(exc: BaseException) -> str:
    """What raised and whose bug it is, in one line (no file name yet)."""
    engine = blamed_engine(exc)
    if isinstance(exc, EngineCrash):
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        what = f"engine {exc.engine!r} crashed: {_first_line(cause)}"
    else:
        what = f"internal error: {_first_line(exc)}"
    if engine is not None:
        module = next((p for p, s in _EXTERNAL_ENGINES.items() if s == engine), "?")
        name = exc.engine if isinstance(exc, EngineCrash) else engine
        whose = f"a bug in the third-party engine {name!r} (module {module}), not in janitor-shadow"
    else:
        whose = "a bug in janitor-shadow"
    return redact_secrets(f"{what}; this is {whose}")


def write_traceback(exc: BaseException, argv: list[str]) -> Path | None:
    """The traceback (passwords masked) in a new file under the temp dir; ``None`` if
    even that fails."""
    lines = [
        "janitor-shadow crash report",
        f"time: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
        f"python: {sys.version.split()[0]} ({sys.executable})",
        f"argv: {argv!r}",
        "",
        *traceback.format_exception(exc),
    ]
    try:
        fd, name = tempfile.mkstemp(prefix="janitor-shadow-crash-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as out:
            out.write(redact_secrets("\n".join(line.rstrip("\n") for line in lines)) + "\n")
    except OSError:
        return None
    return Path(name)


def format_traceback(exc: BaseException) -> str:
    return redact_secrets("".join(traceback.format_exception(exc)))
