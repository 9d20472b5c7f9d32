"""The harness's exceptions.

    ShadowError                 base: anything the CLI turns into one line and exit code 2
    ├── InputError              a file, record or field that is not what was expected
    ├── ConfigError             a configuration file or key that is invalid
    ├── SourceError             a data source that cannot be opened or read
    └── EngineNotFound          an engine name that resolves to nothing

Lower-level errors (OSError, YAML and JSON parse errors, psycopg errors) are
translated into these at the boundary, with ``raise … from exc``.
"""

from __future__ import annotations


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
