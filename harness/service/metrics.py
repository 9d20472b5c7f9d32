"""The shadow service's Prometheus metrics: the plan's ``SchedulingMetrics`` plus drift.

One registry: the plan's names (``janitor_scheduler_…``, fed with both
engines' runs every cycle, labelled by engine) and the service's own
``janitor_shadow_…`` figures of the last completed cycle. Gauges that carry
a field or campaign label are cleared before each cycle's values are set, so
a campaign that stopped diverging disappears instead of showing its old count
forever, and the label sets stay bounded (memory stays flat).

No value that could hold a secret (DSN, Redis URL) is ever a label.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from engines.new.metrics import SchedulingMetrics

NAMESPACE = "janitor_shadow"
CYCLE_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0)


class ServiceMetrics(SchedulingMetrics):
    """``SchedulingMetrics`` and the service's gauges, counters and histogram."""

    def __init__(self) -> None:
        super().__init__()
        r, ns = self.registry, NAMESPACE
        self.cycles = Counter(
            "cycles",
            "Cycles by outcome (ok, failed, abandoned).",
            ("status",),
            namespace=ns,
            registry=r,
        )
        self.failed_cycles = Counter(
            "failed_cycles", "Cycles that could not complete.", namespace=ns, registry=r
        )
        self.new_engine_failed_cycles = Counter(
            "new_engine_failed_cycles",
            "Cycles where the new engine raised (caught; the legacy's answer kept).",
            namespace=ns,
            registry=r,
        )
        self.cycle_duration = Histogram(
            "cycle_duration_seconds",
            "Wall time of one completed cycle.",
            namespace=ns,
            registry=r,
            buckets=CYCLE_BUCKETS,
        )
        self.last_cycle_duration = Gauge(
            "last_cycle_duration_seconds", "Wall time of the last cycle.", namespace=ns, registry=r
        )
        self.candidates = Gauge(
            "candidates", "Candidates in the last cycle's snapshot.", namespace=ns, registry=r
        )
        self.divergent_candidates = Gauge(
            "divergent_candidates",
            "Candidates diverging in the last cycle, by status (real, noise, waived).",
            ("status",),
            namespace=ns,
            registry=r,
        )
        self.field_divergences = Gauge(
            "field_divergences",
            "Divergent candidates per field in the last cycle.",
            ("field",),
            namespace=ns,
            registry=r,
        )
        self.campaign_divergences = Gauge(
            "campaign_divergences",
            "Divergent candidates per campaign in the last cycle.",
            ("campaign",),
            namespace=ns,
            registry=r,
        )
        self.rank_agreement = Gauge(
            "rank_agreement",
            "Queue order agreement of the new engine's queue with the legacy's or "
            "with production's (measure: kendall_tau_b, rbo).",
            ("against", "measure"),
            namespace=ns,
            registry=r,
        )
        self.queue_presence = Gauge(
            "queue_presence",
            "Queue items by side in the last cycle (against, side: common, only_reference, only_new).",
            ("against", "side"),
            namespace=ns,
            registry=r,
        )
        self.last_success = Gauge(
            "last_success_timestamp_seconds",
            "When the last cycle completed (Unix time).",
            namespace=ns,
            registry=r,
        )
        self.heartbeat = Gauge(
            "heartbeat_timestamp_seconds",
            "When the service loop last showed it is alive (Unix time).",
            namespace=ns,
            registry=r,
        )
        self.pruned_records = Counter(
            "pruned_records", "History records dropped by retention.", namespace=ns, registry=r
        )

    def beat(self) -> None:
        self.heartbeat.set(time.time())

    def record_cycle(self, record: Mapping[str, Any]) -> None:
        """Set the gauges and counters from one history record."""
        status = str(record.get("status"))
        self.cycles.labels(status).inc()
        if status == "failed":
            self.failed_cycles.inc()
            return
        if status != "ok":
            return
        total = float(record.get("durations", {}).get("total", 0.0))
        self.cycle_duration.observe(total)
        self.last_cycle_duration.set(total)
        self.last_success.set(time.time())
        self.candidates.set(int(record.get("candidates") or 0))
        if record.get("new_error"):
            self.new_engine_failed_cycles.inc()
        divergences = record.get("divergences") or {}
        for name in ("real", "noise", "waived"):
            self.divergent_candidates.labels(name).set(int(divergences.get(name, 0)))
        self.field_divergences.clear()
        for name, count in (record.get("fields") or {}).items():
            self.field_divergences.labels(name).set(count)
        self.campaign_divergences.clear()
        for name, counts in (record.get("campaigns") or {}).items():
            self.campaign_divergences.labels(name).set(counts.get("divergent", 0))
        self.rank_agreement.clear()
        self.queue_presence.clear()
        for against, key, only_ref in (
            ("legacy", "rank", "only_legacy"),
            ("production", "production", "only_production"),
        ):
            rank = record.get(key)
            if not rank:
                continue
            for measure in ("kendall_tau_b", "rbo"):
                if rank.get(measure) is not None:
                    self.rank_agreement.labels(against, measure).set(rank[measure])
            self.queue_presence.labels(against, "common").set(rank.get("common", 0))
            self.queue_presence.labels(against, "only_reference").set(rank.get(only_ref, 0))
            self.queue_presence.labels(against, "only_new").set(rank.get("only_new", 0))
