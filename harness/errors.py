"""The harness's exceptions, and the exit code each one ends in.

    Exception
    ├── ShadowError             bad input or usage: one line, exit 2
    │   ├── InputError          a file, record or field that is not what was expected
    │   ├── ConfigError         a configuration file or key that is invalid
    │   ├── SourceError         a data source that cannot be opened or read
    │   └── EngineNotFound      an engine spec that names no engine (or a factory
    │                           of the wrong shape)
    ├── EngineCrash             an engine raised instead of deciding: exit 3, blamed
    │                           on the engine's own code (ours or a third party's)
    └── anything else           a bug in janitor-shadow: exit 3, traceback to a file
    KeyboardInterrupt           Ctrl-C: exit 130, nothing partial left behind

Exit code 1 is not an exception: it is a comparison's verdict ("diverged")
and nothing else. Lower-level errors (OSError, YAML and JSON parse errors,
psycopg errors) are translated into ShadowErrors at the boundary, with
``raise … from exc``; what is not translated is, by definition, a bug.
"""

from __future__ import annotations

#: 0 fine; 1 diverged beyond the budget; 2 bad input or usage; 3 a crash (a
#: bug); 130 interrupted (128 + SIGINT, the shell's convention).
EXIT_OK, EXIT_DIVERGED, EXIT_USAGE, EXIT_CRASH, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class ShadowError(Exception):
    """Base class: a user-facing problem, reported as one line."""


class InputError(ShadowError):
    """Malformed input: says which file, which record and which field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        record: int | str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.record = record
        self.field = field
        where = []
        if file is not None:
            where.append(str(file))
        if record is not None:
            where.append(f"record {record}")
        if field is not None:
            where.append(f"field {field!r}")
        message = " ".join(message.split()) if "\n" in message else message  # one line, always
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class ConfigError(ShadowError):
    """An invalid configuration: names the file and the key."""


class SourceError(ShadowError):
    """A data source that cannot be opened or read."""


class EngineNotFound(ShadowError):
    """An engine specification that names no engine."""


class EngineCrash(Exception):
    """An engine raised instead of returning a schedule (the cause is chained).

    Not a ShadowError: the input may be fine and the engine wrong, so it is
    reported as a crash, naming the engine whose code raised."""

    def __init__(self, message: str, *, engine: str) -> None:
        super().__init__(message)
        self.engine = engine
