"""Throwaway PostgreSQL and Redis servers for the integration tests.

The suite starts its own servers from the installed binaries, on 127.0.0.1
and free ports, in pytest's temporary directories, and removes them at the
end. Nothing on the machine is touched. A missing binary or a missing
``debversion`` extension fails the tests that need it, naming the Debian
package to install; it never skips them.

Fixtures:

* ``pg_server`` (session): the running server, with two template databases
  holding the Janitor schema (with and without ``all_debian_versions``);
* ``janitor_db`` / ``janitor_db_without_versions``: the DSN of a fresh
  database cloned from a template (``CREATE DATABASE … TEMPLATE``: fast);
* ``janitor_databases`` (session): a factory for tests that need many fresh
  databases (hypothesis examples): ``with janitor_databases.fresh() as dsn``;
* ``redis_url``: a throwaway Redis, flushed before each test.

PostgreSQL refuses to run as root; when the suite runs as root (CI does),
pg_ctl is run through ``tests/pg_ctl_as_postgres.py`` as the ``postgres``
system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import settings
from psycopg import sql
from pytest_postgresql import factories as pg_factories
from pytest_redis import factories as redis_factories

from harness.data.pgschema import DebversionUnavailable, create_janitor_schema

# Hypothesis fails an example that takes longer than a deadline (200 ms by
# default): a timing check, which this suite leaves to benchmarks/. On a slow
# or busy machine it failed examples that were only slow.
settings.register_profile("janitor-shadow", deadline=None)
settings.load_profile("janitor-shadow")

HOST = "127.0.0.1"
PG_USER = "postgres"
TEMPLATE = "janitor_template"
TEMPLATE_WITHOUT_VERSIONS = "janitor_template_noversions"
ROOT_WRAPPER = Path(__file__).with_name("pg_ctl_as_postgres.py")


def _find_pg_ctl() -> Path | None:
    """pg_ctl of a server install: ``pg_config --bindir`` first, then the Debian layout."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()) / "pg_ctl")

    def major(path: str) -> int:
        part = Path(path).parts[-3]
        return int(part) if part.isdigit() else 0

    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=major)[::-1]
    ]
    for candidate in candidates:
        if os.access(candidate, os.X_OK) and os.access(candidate.with_name("postgres"), os.X_OK):
            return candidate
    return None


def _pg_major(pg_ctl: Path | None) -> str:
    if pg_ctl is not None and pg_ctl.parts[-3].isdigit():
        return pg_ctl.parts[-3]
    found = sorted(glob.glob("/usr/lib/postgresql/*"))
    return Path(found[-1]).name if found else "15"


PG_CTL = _find_pg_ctl()
PG_MAJOR = _pg_major(PG_CTL)
REDIS_SERVER = shutil.which("redis-server")
AS_ROOT = os.geteuid() == 0

if AS_ROOT and PG_CTL is not None:
    os.environ["JANITOR_SHADOW_PG_CTL"] = str(PG_CTL)
    if not os.access(ROOT_WRAPPER, os.X_OK):
        ROOT_WRAPPER.chmod(0o755)
    _pg_executable: str | None = str(ROOT_WRAPPER)
else:
    _pg_executable = None if PG_CTL is None else str(PG_CTL)

janitor_pg_proc = pg_factories.postgresql_proc(
    executable=_pg_executable,
    host=HOST,
    port=None,
    user=PG_USER,
    dbname="janitor_shadow_tests",
    unixsocketdir=tempfile.gettempdir(),
    # Throwaway data: durability only costs time.
    postgres_options="-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
)
#: ``None``: any free port (documented; the factory's annotation omits it).
_ANY_PORT: Any = None
janitor_redis_proc = redis_factories.redis_proc(executable=REDIS_SERVER, host=HOST, port=_ANY_PORT)


def _debversion_problem() -> str | None:
    """Why the debversion extension cannot be installed here, if it cannot."""
    package = f"postgresql-{PG_MAJOR}-debversion"
    assert PG_CTL is not None
    pg_config = PG_CTL.with_name("pg_config")
    sharedir = Path(f"/usr/share/postgresql/{PG_MAJOR}")
    libdir = PG_CTL.parent.parent / "lib"
    if os.access(pg_config, os.X_OK):
        for flag in ("--sharedir", "--pkglibdir"):
            result = subprocess.run([pg_config, flag], capture_output=True, text=True)
            if result.returncode == 0 and result.stdout.strip():
                if flag == "--sharedir":
                    sharedir = Path(result.stdout.strip())
                else:
                    libdir = Path(result.stdout.strip())
    control = sharedir / "extension" / "debversion.control"
    library = libdir / "debversion.so"
    missing = [str(p) for p in (control, library) if not p.exists()]
    if missing:
        return (
            f"the PostgreSQL debversion extension is missing ({', '.join(missing)}): "
            f"install the Debian package {package}"
        )
    return None


