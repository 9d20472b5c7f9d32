"""The Janitor's own ``queue`` table as an enqueue target.

The existing runner takes work from this table ``ORDER BY bucket, priority,
id``; writing the new engine's decisions here lets production run them
unchanged. Each batch is one transaction: the rows the batch touches are
locked and read (``FOR UPDATE``), the upsert rule decides (legacy spec §7),
and one ``INSERT … ON CONFLICT … DO UPDATE … WHERE`` writes the batch with
the legacy's own condition, so the database enforces the rule even for a row
another writer added since. A connection lost mid-batch rolls the whole
batch back.

Ids: the schedule's order among equal (bucket, priority) is its insertion
order. New rows get ids drawn from the table's own sequence in one call and
handed out in the schedule's order, so the id order of the new rows is the
schedule's; a re-added row keeps its id, as the legacy's does. Every value
goes in as a bind parameter (arrays unnested server-side); no SQL text is
built from data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import psycopg

from engines.model import timedelta_to_us
from harness.enqueue.plan import (
    DEFAULT_BATCH_SIZE,
    Action,
    BatchedTarget,
    EnqueueItem,
    EnqueuePlan,
    PlanEntry,
    chunks,
    classify,
)

_COLUMNS = """q.codebase, q.suite, q.change_set, q.command, q.bucket::text, q.priority,
       q.context, q.estimated_duration, q.refresh, q.requester, q.branch_url"""

#: The rows of the batch's keys; the unique index is (codebase, suite, coalesce(change_set, '')).
_EXISTING = f"""SELECT {_COLUMNS}
FROM queue AS q
JOIN unnest(%(codebase)s::text[], %(suite)s::text[], %(change_set)s::text[])
     AS k(codebase, suite, change_set)
  ON q.codebase = k.codebase AND q.suite = k.suite
 AND coalesce(q.change_set, '') = coalesce(k.change_set, '')"""

_LOCK_EXISTING = _EXISTING + "\nFOR UPDATE OF q"

_IDS = "SELECT nextval(pg_get_serial_sequence('queue', 'id')) FROM generate_series(1, %s)"

#: The legacy's add: its columns, its conflict target, its overwrite condition.
_UPSERT = """INSERT INTO queue (id, bucket, codebase, suite, command, priority, context,
                   estimated_duration, refresh, requester, change_set)
SELECT id, bucket::queue_bucket, codebase, suite, command, priority, context,
       estimated_duration, refresh, requester, change_set
FROM unnest(%(id)s::int[], %(bucket)s::text[], %(codebase)s::text[], %(suite)s::text[],
            %(command)s::text[], %(priority)s::bigint[], %(context)s::text[],
            %(estimated_duration)s::interval[], %(refresh)s::boolean[],
            %(requester)s::text[], %(change_set)s::text[])
     WITH ORDINALITY AS b(id, bucket, codebase, suite, command, priority, context,
                          estimated_duration, refresh, requester, change_set, ord)
ORDER BY ord
ON CONFLICT (codebase, suite, coalesce(change_set, '')) DO UPDATE SET
    context = EXCLUDED.context,
    priority = EXCLUDED.priority,
    bucket = EXCLUDED.bucket,
    estimated_duration = EXCLUDED.estimated_duration,
    refresh = EXCLUDED.refresh,
    requester = EXCLUDED.requester,
    command = EXCLUDED.command,
    codebase = EXCLUDED.codebase
