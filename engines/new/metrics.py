"""The plan's ``SchedulingMetrics`` as Prometheus metrics, on a registry of their own.

A dedicated :class:`~prometheus_client.CollectorRegistry` (not the global
one) keeps a shadow run's figures apart from anything else in the process
and lets tests scrape exactly these metrics. Exposed over HTTP
(:meth:`SchedulingMetrics.serve`) or pushed to a Pushgateway
(:meth:`SchedulingMetrics.push`).

The two accuracy histograms are fed once outcomes are known
(:meth:`SchedulingMetrics.observe_outcome`): the absolute error of the
predicted success probability (0 or 1 outcome) and the ratio of the
estimated to the actual duration.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    push_to_gateway,
    start_http_server,
)

from engines.model import Schedule

NAMESPACE = "janitor_scheduler"
DURATION_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ERROR_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
RATIO_BUCKETS = (0.25, 0.5, 0.75, 0.9, 1.1, 1.25, 1.5, 2.0, 4.0, 10.0)


class SchedulingMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ("engine",)
        self.candidates_processed = Counter(
            "candidates_processed",
            "Candidates the engine decided.",
            labels,
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.scheduling_duration = Histogram(
            "scheduling_duration_seconds",
            "Wall time of one scheduling run.",
            labels,
            namespace=NAMESPACE,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.queue_items_added = Counter(
            "queue_items_added",
            "Queue adds made by the engine (inserts and updates).",
            labels,
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.success_probability_accuracy = Histogram(
            "success_probability_accuracy",
            "|predicted success probability - outcome (1 success, 0 failure)|.",
            labels,
            namespace=NAMESPACE,
            buckets=ERROR_BUCKETS,
            registry=self.registry,
        )
        self.duration_estimation_accuracy = Histogram(
            "duration_estimation_accuracy",
            "Estimated duration / actual duration.",
            labels,
            namespace=NAMESPACE,
            buckets=RATIO_BUCKETS,
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "fallback_candidates",
            "Candidates the new engine failed on and the legacy decided (fallback mode).",
            labels,
            namespace=NAMESPACE,
            registry=self.registry,
        )

        self.new_engine_failures = Counter(
            "new_engine_failures",
            "Exceptions of the new engine that fallback or shadow mode survived, "
            "by mode and scope (run: the whole run raised; candidate: one candidate failed).",
            ("engine", "mode", "scope"),
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.shadow_runs = Counter(
            "shadow_runs",
            "Shadow runs by outcome: compared, failed (the new engine or the comparison "
            "raised), skipped (not sampled). The legacy's schedule is returned in every case.",
            ("engine", "outcome"),
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.shadow_divergences = Counter(
            "shadow_divergences",
            "Real divergences (the comparator's count of candidates) found by shadow runs.",
            labels,
            namespace=NAMESPACE,
            registry=self.registry,
        )

    def record_run(self, schedule: Schedule, seconds: float) -> None:
        engine = schedule.engine
        self.candidates_processed.labels(engine).inc(len(schedule.decisions))
        self.scheduling_duration.labels(engine).observe(seconds)
        self.queue_items_added.labels(engine).inc(
            sum(1 for d in schedule.decisions if d.bucket is not None)
        )

    def observe_outcome(
        self,
        engine: str,
        *,
        predicted_probability: float,
        succeeded: bool,
        estimated_duration_us: int,
        actual_duration_us: int,
    ) -> None:
        """Feed the accuracy histograms with one finished run."""
        self.success_probability_accuracy.labels(engine).observe(
            abs(predicted_probability - (1.0 if succeeded else 0.0))
        )
        if actual_duration_us > 0:
            self.duration_estimation_accuracy.labels(engine).observe(
                estimated_duration_us / actual_duration_us
            )

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format (what a scrape returns)."""
        return generate_latest(self.registry)

    def serve(self, port: int, addr: str = "127.0.0.1") -> Any:
        """Expose the metrics over HTTP on ``addr:port`` (a daemon thread)."""
        return start_http_server(port, addr=addr, registry=self.registry)

    def push(self, gateway: str, job: str = "janitor-shadow") -> None:
        """Push the metrics to a Prometheus Pushgateway (``host:port`` or URL)."""
        push_to_gateway(gateway, job=job, registry=self.registry)
