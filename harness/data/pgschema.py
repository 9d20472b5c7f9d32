"""The production schema's scheduling tables, for test databases and restores.

The DDL lives in ``janitor_schema.sql`` (package data) and follows
``shared/spec/janitor-schema.md`` exactly: no extra tables, columns or
functions, so code tested against it works against production unchanged.

``debversion`` needs care on Debian 12: its packaged extension script declares
the wrong negator for ``>``, which current PostgreSQL 15 point releases reject
("negator operator >= is already the negator of operator <").
:func:`install_debversion` tries ``CREATE EXTENSION`` and, on exactly that
error, runs the packaged script as plain SQL with the negator corrected.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

#: What PostgreSQL says about the packaged script's wrong negator.
NEGATOR_CONFLICT = "is already the negator of operator"
#: The ``>`` operator block with its wrong ``NEGATOR = >=``.
_GT_NEGATOR = re.compile(
    r"(CREATE\s+OPERATOR\s+>\s*\((?:(?!\);).)*?NEGATOR\s*=\s*)>=", re.DOTALL | re.IGNORECASE
)

ALL_DEBIAN_VERSIONS_DDL = (
    "CREATE TABLE all_debian_versions (source text, distribution text, version debversion)"
)


class DebversionUnavailable(RuntimeError):
    """The debversion extension's files are not installed on the server's machine."""


def schema_sql() -> str:
    return (
        resources.files("harness.data").joinpath("janitor_schema.sql").read_text(encoding="utf-8")
    )


def _sharedirs(conn: psycopg.Connection) -> list[Path]:
    """Where the server keeps extension scripts, most authoritative first."""
    found: list[Path] = []
    try:
        with conn.transaction():
            row = conn.execute("SELECT setting FROM pg_config WHERE name = 'SHAREDIR'").fetchone()
        if row:
            found.append(Path(row[0]))
    except psycopg.Error:
        pass  # pg_config is for superusers only; fall back to the usual places
    major = conn.info.server_version // 10000
    found.append(Path(f"/usr/share/postgresql/{major}"))
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--sharedir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            found.append(Path(result.stdout.strip()))
    return found


def debversion_script(conn: psycopg.Connection) -> Path:
    """The packaged ``debversion--<default_version>.sql`` for this server."""
    row = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'debversion'"
    ).fetchone()
    if row is None:
        raise DebversionUnavailable(
            "the debversion extension is not installed for this PostgreSQL server "
            f"(install the Debian package postgresql-{conn.info.server_version // 10000}-debversion)"
        )
    version = row[0]
    for sharedir in _sharedirs(conn):
        script = sharedir / "extension" / f"debversion--{version}.sql"
        if script.is_file():
            return script
    raise DebversionUnavailable(f"cannot find debversion--{version}.sql on this machine")


def corrected_debversion_sql(script_text: str) -> str:
    """The packaged script as plain SQL: module path filled in, ``>``'s negator fixed."""
    lines = [line for line in script_text.splitlines() if not line.lstrip().startswith("\\echo")]
    text = "\n".join(lines).replace("MODULE_PATHNAME", "$libdir/debversion")
    text, count = _GT_NEGATOR.subn(r"\1<=", text)
    if count != 1:
        log.warning("debversion script: expected one wrong negator on '>', found %d", count)
    return text


def debversion_installed(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regtype('debversion') IS NOT NULL").fetchone() == (True,)


def install_debversion(conn: psycopg.Connection) -> str:
    """Make the ``debversion`` type available in the connected database.

    Returns how: ``"present"``, ``"extension"`` or ``"script"`` (the fallback).
    Runs inside a savepoint, so it can be called within a larger transaction.
    """
    if debversion_installed(conn):
        return "present"
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION debversion")
        return "extension"
    except psycopg.Error as exc:
        if NEGATOR_CONFLICT not in str(exc):
            if isinstance(exc, psycopg.errors.UndefinedFile | psycopg.errors.FeatureNotSupported):
                raise DebversionUnavailable(str(exc).strip()) from exc
            raise
        first_line = str(exc).strip().splitlines()[0]
        log.warning(
            "CREATE EXTENSION debversion failed (%s); installing the packaged script as "
            "plain SQL with the negator of '>' corrected to '<='",
            first_line,
        )
    script = debversion_script(conn)
    with conn.transaction():
        conn.execute(corrected_debversion_sql(script.read_text(encoding="utf-8")).encode())
    log.info("debversion installed from %s", script)
    return "script"


def create_janitor_schema(conn: psycopg.Connection, *, with_debian_versions: bool = True) -> None:
    """Create the scheduling tables (and ``all_debian_versions`` unless told not to)."""
    with conn.transaction():
        conn.execute(schema_sql().encode())
        if with_debian_versions:
            install_debversion(conn)
            conn.execute(ALL_DEBIAN_VERSIONS_DDL)


def is_empty(conn: psycopg.Connection) -> bool:
    """No rows in any of the scheduling tables (a restore refuses anything else)."""
    for table in ("codebase", "candidate", "run", "queue", "named_publish_policy", "change_set"):
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
        if conn.execute(query).fetchone() != (False,):
            return False
    if conn.execute("SELECT to_regclass('all_debian_versions') IS NOT NULL").fetchone() == (True,):
        row = conn.execute("SELECT EXISTS (SELECT 1 FROM all_debian_versions)").fetchone()
        if row != (False,):
            return False
    return True
