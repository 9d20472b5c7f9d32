"""The ``sql`` backend: the legacy's own queries, run against a live database.

Where the ``memory`` backend reproduces what PostgreSQL computes (``AVG`` over
intervals, ``debversion`` ordering, ``ORDER BY start_time DESC``), this one
asks PostgreSQL, so the two checking each other is what makes the port
trustworthy. It only reads: one ``READ ONLY, REPEATABLE READ`` transaction,
on the snapshot the command's session exported (:mod:`harness.data.janitor_db`),
so it sees the rows the other engine sees; the queue insertion is simulated
by :mod:`engines.queue_sim`.

A statement that fails (an undefined table, a missing privilege) becomes
that candidate's error and the transaction goes on, as the spec's §8 asks:
a savepoint is set as the transaction starts, and a failed statement rolls
back to it. Since nothing is ever written, that loses nothing, and the
savepoint costs no round trips per query (one per query, SAVEPOINT and
RELEASE around each, halved the throughput). Nothing from the data is
pasted into SQL: the one operator the legacy pasted comes from a whitelist.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from engines.legacy.core import (
    DEBVERSION_OPERATORS,
    CandidateRow,
    LegacyError,
    RereadRow,
    missing_debian_versions_table,
    undefined_operator,
)
from engines.model import CandidateKey, Dataset, Run, datetime_to_us, timedelta_to_us
from harness.data.janitor_db import (
    CANDIDATE_QUERY,
    candidate_query,
    joined_connection,
    policy_entries,
    register_policy_type,
)
from harness.errors import SourceError

__all__ = ["CANDIDATE_QUERY", "SqlData", "candidate_query", "legacy_error", "policy_entries"]

log = logging.getLogger(__name__)

#: Set when the transaction starts; a failed statement rolls back to it.
SAVEPOINT = "janitor_shadow_reads"

CODEBASE_VALUES_QUERY = "SELECT name, value FROM codebase WHERE name IS NOT NULL"
REREAD_QUERY = (
    "SELECT value, success_chance, command, context FROM candidate "
    "WHERE codebase = %s and suite = %s and coalesce(change_set, '') = ''"
)
RUNS_QUERY = (
    "SELECT result_code, instigated_context, context, failure_details, start_time, finish_time "
    "FROM run WHERE codebase = %s AND suite = %s AND failure_transient IS NOT True "
    "ORDER BY start_time DESC"
)
AVG_BY_CODEBASE_QUERY = (
    "SELECT AVG(finish_time - start_time) FROM run "
    "WHERE failure_transient is not True AND codebase = %s"
)
AVG_BY_CAMPAIGN_QUERY = (
    "SELECT AVG(finish_time - start_time) FROM run "
    "WHERE failure_transient is not True AND suite = %s"
)
DEP_QUERY = "SELECT 1 FROM all_debian_versions WHERE source = %s"


# asyncpg's exception names where they are not psycopg's name plus "Error".
_ASYNCPG_NAMES = {
    "42601": "PostgresSyntaxError",
    "25P02": "InFailedSQLTransactionError",
    "22P02": "InvalidTextRepresentationError",
    "0A000": "FeatureNotSupportedError",
}


def legacy_error(exc: psycopg.Error) -> LegacyError:
    """A psycopg error as the legacy's asyncpg would have named and worded it."""
    sqlstate = exc.sqlstate
    name = _ASYNCPG_NAMES.get(sqlstate or "")
    if name is None:
        base = type(exc).__name__
        name = base if base.endswith(("Error", "Warning")) else f"{base}Error"
    diag = exc.diag
    message = diag.message_primary or str(exc).strip()
    if diag.message_detail:
        message += f"\nDETAIL:  {diag.message_detail}"
    if diag.message_hint:
        message += f"\nHINT:  {diag.message_hint}"
    return LegacyError(f"asyncpg.exceptions.{name}", message, sqlstate=sqlstate)


