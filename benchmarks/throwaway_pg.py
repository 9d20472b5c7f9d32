"""A throwaway PostgreSQL server for benchmarks: initdb in a temporary directory.

Tuned for throughput, not durability (fsync off); run as ``postgres`` when
the benchmark runs as root, since PostgreSQL refuses root. Removed on exit.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c listen_addresses=127.0.0.1 -c shared_buffers=512MB -c work_mem=64MB "
    "-c maintenance_work_mem=512MB"
)


def _pg_ctl() -> str:
    found = shutil.which("pg_ctl") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)), None
    )
    if found is None:
        raise SystemExit("pg_ctl not found: install the Debian package postgresql-15")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def throwaway_postgres(dbname: str = "bench") -> Iterator[str]:
    """Start a server, create ``dbname``, yield its DSN; stop and delete on exit."""
    pg_ctl = _pg_ctl()
    initdb = str(Path(pg_ctl).with_name("initdb"))
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    data = root / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    start = ["-o", f"-p {port} -k {root} {OPTIONS}", "-w", "-l", str(root / "log"), "start"]
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), *start],
        check=True,
        capture_output=True,
    )
    try:
        import psycopg

        dsn = f"postgresql://postgres@127.0.0.1:{port}"
        with psycopg.connect(f"{dsn}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{dbname}"')
        yield f"{dsn}/{dbname}"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)
