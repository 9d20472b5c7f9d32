"""The noise self-runs, on the machine's other core while B runs.

The self-runs (:func:`~harness.comparison.noise.noise_runs`) need only the
reference engine and the dataset, not A's or B's schedule, so a comparison can
start them as soon as it has A (started then, they also inherit what A's run
keeps for reruns, such as the legacy's run index and estimates). A forked child
inherits the loaded dataset for free (copy-on-write) and sends back each run as columns
(:meth:`~harness.comparison.alignment.Side.detached`): a pickled 100,000-row
Schedule costs seconds to load, its columns a fraction of one.

Forking is only safe in a process with no other thread (a lock held by one
would stay held in the child), and useless with one core or with an engine
that reads the command's database connection, which the child must not share;
in those cases the runs happen in the caller, when asked for, as before.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Any

from engines.base import Engine
from engines.model import Dataset
from harness.comparison.alignment import Side, side_from_schedule
from harness.comparison.noise import noise_runs

log = logging.getLogger("harness.compare")

Runs = list[tuple[str, Side]]


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


#: The signals that stop a command.
_STOPPING = {signal.SIGINT, signal.SIGTERM}


class ChildFailed(RuntimeError):
    """The child's exception, when it could not be sent back as itself."""


def _child(send: Connection, engine: Engine, dataset: Dataset, seed: int, shuffles: int) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and
    # stops this child with SIGTERM, which must not run the parent's handlers.
    # Both were blocked since the fork, so none of them ran before this.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING)
    try:
        runs = noise_runs(engine, dataset, seed=seed, shuffles=shuffles)
        message: tuple[str, Any] = (
            "runs",
            [(label, side_from_schedule(run).detached()) for label, run in runs],
        )
    except BaseException as exc:  # the parent re-raises it
        try:  # what the parent will unpickle: a round trip, not only a dump
            pickle.loads(pickle.dumps(exc))
        except Exception:
            exc = ChildFailed("".join(traceback.format_exception(exc)).rstrip())
        message = ("error", exc)
    try:
        send.send(message)
    except OSError:  # the parent stopped listening: nothing is waiting for this
        pass
    finally:
        send.close()


class SelfRuns:
    """The self-runs of one engine on one dataset, started now, collected by
    :meth:`result`; use it as a context manager so that a child nobody waits
    for is stopped."""

    def __init__(
        self,
        engine: Engine,
        dataset: Dataset,
        *,
        seed: int,
        shuffles: int,
        parallel: bool = True,
    ) -> None:
        self.engine, self.dataset, self.seed, self.shuffles = engine, dataset, seed, shuffles
        self._process: multiprocessing.process.BaseProcess | None = None
        self._receive: Connection | None = None
        if parallel and can_fork():
            context = multiprocessing.get_context("fork")
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_child,
                args=(send, engine, dataset, seed, shuffles),
                name="janitor-shadow noise self-runs",
                daemon=True,
            )
            # blocked across the fork, so that the child never runs the
            # parent's handlers (its own are set first thing)
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
            try:
                process.start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            send.close()  # the child holds the only writer: EOF if it dies
            self._process, self._receive = process, receive

    @property
    def in_child(self) -> bool:
        return self._process is not None

    def result(self) -> Runs:
        """The runs, waiting for the child if there is one. A child that dies
        without an answer is not fatal: the runs are redone here."""
        if self._receive is not None:
            try:
                kind, payload = self._receive.recv()
            except (EOFError, OSError):
                log.warning(
                    "the noise self-runs' process ended without an answer (exit code %s); "
                    "running them here",
                    self._stop(),
                )
            else:
                self._stop()
                if kind == "error":
                    raise payload
                runs: Runs = payload
                return runs
        return [
            (label, side_from_schedule(run))
            for label, run in noise_runs(
                self.engine, self.dataset, seed=self.seed, shuffles=self.shuffles
            )
        ]

    def _stop(self) -> int | None:
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

    def __enter__(self) -> SelfRuns:
        return self

    def __exit__(self, *_exc: object) -> None:
        # a child still running here was not waited for: stop it now
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
        self._stop()