WHERE queue.bucket >= EXCLUDED.bucket
   OR (queue.bucket = EXCLUDED.bucket AND queue.priority >= EXCLUDED.priority)"""

#: The whole table in worker order.
_ENTRIES = f"SELECT {_COLUMNS}\nFROM queue AS q\nORDER BY q.bucket, q.priority, q.id"


#: How often a batch the server rolled back on a deadlock is written again.
DEADLOCK_ATTEMPTS = 3


def _item(row: Sequence[Any]) -> EnqueueItem:
    duration = row[7]
    return EnqueueItem(
        codebase=row[0],
        campaign=row[1],
        change_set=row[2],
        command=row[3],
        bucket=row[4],
        priority=row[5],
        context=row[6],
        estimated_duration_us=None if duration is None else timedelta_to_us(duration),
        refresh=bool(row[8]),
        requester=row[9],
        branch_url=row[10],
    )


def _keys(batch: Sequence[EnqueueItem]) -> dict[str, list[str | None]]:
    return {
        "codebase": [i.codebase for i in batch],
        "suite": [i.campaign for i in batch],
        "change_set": [i.change_set for i in batch],
    }


class QueueTable(BatchedTarget):
    """A :class:`~harness.enqueue.plan.QueueTarget` on the Janitor's PostgreSQL ``queue``."""

    errors = (psycopg.Error,)

    def __init__(self, url: str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(url, batch_size)
        self._conn = self._connect()

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(
                self._secret_url, autocommit=True, application_name="janitor-shadow enqueue"
            )
        except psycopg.Error as exc:
            raise self._error("cannot connect to", exc) from None

    @property
    def conn(self) -> psycopg.Connection:
        """The connection, opened again if the server closed it (a restart, a kill):
        a long-running caller goes on after an error without reopening the target."""
        if self._conn.closed or self._conn.broken:
            self._conn.close()
            self._conn = self._connect()
        return self._conn

    @property
    def backend_pid(self) -> int:
        """The server process of this target's connection (to watch or stop it)."""
        return int(self.conn.info.backend_pid)

    # ------------------------------------------------------------ reading

    def _plan(self, items: Sequence[EnqueueItem]) -> EnqueuePlan:
        entries: list[PlanEntry] = []
        try:
            conn = self.conn
            # one snapshot for the whole plan
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                for batch in chunks(items, max(self.batch_size, 10_000)):
                    rows = conn.execute(_EXISTING, _keys(batch)).fetchall()
                    existing = {(r[0], r[1], r[2]): _item(r) for r in rows}
                    for item in batch:
                        before = existing.get(item.raw_key)
                        entries.append(PlanEntry(item, classify(item, before), before))
        except psycopg.Error as exc:
            raise self._error("cannot read the queue at", exc) from None
        return EnqueuePlan(self.url, tuple(entries))

    def entries(self) -> list[EnqueueItem]:
        try:
            return [_item(r) for r in self.conn.execute(_ENTRIES)]
        except psycopg.Error as exc:
            raise self._error("cannot read the queue at", exc) from None

    # ------------------------------------------------------------ writing

    def _write_batch(self, batch: Sequence[EnqueueItem]) -> list[Action]:
        attempt = 1
        while True:
            try:
                return self._write_batch_once(batch)
            except psycopg.errors.DeadlockDetected:
                # another writer (the legacy scheduler) locked the same rows in another
                # order; the server rolled this batch back whole: write it again
                if attempt >= DEADLOCK_ATTEMPTS:
                    raise
                attempt += 1

    def _write_batch_once(self, batch: Sequence[EnqueueItem]) -> list[Action]:
        conn = self.conn
        with conn.transaction():
            rows = conn.execute(_LOCK_EXISTING, _keys(batch)).fetchall()
            existing = {(r[0], r[1], r[2]): _item(r) for r in rows}
            actions = [classify(item, existing.get(item.raw_key)) for item in batch]
            writes = [i for i, a in zip(batch, actions, strict=True) if a.writes]
            if not writes:
                return actions
            ids = sorted(r[0] for r in conn.execute(_IDS, (len(writes),)))
            conn.execute(
                _UPSERT,
                {
                    "id": ids,
                    "bucket": [i.bucket for i in writes],
                    **_keys(writes),
                    "command": [i.command for i in writes],
                    "priority": [i.priority for i in writes],
                    "context": [i.context for i in writes],
                    "estimated_duration": [
                        None
                        if i.estimated_duration_us is None
                        else timedelta(microseconds=i.estimated_duration_us)
                        for i in writes
                    ],
                    "refresh": [i.refresh for i in writes],
                    "requester": [i.requester for i in writes],
                },
            )
        return actions

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        self._conn.close()
