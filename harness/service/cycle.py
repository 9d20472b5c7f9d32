"""One shadow cycle: snapshot → both engines → comparisons → one history record.

A cycle reads the database once, in one ``READ ONLY, REPEATABLE READ``
transaction, and both engines decide from that one in-memory snapshot (so
they see the same data, and neither opens a transaction of its own). The
legacy's answer is the one kept; the new engine's exception is caught and
recorded. The comparator (tolerances, waivers) compares the two, and the
new engine's queue is compared with the queue production holds.

Two seams keep what changes under this module small: :func:`read_snapshot`
(how a snapshot is read) and :func:`run_engines` (how the engines are
orchestrated). Enqueue goes through :func:`enqueue_decisions`.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

from engines.base import Engine, get_engine
from engines.model import Dataset, Schedule
from engines.new.orchestrator import OrchestrationMode, SchedulingOrchestrator
from harness.comparison.comparison_model import Comparison, RankMetrics
from harness.comparison.ranking import rank_metrics
from harness.comparison.shadow import HarnessComparator
from harness.comparison.tolerances import Settings, load_settings
from harness.comparison.waivers import Waiver, load_waivers
from harness.data.live import redact_dsn
from harness.errors import ConfigError
from harness.service.config import ServiceConfig
from harness.service.history import HISTORY_VERSION, utc_now
from harness.service.metrics import ServiceMetrics
from harness.service.secrets import Scrubber

log = logging.getLogger("harness.service")


class CycleAbandoned(Exception):
    """A stop was asked for: the cycle ends at a phase boundary, writing nothing."""


# ---------------------------------------------------------------- seams


@dataclass(frozen=True)
class Snapshot:
    """What one cycle reads: the dataset and the snapshot's identity."""

    dataset: Dataset
    snapshot_id: str | None


@contextmanager
def open_snapshot(dsn: str, campaign: str | None) -> Iterator[Snapshot]:
    """SEAM (snapshot): the database as one READ ONLY, REPEATABLE READ transaction
    sees it, for the length of the block (the engines run inside it).

    With the command sessions of :mod:`harness.data.sources` (``open_input``) the
    snapshot is exported and held: the dataset holds every run (the legacy
    decides from memory) and an engine that asks the database itself (the
    new engine's aggregates) joins that snapshot, so both decide from exactly
    the same rows. Without them, the whole database is read in one
    transaction and ``live_dsn`` cleared, so that no engine opens a
    transaction of its own (which would see a later state of the database).
    """
    open_input = getattr(importlib.import_module("harness.data.sources"), "open_input", None)
    if open_input is not None:
        with open_input(dsn, campaign=campaign) as source:
            yield Snapshot(source.dataset(), getattr(source.session, "snapshot", None))
        return
    from harness.data.live import read_dataset

    dataset = read_dataset(dsn, campaign=campaign)
    yield Snapshot(replace(dataset, live_dsn=None), None)


#: How a cycle opens its snapshot (tests give their own).
SnapshotOpener = Callable[[str, str | None], AbstractContextManager[Snapshot]]


@dataclass(frozen=True)
class EngineRuns:
    """Both engines' outcome: the legacy's schedule always; the new engine's,
    its failure, and the comparator's verdict when it got that far."""

    legacy: Schedule
    new: Schedule | None
    new_error: str | None
    comparison: Comparison | None
    comparison_error: str | None
    timings: dict[str, float]


def run_engines(
    legacy: Engine,
    new: Engine,
    dataset: Dataset,
    metrics: ServiceMetrics,
    comparator: HarnessComparator,
) -> EngineRuns:
    """SEAM (engines): the plan's shadow mode. The orchestrator keeps the legacy's
    schedule whatever the new engine does, catches its exceptions and compares
    the two with the harness's comparator."""
    orchestrator = SchedulingOrchestrator(
        new, legacy, OrchestrationMode.SHADOW, metrics=metrics, comparator=comparator
    )
    result = orchestrator.schedule_candidates(dataset)
    metrics.record_run(result.schedule, result.timings.get("legacy_seconds", 0.0))
    run_failure = next((f.error for f in result.failures if f.key is None), None)
    return EngineRuns(
        legacy=result.schedule,
        new=result.shadow_schedule,
        new_error=run_failure,
        comparison=result.comparison,
        comparison_error=result.comparison_error,
        timings=dict(result.timings),
    )


