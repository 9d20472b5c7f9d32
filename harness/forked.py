"""One function call in a forked child, for work that can use the second core.

A forked child inherits everything the parent has loaded (a dataset of two
million runs, an index built from it) without copying or pickling it; only
its answer comes back, pickled. That is the whole trick, and its conditions:

* ``fork`` must exist (Linux, macOS) and a second core must be free;
* no other thread may be running: one holding a lock at the fork would leave
  it held for ever in the child, so :func:`can_fork` says no then and callers
  do the work themselves;
* the child must not touch what it shares with the parent and cannot share
  (a database connection's socket): that is the caller's to ensure;
* Ctrl-C and SIGTERM are blocked across the fork, so that the child never
  runs the parent's handlers: it ignores Ctrl-C (the parent handles it and
  stops the child) and dies of SIGTERM.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: The signals that stop a command.
_STOPPING = {signal.SIGINT, signal.SIGTERM}


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    """A child process can run beside this one: fork exists, a second core
    does, and no other thread could be holding a lock at the fork."""
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and usable_cores() >= 2
        and threading.active_count() == 1
    )


class ChildFailed(RuntimeError):
    """The child's exception, when it could not be sent back as itself."""


class ChildDied(RuntimeError):
    """The child ended without an answer (killed, out of memory, ``os._exit``)."""


def _child(send: Connection, call: Callable[..., Any], args: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING)
    try:
        # pickled here, so that an answer that cannot be is this call's failure
        message = pickle.dumps(("value", call(*args)), pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # the parent raises it again
        try:  # what the parent will unpickle: a round trip, not only a dump
            pickle.loads(pickle.dumps(exc))
        except Exception:
            exc = ChildFailed("".join(traceback.format_exception(exc)).rstrip())
        message = pickle.dumps(("error", exc), pickle.HIGHEST_PROTOCOL)
    try:
        send.send_bytes(message)
    except OSError:  # the parent stopped listening: nothing is waiting for this
        pass
    finally:
        send.close()


class Forked(Generic[T]):
    """``call(*args)`` running in a forked child; :meth:`result` waits for it.

    Use it as a context manager: leaving the block stops a child nobody
    waited for. Check :func:`can_fork` first.
    """

    def __init__(self, call: Callable[..., T], *args: Any, name: str) -> None:
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(send, call, args), name=name, daemon=True)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        send.close()  # the child holds the only writer: EOF if it dies
        self._process: multiprocessing.process.BaseProcess | None = process
        self._receive: Connection | None = receive

    def result(self) -> T:
        """The child's return value; its exception raised here, or
        :class:`ChildDied` when it ended without an answer."""
        if self._receive is None:
            raise ChildDied("the child's answer was already taken, or it was stopped")
        try:
            kind, payload = pickle.loads(self._receive.recv_bytes())
        except (EOFError, OSError):
            raise ChildDied(
                f"the child ended without an answer (exit code {self.stop()})"
            ) from None
        self.stop()
        if kind == "error":
            raise payload
        value: T = payload
        return value

    def stop(self) -> int | None:
        """Wait briefly for a child that has answered, stop one that has not;
        its exit code."""
        process, receive = self._process, self._receive
        self._process = self._receive = None
        if receive is not None:
            receive.close()
        if process is None:
            return None
        if process.is_alive():
            process.join(timeout=5)
        if process.is_alive():
            process.terminate()
            process.join()
        return process.exitcode

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(self, *_exc: object) -> None:
        # a child still running here was not waited for: stop it now
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
        self.stop()
