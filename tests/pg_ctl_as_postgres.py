#!/usr/bin/env python3
"""pg_ctl for a test run started as root: PostgreSQL refuses to run as root.

pytest-postgresql calls this instead of pg_ctl (``tests/conftest.py`` picks it
when the suite runs as root, as CI does). It runs the real pg_ctl (path in
``JANITOR_SHADOW_PG_CTL``) as the ``postgres`` system user.

The server's files cannot live where pytest-postgresql puts them: pytest keeps
its temporary directories private to root, and every new pytest session
resets their permissions, which would pull the ground from under a server
another session is still running. So the data directory and log file given
on the command line are mapped to a private directory of the ``postgres``
user in the system temporary directory (one per data directory path), and
that directory is removed when the server is stopped.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def private_home(datadir: str) -> Path:
    """Where the server for ``datadir`` really keeps its files."""
    digest = hashlib.sha256(str(Path(datadir).absolute()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"janitor-shadow-pg-{digest}"


def _option_index(args: list[str], *names: str) -> int | None:
    for index, arg in enumerate(args[:-1]):
        if arg in names:
            return index + 1
    return None


def main() -> int:
    real = os.environ["JANITOR_SHADOW_PG_CTL"]
    args = sys.argv[1:]
    if os.getuid() != 0:
        os.execv(real, [real, *args])
    user = pwd.getpwnam(os.environ.get("JANITOR_SHADOW_PG_USER", "postgres"))
    data_at = _option_index(args, "-D", "--pgdata")
    home: Path | None = None
    if data_at is not None:
        given = Path(args[data_at])
        home = private_home(args[data_at])
        if args and args[0] == "initdb":
            given.mkdir(parents=True, exist_ok=True)  # what pytest-postgresql looks for
            if home.exists():
                shutil.rmtree(home)
            home.mkdir(mode=0o700)
            os.chown(home, user.pw_uid, user.pw_gid)
        args[data_at] = str(home / "data")
        log_at = _option_index(args, "-l", "--log")
        if log_at is not None:
            args[log_at] = str(home / "postgresql.log")
    env = dict(os.environ, HOME=user.pw_dir)
    result = subprocess.run(
        [real, *args],
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        env=env,
        cwd="/",
        check=False,
    )
    if args and args[0] == "stop" and result.returncode == 0 and home is not None:
        shutil.rmtree(home, ignore_errors=True)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
