"""Connections to a live Janitor database: read only, one consistent snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import psycopg

from engines.model import (
    Candidate,
    CandidateKey,
    Codebase,
    Dataset,
    NamedPublishPolicy,
    PolicyEntry,
    Provenance,
    Schedule,
)
from harness.errors import SourceError
from harness.live import QUEUE_COLUMNS, queue_item_from_row

if TYPE_CHECKING:
    from engines.new.scoring import SchedulingEngine


@contextmanager
def read_only_connection(dsn: str) -> Iterator[psycopg.Connection]:
    """A connection whose queries all run in one READ ONLY REPEATABLE READ transaction.

    Every aggregate query then sees the same snapshot of the database, and
    nothing the engine does can write to it. The transaction is rolled back
    at the end (there is nothing to commit).
    """
    try:
        conn = psycopg.connect(dsn, autocommit=False)
    except psycopg.Error as exc:
        raise SourceError(f"cannot connect to the database: {exc}".strip()) from exc
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        yield conn
    except psycopg.Error as exc:
        raise SourceError(f"database query failed: {exc}".strip()) from exc
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()


POLICY_SQL = """
SELECT p.name, p.per_branch_policy IS NULL, e.role, e.mode::text, e.frequency_days, e.ordinality
FROM named_publish_policy p
LEFT JOIN LATERAL unnest(p.per_branch_policy) WITH ORDINALITY AS e ON true
ORDER BY p.name, e.ordinality
"""

QUEUE_SQL = f"SELECT {QUEUE_COLUMNS}\nFROM queue ORDER BY id"


def transaction_start(conn: psycopg.Connection) -> datetime:
    """The transaction's start, naive UTC: the default ``as_of``."""
    row = conn.execute("SELECT now() AT TIME ZONE 'UTC'").fetchone()
    assert row is not None
    as_of: datetime = row[0]
    return as_of


def read_scheduling_rows(conn: psycopg.Connection, as_of: datetime | None = None) -> Dataset:
    """Everything but the runs: candidates in the legacy's row order, codebases, policies, queue.

    The runs stay in the database; the engine asks for their aggregates
    (:func:`engines.new.aggregates_sql.aggregates_from_database`). ``as_of``
    defaults to the transaction's start, naive UTC.
    """
    from engines.legacy.sql import candidate_query

    if as_of is None:
        as_of = transaction_start(conn)
    codebases = tuple(
        Codebase(name=r[0], branch_url=r[1], value=r[2])
        for r in conn.execute("SELECT name, branch_url, value FROM codebase WHERE name IS NOT NULL")
    )
    grouped: dict[str, tuple[bool, list[PolicyEntry]]] = {}
    for name, is_null, role, mode, freq, ordinality in conn.execute(POLICY_SQL):
        _, entries = grouped.setdefault(name, (is_null, []))
        if ordinality is not None:
            entries.append(PolicyEntry(role=role, mode=mode, frequency_days=freq))
    policies = tuple(
        NamedPublishPolicy(name=name, per_branch_policy=None if is_null else tuple(entries))
        for name, (is_null, entries) in grouped.items()
    )
    # the columns in Candidate's field order: positional arguments build 100,000s faster
    candidates = tuple(
        Candidate(*r)
        for r in conn.execute(
            "SELECT id, codebase, suite, command, change_set, context, value, success_chance, "
            "publish_policy FROM candidate"
        ).fetchall()
    )
    query, params = candidate_query()
    row_order = tuple(CandidateKey(r[0], r[2], r[8]) for r in conn.execute(query, params))
    queue = tuple(queue_item_from_row(r) for r in conn.execute(QUEUE_SQL))
    return Dataset(
        as_of=as_of,
        codebases=codebases,
        candidates=candidates,
        policies=policies,
        runs=(),
        debian_versions=None,
        queue=queue,
        candidate_row_order=row_order,
        provenance=Provenance(
            source="postgresql (new engine, set-based)",
            details={"reader": "engines.new.live", "transaction": "READ ONLY, REPEATABLE READ"},
        ),
    )


def schedule_from_database(
    engine: SchedulingEngine, dsn: str, *, as_of: datetime | None = None
) -> Schedule:
    """One bulk run straight from a live database: rows + set-based aggregates, one snapshot.

    The aggregate queries start first, on connections sharing this one's
    snapshot; the scheduling rows are read and built while the server works.
    """
    import time

    from engines.new.aggregates_sql import start_aggregates
    from harness.run_table import bulk_allocation

    started = time.perf_counter()
    with read_only_connection(dsn) as conn, bulk_allocation(freeze=True):
        if as_of is None:
            as_of = transaction_start(conn)
        pending = start_aggregates(conn, engine.config, as_of, dsn=dsn)
        try:
            dataset = read_scheduling_rows(conn, as_of)
            agg = pending.result()
        finally:
            pending.close()
    return engine.schedule_aggregated(dataset, agg, started=started)
