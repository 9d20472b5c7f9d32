"""The service loop: bootstrap → loop (stop flag, work, heartbeat) → teardown.

* **Stopping.** The first SIGTERM (or SIGINT) sets the stop flag: a cycle
  in progress ends at its next phase boundary (an enqueue already started is
  finished, never cut), is recorded as ``abandoned``, and the service exits
  with status 0. A second signal stops at once (``StopNow``), still through
  the teardown; nothing is written that is not whole (the history is only
  ever appended one complete line at a time; report, heartbeat and pruned
  history are written to a temporary file and renamed).
* **Failures.** A cycle that fails (database or Redis gone, …) is recorded
  with its phase and error; the next attempt comes after an exponential
  backoff (``backoff.initial`` doubling up to ``backoff.max``), and the
  normal interval resumes after the first cycle that succeeds.
* **Interval.** From the start of one cycle to the start of the next; a
  cycle longer than the interval is followed by the next at once.
* **Memory.** Nothing survives a cycle but its record (no caches); a
  collection and ``malloc_trim`` after each cycle return its memory.
* **One service per state directory**: an exclusive lock on ``STATE/lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

import orjson

from harness.data.atomic import write_atomic
from harness.data.live import redact_dsn
from harness.errors import ConfigError, ShadowError
from harness.service.config import ServiceConfig
from harness.service.cycle import ShadowCycle, SnapshotOpener, open_snapshot
from harness.service.history import append_record, last_cycle, prune, read_history
from harness.service.metrics import ServiceMetrics
from harness.service.secrets import Scrubber

log = logging.getLogger("harness.service")

EXIT_OK = 0
#: ``--once`` and its one cycle failed (database or queue unreachable): not a crash (3).
EXIT_CYCLE_FAILED = 4


class StopNow(BaseException):
    """A second stop signal: leave now (through every ``finally``)."""


class ShadowService:
    def __init__(
        self,
        config: ServiceConfig,
        *,
        opener: SnapshotOpener = open_snapshot,
        once: bool = False,
    ) -> None:
        self.config = config
        self.opener = opener
        self.once = once
        self.stop = threading.Event()
        self.signals = 0
        self.scrub = Scrubber.for_urls(config.dsn, config.enqueue_to)
        self.metrics = ServiceMetrics()
        self._lock_fd: int | None = None
        self._server: Any = None
        self._previous_handlers: dict[int, Any] = {}
        self._records = 0
        self._last_prune = 0.0
        self.cycles_run = 0
        self.last_status: str | None = None

    # ------------------------------------------------------------ bootstrap

    def _bootstrap(self) -> ShadowCycle:
        state = self.config.state_dir
        try:
            state.mkdir(parents=True, exist_ok=True)
            fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"state_dir {state}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(
                f"state_dir {state}: another shadow service is using it (lock held)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        cycle = ShadowCycle(self.config, self.metrics, self.scrub, opener=self.opener)
        if self.config.metrics_port is not None:
            try:
                self._server = self.metrics.serve(
                    self.config.metrics_port, addr=self.config.metrics_address
                )
            except OSError as exc:
                raise ShadowError(
                    f"metrics.port {self.config.metrics_port}: {exc.strerror or exc}"
                ) from None
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        self._prune(force=True)
        log.info(
            "shadow service started: %s every %ss, state in %s",
            redact_dsn(self.config.dsn or ""),
            self.config.interval_s,
            state,
            extra={"pid": os.getpid()},
        )
        return cycle

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals == 1:
            log.info("signal %d: stopping after this cycle's current phase", signum)
            self.stop.set()
            return
        raise StopNow(signum)

    # ------------------------------------------------------------ loop

    def run(self) -> int:
        """Run until stopped (or ``--once``/``max_cycles``); the exit status."""
        cycle = self._bootstrap()
        try:
            self._loop(cycle)
        except StopNow:
            log.info("second signal: stopped at once")
        finally:
            # a signal during the teardown: the process ends anyway, quietly
            with contextlib.suppress(StopNow):
                self._teardown()
        if self.once and self.last_status == "failed":
            return EXIT_CYCLE_FAILED
        return EXIT_OK

    def _loop(self, cycle: ShadowCycle) -> None:
        number = last_cycle(self.config.history_path) + 1
        failures = 0
        while not self.stop.is_set():
            self._heartbeat("working", number)
            started = time.monotonic()
            record = cycle.run(number, self.stop.is_set)
            self.metrics.record_cycle(record)
            self.cycles_run += 1
            self.last_status = record["status"]
            self._log(record)
            self._keep(record)
            number += 1
            if self._finished():
                break
            if record["status"] == "failed":
                failures += 1
                wait = min(
                    self.config.backoff_initial_s * 2 ** (failures - 1), self.config.backoff_max_s
                )
                state = "backoff"
            else:
                failures = 0
                wait = max(0.0, self.config.interval_s - (time.monotonic() - started))
                state = "sleeping"
            self._heartbeat(state, number, wait)
            self.stop.wait(wait)

    def _keep(self, record: dict[str, Any]) -> None:
        """History, retention, report: a full disk or a lost directory is logged
        and retried next cycle, never the end of the service."""
        try:
            append_record(self.config.history_path, record)
            self._records += 1
            self._prune()
        except (OSError, ShadowError) as exc:
            log.error("history not written: %s", self.scrub(str(exc)))
        if self.config.report_every_cycle:
            self._write_report()

    def _finished(self) -> bool:
        if self.once:
            return True
        limit = self.config.max_cycles
        return limit is not None and self.cycles_run >= limit

    def _log(self, record: dict[str, Any]) -> None:
        status = record["status"]
        total = record["durations"].get("total", 0.0)
        if status == "ok":
            div = record.get("divergences") or {}
            rank = record.get("rank") or {}
            log.info(
                "cycle %d ok: %s candidates, %s real / %s waived divergences, "
                "tau %s, rbo %s, %.1f s%s",
                record["cycle"],
                record.get("candidates"),
                div.get("real", "-"),
                div.get("waived", "-"),
                _short(rank.get("kendall_tau_b")),
                _short(rank.get("rbo")),
                total,
                "; new engine failed" if record.get("new_error") else "",
                extra={"cycle": record["cycle"], "status": status},
            )
        else:
            log.warning(
                "cycle %d %s in %s: %s",
                record["cycle"],
                status,
                record.get("phase"),
                record.get("error"),
                extra={"cycle": record["cycle"], "status": status},
            )

    # ------------------------------------------------------------ upkeep

    def _heartbeat(self, state: str, cycle: int, wait: float = 0.0) -> None:
        self.metrics.beat()
        beat = {
            "pid": os.getpid(),
            "time": time.time(),
            "state": state,
            "cycle": cycle,
            "next_in_s": round(wait, 3),
        }
        write_atomic(self.config.state_dir / "heartbeat.json", orjson.dumps(beat) + b"\n")

    def _prune(self, *, force: bool = False) -> None:
        """Apply retention at start, when the record count passes the limit, and
        at least every tenth of the age limit (at most hourly)."""
        c = self.config
        path = c.history_path
        if not path.exists():
            return
        over = c.retention_max_records is not None and self._records > c.retention_max_records
        aged = c.retention_max_age_s is not None and (
            time.monotonic() - self._last_prune > min(3600.0, c.retention_max_age_s / 10)
        )
        if not (force or over or aged):
            return
        dropped = prune(path, max_age_s=c.retention_max_age_s, max_records=c.retention_max_records)
        self._last_prune = time.monotonic()
        if force:
            self._records = len(read_history(path).records)
        else:
            self._records -= dropped
        if dropped:
            self.metrics.pruned_records.inc(dropped)
            log.info("retention: dropped %d history record(s)", dropped)

    def _write_report(self) -> None:
        from reports.shadow_history import write_history_report

        try:
            history = read_history(self.config.history_path, last=self.config.report_max_records)
            write_history_report(history.records, self.config.report_file)
        except (OSError, ShadowError) as exc:
            log.warning("report not written: %s", self.scrub(str(exc)))

    # ------------------------------------------------------------ teardown

    def _teardown(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()
        if self._server is not None:
            server = self._server[0] if isinstance(self._server, tuple) else self._server
            shutdown = getattr(server, "shutdown", None)
            if shutdown is not None:
                shutdown()
                server.server_close()
            self._server = None
        if self._lock_fd is not None:
            try:
                (self.config.state_dir / "heartbeat.json").unlink(missing_ok=True)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None
        log.info("shadow service stopped after %d cycle(s)", self.cycles_run)


def _short(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