@dataclass(frozen=True)
class PgServer:
    """A running throwaway server and its template databases."""

    host: str
    port: int
    user: str
    template: str
    template_without_versions: str

    def dsn(self, dbname: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn("postgres"), autocommit=True)


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> PgServer:
    if PG_CTL is None:
        pytest.fail(
            "PostgreSQL server binaries not found (no pg_ctl via pg_config --bindir or in "
            f"/usr/lib/postgresql/*/bin): install the Debian package postgresql-{PG_MAJOR}",
            pytrace=False,
        )
    if AS_ROOT:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            pytest.fail(
                "running as root, the suite starts PostgreSQL as the 'postgres' system user, "
                f"which does not exist: install the Debian package postgresql-{PG_MAJOR}",
                pytrace=False,
            )
    problem = _debversion_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    proc = request.getfixturevalue("janitor_pg_proc")
    server = PgServer(
        host=proc.host,
        port=int(proc.port),
        user=proc.user,
        template=TEMPLATE,
        template_without_versions=TEMPLATE_WITHOUT_VERSIONS,
    )
    with server.admin() as admin:
        for name, with_versions in ((TEMPLATE, True), (TEMPLATE_WITHOUT_VERSIONS, False)):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            with psycopg.connect(server.dsn(name)) as conn:
                try:
                    create_janitor_schema(conn, with_debian_versions=with_versions)
                except DebversionUnavailable as exc:
                    pytest.fail(
                        f"{exc}: install the Debian package postgresql-{PG_MAJOR}-debversion",
                        pytrace=False,
                    )
    return server


class JanitorDatabases:
    """Fresh databases cloned from the templates, dropped when done."""

    def __init__(self, server: PgServer) -> None:
        self.server = server

    def create(self, *, with_debian_versions: bool = True) -> str:
        name = f"janitor_{uuid.uuid4().hex[:16]}"
        template = (
            self.server.template if with_debian_versions else self.server.template_without_versions
        )
        with self.server.admin() as admin:
            # FILE_COPY (PostgreSQL 15+) clones a small database faster than WAL_LOG.
            strategy = " STRATEGY FILE_COPY" if admin.info.server_version >= 150000 else ""
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}" + strategy).format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        return self.server.dsn(name)

    def drop(self, dsn: str) -> None:
        name = dsn.rsplit("/", 1)[1]
        with self.server.admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    @contextmanager
    def fresh(self, *, with_debian_versions: bool = True) -> Iterator[str]:
        dsn = self.create(with_debian_versions=with_debian_versions)
        try:
            yield dsn
        finally:
            self.drop(dsn)


@pytest.fixture(scope="session")
def janitor_databases(pg_server: PgServer) -> JanitorDatabases:
    return JanitorDatabases(pg_server)


@pytest.fixture
def janitor_db(janitor_databases: JanitorDatabases) -> Iterator[str]:
    """DSN of a fresh database with the Janitor schema, debversion and all_debian_versions."""
    with janitor_databases.fresh() as dsn:
        yield dsn


@pytest.fixture
def janitor_db_without_versions(janitor_databases: JanitorDatabases) -> Iterator[str]:
    """Like ``janitor_db``, without ``all_debian_versions`` (as the current production schema)."""
    with janitor_databases.fresh(with_debian_versions=False) as dsn:
        yield dsn


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a throwaway Redis server, empty at the start of the test."""
    if REDIS_SERVER is None:
        pytest.fail(
            "redis-server not found: install the Debian package redis-server", pytrace=False
        )
    import redis

    proc = request.getfixturevalue("janitor_redis_proc")
    url = f"redis://{proc.host}:{proc.port}/0"
    client = redis.Redis.from_url(url)
    client.flushall()
    try:
        yield url
    finally:
        with suppress(redis.RedisError):
            client.flushall()
        client.close()
