#!/usr/bin/env python3
"""pg_ctl for a test run started as root: PostgreSQL refuses to run as root.

pytest-postgresql calls this instead of pg_ctl (``tests/conftest.py`` picks it
when the suite runs as root, as CI does). It gives the ``postgres`` system user
what it needs inside pytest's private temporary directories — traverse
permission on their ancestors, ownership of the data directory and the log
file — and then becomes that user and executes the real pg_ctl, whose path
is in ``JANITOR_SHADOW_PG_CTL``.
"""

from __future__ import annotations

import os
import pwd
import stat
import sys
from pathlib import Path


def _option(args: list[str], *names: str) -> str | None:
    for index, arg in enumerate(args[:-1]):
        if arg in names:
            return args[index + 1]
    return None


def _allow_traverse(path: Path) -> None:
    """Let other users pass through (not list) every ancestor of ``path``."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, stat.S_IMODE(mode) | stat.S_IXOTH)


def main() -> None:
    real = os.environ["JANITOR_SHADOW_PG_CTL"]
    args = sys.argv[1:]
    user = pwd.getpwnam(os.environ.get("JANITOR_SHADOW_PG_USER", "postgres"))
    if os.getuid() == 0:
        datadir = _option(args, "-D", "--pgdata")
        if datadir and args and args[0] == "initdb":
            path = Path(datadir)
            path.mkdir(mode=0o700, exist_ok=True)
            os.chown(path, user.pw_uid, user.pw_gid)
            _allow_traverse(path)
        logfile = _option(args, "-l", "--log")
        if logfile:
            log = Path(logfile)
            log.touch(exist_ok=True)
            os.chown(log, user.pw_uid, user.pw_gid)
            _allow_traverse(log)
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        os.environ["HOME"] = user.pw_dir
        os.chdir("/")  # the caller's directory may be closed to this user
    os.execv(real, [real, *args])


if __name__ == "__main__":
    main()