def enqueue_decisions(
    url: str, schedule: Schedule, should_stop: Callable[[], bool]
) -> dict[str, Any]:
    """SEAM (enqueue): write ``schedule``'s queue entries to ``url`` (Redis or a
    queue table) through the enqueue targets, in batches each wholly written or
    not at all; a stop asked for is honoured between batches. The target is
    opened for this cycle only, so a queue that went away is simply reopened
    by the next cycle."""
    from harness.enqueue import open_target

    with open_target(url) as target:
        plan = target.plan(schedule)
        result = target.apply(plan, should_stop=should_stop)
    return {
        "target": target.url,
        "engine": schedule.engine,
        "entries": len(plan.entries),
        "batches": result.batches,
        "stopped": result.stopped,
        **result.counts.to_json(),
    }


def enqueue_available() -> bool:
    """Whether this build has the enqueue targets (``harness.enqueue``)."""
    import importlib.util

    return importlib.util.find_spec("harness.enqueue") is not None


# ---------------------------------------------------------------- summaries


def rank_summary(rank: RankMetrics | None, reference: str) -> dict[str, Any] | None:
    if rank is None:
        return None
    return {
        "kendall_tau_b": rank.kendall_tau_b,
        "spearman": rank.spearman,
        "rbo": rank.rbo,
        "common": rank.common,
        f"only_{reference}": rank.only_a,
        "only_new": rank.only_b,
        "moved": rank.moved,
        "top_k": {str(t.k): t.overlap for t in rank.top_k},
    }


def comparison_summary(comparison: Comparison) -> dict[str, Any]:
    """The record's ``divergences``, ``fields``, ``campaigns`` and ``rank``."""
    counts = comparison.counts
    fields = {s.field: s.divergent for s in comparison.fields if s.divergent}
    fields.update({k: v for k, v in comparison.structure_divergences.items() if v})
    if counts.missing or counts.extra:
        fields["presence"] = counts.missing + counts.extra
    if counts.error_mismatches:
        fields["error"] = counts.error_mismatches
    return {
        "divergences": {
            "real": comparison.real,
            "noise": comparison.noise,
            "waived": comparison.waived,
            "missing": counts.missing,
            "extra": counts.extra,
            "error_mismatches": counts.error_mismatches,
            "verdict": comparison.verdict,
        },
        "fields": fields,
        "campaigns": {
            c.campaign: {"divergent": c.divergent, "real": c.real, "candidates": c.candidates}
            for c in comparison.campaigns
            if c.divergent
        },
        "rank": rank_summary(comparison.ranking, "legacy"),
    }


