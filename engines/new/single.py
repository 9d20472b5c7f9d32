"""One candidate, decided from the live database in a few milliseconds (real-time decisions).

The bulk run's numbers for one (codebase, campaign), from indexed queries
only: the candidate rows of that pair, the codebase's runs (all campaigns:
its AVG/median fallbacks need them; ``run (codebase, suite, start_time)`` is
indexed), the queue rows that decide the priority (current minimum, last id,
the pair's own entry) and, only when a run carries dependency relations,
the ``all_debian_versions`` rows it names.

Two figures are over *every* row of a table and would cost a full scan per
decision: the largest codebase value (the normalized value's denominator)
and a campaign's average duration (the last fallback). They change slowly,
so they are cached for ``cache_seconds`` (and :meth:`refresh` drops them):
say so when comparing a real-time decision with a bulk run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg

from engines.model import (
    Decision,
    NamedPublishPolicy,
    QueueItem,
    datetime_to_us,
    timedelta_to_us,
)
from engines.new.aggregates import aggregates_from_runs
from engines.new.aggregates_sql import _relation_names, fetch_debian_versions
from engines.new.dependencies import DependencyResolver
from engines.new.duration import DurationEstimator
from engines.new.scoring import (
    CodebaseNormalizer,
    EngineInputs,
    SchedulingEngine,
    plain_candidate_index,
)
from engines.new.success import SuccessProbabilityEstimator
from engines.queue_sim import QueueSimulator
from harness.data.janitor_db import (
    CANDIDATE_COLUMNS,
    QUEUE_COLUMNS,
    RUN_COLUMNS,
    begin_read_only,
    candidate_from_row,
    connect,
    error_reason,
    queue_item_from_row,
    read_policies,
    run_from_row,
)
from harness.errors import SourceError

CANDIDATES_SQL = f"""
SELECT {CANDIDATE_COLUMNS}
FROM candidate WHERE codebase = %s AND suite = %s ORDER BY coalesce(change_set, ''), id
"""
RUNS_SQL = f"""
SELECT {RUN_COLUMNS}
FROM run WHERE codebase = %s AND failure_transient IS NOT TRUE
"""
QUEUE_ROWS_SQL = f"""
SELECT {QUEUE_COLUMNS}
FROM queue
WHERE id = (SELECT id FROM queue ORDER BY priority, id LIMIT 1)
   OR id = (SELECT max(id) FROM queue)
   OR (codebase = %s AND suite = %s AND coalesce(change_set, '') = '')"""
CAMPAIGN_AVG_SQL = (
    "SELECT suite, AVG(finish_time - start_time) FROM run WHERE failure_transient IS NOT TRUE "
    "GROUP BY suite"
)


@dataclass(frozen=True)
class SingleDecision:
    decision: Decision
    #: The queue row the add would leave (``None`` when not queued).
    queue_item: QueueItem | None
    seconds: float


class SingleCandidateScheduler:
    """Holds one read-only connection and the slow-changing caches."""

    def __init__(self, engine: SchedulingEngine, dsn: str, *, cache_seconds: float = 60.0) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._dsn = dsn
        self.conn = connect(dsn)
        self._loaded_at = -1e9
        self._normalizer: CodebaseNormalizer | None = None
        self._policies: dict[str, NamedPublishPolicy] = {}
        self._campaign_avg: dict[str, int | None] = {}

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SingleCandidateScheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self) -> None:
        self._loaded_at = -1e9

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        """One READ ONLY, REPEATABLE READ transaction per decision (rolled back)."""
        try:
            begin_read_only(self.conn)
            yield self.conn
        except psycopg.Error as exc:
            raise SourceError(f"database query failed: {error_reason(exc, self._dsn)}") from None
        finally:
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.execute("ROLLBACK")

    def _caches(self, conn: psycopg.Connection) -> None:
        if time.monotonic() - self._loaded_at < self.cache_seconds and self._normalizer:
            return
        values = conn.execute("SELECT name, value FROM codebase WHERE name IS NOT NULL").fetchall()
        self._normalizer = CodebaseNormalizer(
            values, self.engine.config.scheduling.default_normalized_codebase_value
        )
        self._policies = {p.name: p for p in read_policies(conn)}
        # Every campaign's average at once: one scan when the cache is (re)loaded,
        # none per decision.
        self._campaign_avg = {
            suite: None if avg is None else timedelta_to_us(avg)
            for suite, avg in conn.execute(CAMPAIGN_AVG_SQL)
        }
        self._loaded_at = time.monotonic()

    def _campaign_average(self, campaign: str) -> int | None:
        return self._campaign_avg.get(campaign)

    def decide(
        self,
        codebase: str,
        campaign: str,
        *,
        change_set: str | None = None,
        as_of: datetime | None = None,
    ) -> SingleDecision:
        """Decide one candidate as the bulk run would (see the module docstring for caches)."""
        started = time.perf_counter()
        with self._transaction() as conn:
            self._caches(conn)
            if as_of is None:
                row = conn.execute("SELECT now() AT TIME ZONE 'UTC'").fetchone()
                assert row is not None
                as_of = row[0]
            assert as_of is not None
            candidates = [
                candidate_from_row(r) for r in conn.execute(CANDIDATES_SQL, (codebase, campaign))
            ]
            wanted = [c for c in candidates if c.change_set == change_set]
            if not wanted:
                label = f"{codebase}/{campaign}" + (f" [{change_set}]" if change_set else "")
                raise SourceError(f"no candidate {label}")
            runs = [run_from_row(r) for r in conn.execute(RUNS_SQL, (codebase,))]
            config = self.engine.config
            agg = aggregates_from_runs(
                runs,
                config,
                datetime_to_us(as_of),
                {c.context for c in candidates if c.context},
                {},
            )
            if agg.deps_runs:
                agg.debian_versions = fetch_debian_versions(conn, _relation_names(agg.deps_runs))
            agg.campaign_avg_us = {campaign: self._campaign_average(campaign)}
            agg.origin = "database (single candidate)"
            queue_rows = [
                queue_item_from_row(r) for r in conn.execute(QUEUE_ROWS_SQL, (codebase, campaign))
            ]
        assert self._normalizer is not None
        inputs = EngineInputs(
            as_of_us=datetime_to_us(as_of),
            candidates=wanted,
            policies=self._policies,
            normalizer=self._normalizer,
            plain_candidates=plain_candidate_index(candidates),
            aggregates=agg,
        )
        resolver = DependencyResolver(
            config.campaign_dependencies, agg.debian_versions, config_file=config.source
        )
        queue = QueueSimulator(queue_rows)
        scored = self.engine.decide(
            wanted[0],
            inputs,
            resolver,
            SuccessProbabilityEstimator(config, resolver),
            DurationEstimator(config),
        )
        decision = self.engine.queue_decision(scored, queue)
        item = queue.get(wanted[0].key._replace(change_set=None)) if decision.bucket else None
        return SingleDecision(decision, item, time.perf_counter() - started)