class SqlData:
    """Answers :class:`~engines.legacy.core.LegacyData` with the legacy's queries."""

    def __init__(self, conn: psycopg.Connection, dataset: Dataset) -> None:
        self.conn = conn
        self.dataset = dataset
        filters = dataset.provenance.filters if dataset.provenance else {}
        self.campaign: str | None = filters.get("campaign")
        codebases = filters.get("codebases")
        self.codebases: list[str] | None = None if codebases is None else list(codebases)
        row = conn.execute("SELECT to_regclass('all_debian_versions') IS NOT NULL").fetchone()
        self.has_versions = bool(row and row[0])
        #: Rows of the query and of ``dataset.candidate_row_order`` that did not pair up.
        self.order_mismatches = 0

    @classmethod
    @contextmanager
    def on(cls, conn: psycopg.Connection, dataset: Dataset) -> Iterator[SqlData]:
        """The legacy's queries on ``conn``, already inside its read-only transaction."""
        register_policy_type(conn)
        conn.execute(f"SAVEPOINT {SAVEPOINT}")
        yield cls(conn, dataset)

    @classmethod
    @contextmanager
    def connect(cls, dataset: Dataset) -> Iterator[SqlData]:
        """A connection on the snapshot ``dataset`` was read in (its own if that has ended)."""
        if dataset.live_dsn is None:
            raise SourceError("legacy:sql needs a dataset read from a live database")
        with (
            joined_connection(dataset.live_dsn, dataset.live_snapshot) as conn,
            cls.on(conn, dataset) as data,
        ):
            yield data

    def _guarded(self, query: Any, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run one per-candidate query; a failure is the candidate's error, not the run's."""
        try:
            return self.conn.execute(query, params).fetchall()
        except psycopg.Error as exc:
            self._recover()
            if isinstance(exc, psycopg.errors.UndefinedTable) and "all_debian_versions" in str(exc):
                raise missing_debian_versions_table() from None
            raise legacy_error(exc) from None

    def _recover(self) -> None:
        """Back to the savepoint, if the failure aborted the transaction."""
        if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            try:
                self.conn.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
            except psycopg.Error as exc:
                raise SourceError(f"legacy:sql: the database connection failed: {exc}") from None

    # ------------------------------------------------------------ LegacyData

    def candidate_rows(self) -> Sequence[CandidateRow]:
        query, params = candidate_query(self.campaign, self.codebases)
        rows = [
            CandidateRow(
                codebase=r[0],
                campaign=r[2],
                change_set=r[8],
                context=r[3],
                value=r[4],
                success_chance=r[5],
                per_branch_policy=policy_entries(r[6]),
                command=r[7],
            )
            for r in self.conn.execute(query, params)
        ]
        order = self.dataset.candidate_row_order
        if order is None:
            return rows
        by_key = {CandidateKey(r.codebase, r.campaign, r.change_set): r for r in rows}
        ordered = [by_key.pop(key) for key in order if key in by_key]
        missing = len(order) - len(ordered)
        if missing or by_key:
            self.order_mismatches = missing + len(by_key)
            log.warning(
                "legacy:sql: %d candidate row(s) of the dataset's row order are not in the "
                "database and %d database row(s) are not in it (the database changed?)",
                missing,
                len(by_key),
            )
            ordered.extend(by_key.values())
        return ordered

    def codebase_values(self) -> Sequence[tuple[str, int | None]]:
        return [(r[0], r[1]) for r in self.conn.execute(CODEBASE_VALUES_QUERY)]

    def reread_candidate(self, codebase: str, campaign: str) -> RereadRow | None:
        rows = self._guarded(REREAD_QUERY, (codebase, campaign))
        if not rows:
            return None
        value, success_chance, command, context = rows[0]
        return RereadRow(value, success_chance, command, context)

    def runs(self, codebase: str, campaign: str) -> Sequence[Run]:
        return [
            Run(
                "",
                codebase,
                campaign,
                r[0],
                None if r[4] is None else datetime_to_us(r[4]),
                None if r[5] is None else datetime_to_us(r[5]),
                None,
                r[1],
                r[2],
                r[3],
            )
            for r in self._guarded(RUNS_QUERY, (codebase, campaign))
        ]

    def avg_duration_us(
        self, *, codebase: str | None = None, campaign: str | None = None
    ) -> int | None:
        if codebase is not None:
            rows = self._guarded(AVG_BY_CODEBASE_QUERY, (codebase,))
        elif campaign is not None:
            rows = self._guarded(AVG_BY_CAMPAIGN_QUERY, (campaign,))
        else:
            raise ValueError("avg_duration_us needs a codebase or a campaign")
        average = rows[0][0] if rows else None
        return None if average is None else timedelta_to_us(average)

    def known_estimates(self) -> None:
        # the database may have moved between two runs: every run asks it afresh
        return None

    def dep_available(self, name: str, version: tuple[str, str] | None) -> bool:
        if not self.has_versions:
            raise missing_debian_versions_table()
        if version is None:
            return bool(self._guarded(DEP_QUERY, (name,)))
        op, wanted = version
        if op not in DEBVERSION_OPERATORS:  # core checks first; never paste anything else
            raise undefined_operator(op)
        query = sql.SQL(DEP_QUERY + " AND version {} %s::debversion").format(sql.SQL(op))
        return bool(self._guarded(query, (name, wanted)))