def resident_bytes() -> int | None:
    """The process's resident set size now (Linux), ``None`` elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def release_memory() -> None:
    """Give a cycle's garbage back: a cycle holds ~2 GB at 100,000 candidates
    (the legacy's run index included, which it keeps for reruns), and glibc
    keeps freed arenas unless asked to return them."""
    from engines.legacy.memory import forget_run_index

    forget_run_index()
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


# ---------------------------------------------------------------- the cycle


class ShadowCycle:
    """Runs cycles; built once (engines, comparator settings), run many times."""

    def __init__(
        self,
        config: ServiceConfig,
        metrics: ServiceMetrics,
        scrubber: Scrubber,
        *,
        opener: SnapshotOpener = open_snapshot,
    ) -> None:
        assert config.dsn is not None
        self.config = config
        self.dsn = config.dsn
        self.source = redact_dsn(config.dsn)
        self.metrics = metrics
        self.scrub = scrubber
        self.opener = opener
        self.legacy = get_engine(config.legacy_engine)
        self.new = get_engine(config.new_engine)
        if hasattr(self.new, "metrics"):
            self.new.metrics = metrics
        self.settings: Settings = load_settings(config.tolerances)
        waivers: tuple[Waiver, ...] = load_waivers(config.waivers) if config.waivers else ()
        self.comparator = HarnessComparator(
            settings=self.settings, waivers=waivers, source=self.source
        )
        if config.enqueue_to is not None and not enqueue_available():
            raise ConfigError(
                "enqueue.to: enqueue targets are not available in this build "
                "(leave enqueue.to unset)"
            )

    def run(self, number: int, should_stop: Callable[[], bool]) -> dict[str, Any]:
        """One cycle's record; never raises but :class:`CycleAbandoned` (and
        ``BaseException``s such as an immediate stop)."""
        record: dict[str, Any] = {
            "version": HISTORY_VERSION,
            "cycle": number,
            "started_at": utc_now(),
            "status": "ok",
            "source": self.source,
        }
        durations: dict[str, float] = {}
        record["durations"] = durations
        current = ["start"]
        started = time.perf_counter()
        cpu = time.process_time()

        @contextmanager
        def phase(name: str) -> Iterator[None]:
            if should_stop():
                raise CycleAbandoned(name)
            current[0] = name
            t0 = time.perf_counter()
            try:
                yield
            finally:
                durations[f"{name}_s"] = round(time.perf_counter() - t0, 4)
            self.metrics.beat()

        try:
            self._work(record, phase, should_stop)
        except CycleAbandoned as stop:
            record.update(status="abandoned", phase=str(stop), error="stop requested")
        except Exception as exc:
            text = str(exc).strip().splitlines()
            reason = text[0] if text else ""
            record.update(
                status="failed",
                phase=current[0],
                error=self.scrub(
                    f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
                ),
            )
            log.warning(
                "cycle %d failed in %s: %s",
                number,
                current[0],
                record["error"],
                extra={"cycle": number, "phase": current[0]},
            )
        durations["total"] = round(time.perf_counter() - started, 4)
        durations["cpu"] = round(time.process_time() - cpu, 4)
        record["finished_at"] = utc_now()
        release_memory()
        record["rss_bytes"] = resident_bytes()
        return record

    def _work(
        self,
        record: dict[str, Any],
        phase: Callable[[str], Any],
        should_stop: Callable[[], bool],
    ) -> None:
        # the snapshot is held while the engines run (an engine may read it
        # itself), and released before the rest, which works on memory only
        with ExitStack() as held:
            with phase("read"):
                snapshot = held.enter_context(self.opener(self.dsn, self.config.campaign))
            dataset = snapshot.dataset
            record["as_of"] = dataset.as_of.isoformat()
            record["snapshot_id"] = snapshot.snapshot_id
            record["candidates"] = len(dataset.candidates)
            with phase("engines"):
                runs = run_engines(self.legacy, self.new, dataset, self.metrics, self.comparator)
            del snapshot
        durations = record["durations"]
        for name in ("legacy", "new", "compare"):
            if f"{name}_seconds" in runs.timings:
                durations[f"{name}_s"] = round(runs.timings[f"{name}_seconds"], 4)
        record["new_error"] = None if runs.new_error is None else self.scrub(runs.new_error)
        record["decision_errors"] = {
            "legacy": sum(1 for d in runs.legacy.decisions if d.error is not None),
            "new": None
            if runs.new is None
            else sum(1 for d in runs.new.decisions if d.error is not None),
        }
        if runs.comparison is not None:
            record.update(comparison_summary(runs.comparison))
        if runs.comparison_error is not None:
            record["comparison_error"] = self.scrub(runs.comparison_error)

        if runs.new is not None:
            new = runs.new
            with phase("production"):
                ranking = self.settings.ranking
                production = rank_summary(
                    rank_metrics(
                        dataset.queue, new.queue, p=ranking.rbo_p, top_k=ranking.top_k, movers=0
                    ),
                    "production",
                )
                assert production is not None
                production["production_queue"] = len(dataset.queue)
                production["new_queue"] = len(new.queue)
                record["production"] = production

        if self.config.enqueue_to is not None:
            chosen = runs.legacy if self.config.enqueue_engine == "legacy" else runs.new
            if chosen is None:
                record["enqueue"] = {"skipped": "the new engine failed this cycle"}
            else:
                with phase("enqueue"):
                    record["enqueue"] = enqueue_decisions(
                        self.config.enqueue_to, chosen, should_stop
                    )
