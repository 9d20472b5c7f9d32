"""Outputs that appear whole or not at all.

Every file and directory the tool writes is first written under a hidden
temporary name beside its target (same directory, so same file system) and
then renamed into place: a reader, a CI job or the next run sees either the
old content (or nothing) or the complete new one, whatever happens in
between: an exception, Ctrl-C, SIGTERM, a full disk.

The temporary names say what they are (``.schedule.json.4711-1a2b.janitor-shadow-tmp``).
Only SIGKILL (or a power cut) can leave one behind; the next write of the
same target removes those whose process is gone.

Files are not fsync'ed: the promise is about interrupted writers, not about
power loss, and syncing a 100 MB schedule costs more than writing it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from harness.errors import InputError

TEMP_SUFFIX = ".janitor-shadow-tmp"


def refuse_existing(path: str | os.PathLike[str], *, directory: bool = False) -> None:
    """The "refusing to overwrite" check, to be made before the work starts.

    A directory target may exist if it is empty (it is replaced by the rename)."""
    target = Path(path)
    if directory:
        occupied = any(target.iterdir()) if target.is_dir() else target.exists()
        if occupied:
            raise InputError("refusing to overwrite an existing snapshot", file=str(path))
    elif target.exists() or target.is_symlink():
        raise InputError("refusing to overwrite an existing file", file=str(path))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return True
    return True


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


def sweep_stale(target: Path) -> None:
    """Remove temporaries of ``target`` left by writers that were killed."""
    prefix = f".{target.name}."
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(TEMP_SUFFIX)):
            continue
        pid_text = name[len(prefix) : -len(TEMP_SUFFIX)].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            _remove(Path(entry.path))


def temp_path(target: Path) -> Path:
    """A fresh hidden name beside ``target`` naming this process."""
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _cannot_write(path: Path, exc: OSError) -> InputError:
    return InputError(f"cannot write: {exc.strerror or exc}", file=str(path))


def _publish_file(temp: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)  # fails if target exists: no window for a race
    except FileExistsError:
        raise InputError("refusing to overwrite an existing file", file=str(target)) from None
    except OSError:  # no hard links on this file system
        if target.exists():
            raise InputError("refusing to overwrite an existing file", file=str(target)) from None
        os.replace(temp, target)
        return
    temp.unlink()


@contextmanager
def atomic_file(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """A binary file opened for writing that becomes ``path`` only when the
    block ends without an exception; otherwise it is removed. ``overwrite=False``
    refuses an existing ``path`` (checked again at the rename: no race)."""
    target = Path(path)
    sweep_stale(target)
    if target.is_dir():
        raise InputError("cannot write: is a directory", file=str(target))
    temp = temp_path(target)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise _cannot_write(target, exc) from exc
    try:
        handle = os.fdopen(fd, "wb")
        try:
            with handle:
                yield handle
        except OSError as exc:
            raise _cannot_write(target, exc) from exc
        try:
            _publish_file(temp, target, overwrite)
        except OSError as exc:
            raise _cannot_write(target, exc) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def write_atomic(
    path: str | os.PathLike[str], data: bytes | str, *, overwrite: bool = True
) -> None:
    """Write ``data`` (text is UTF-8) to ``path`` whole or not at all."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_file(path, overwrite=overwrite) as out:
        out.write(payload)


@contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """An empty staging directory that becomes ``path`` when the block ends
    without an exception (``path`` must be absent or an empty directory);
    otherwise it is removed with everything in it."""
    target = Path(path)
    sweep_stale(target)
    refuse_existing(target, directory=True)
    staging = temp_path(target)
    try:
        staging.mkdir(parents=False)
    except FileNotFoundError as exc:
        raise InputError(
            "cannot write: the parent directory does not exist", file=str(path)
        ) from exc
    except OSError as exc:
        raise _cannot_write(target, exc) from exc
    try:
        try:
            yield staging
        except OSError as exc:
            raise _cannot_write(target, exc) from exc
        try:
            os.rename(staging, target)  # replaces an empty directory, refuses a full one
        except OSError as exc:
            if target.exists():
                raise InputError(
                    "refusing to overwrite an existing snapshot", file=str(path)
                ) from exc
            raise _cannot_write(target, exc) from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
