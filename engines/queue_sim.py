"""The Janitor's ``queue`` table insertion, simulated exactly (legacy spec §7).

Shadow runs never write to production, yet the queue order is part of what
must match: priorities are relative to the queue's minimum at the moment of
each add, truncation makes ties that ids break, and the upsert rules decide
which add wins. This class reproduces the legacy's single ``INSERT … ON
CONFLICT … DO UPDATE … WHERE`` statement and the ``queue_id_seq`` sequence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

from engines.model import BUCKET_RANK, CandidateKey, QueueItem, sorted_queue

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class QueueOverflow(ArithmeticError):
    """A priority that does not fit PostgreSQL's bigint."""


class QueueSimulator:
    """An in-memory ``queue`` table with the legacy's add semantics.

    The id sequence continues after the largest existing id: a snapshot does
    not record the sequence itself, and a fresh database starts it at 1.
    """

    def __init__(self, initial: Iterable[QueueItem] = ()) -> None:
        self._rows: dict[tuple[str, str, str], QueueItem] = {}
        for item in initial:
            self._rows[_conflict_key(item.codebase, item.suite, item.change_set)] = item
        self._next_id = max((item.id for item in self._rows.values()), default=0) + 1
        self._min_priority: int | None = min(
            (item.priority for item in self._rows.values()), default=None
        )

    def min_priority(self) -> int:
        """``COALESCE(MIN(priority), 0)`` over the whole table."""
        return 0 if self._min_priority is None else self._min_priority

    def add(
        self,
        *,
        codebase: str,
        campaign: str,
        command: str,
        offset: float,
        bucket: str = "default",
        context: str | None = None,
        estimated_duration_us: int | None = None,
        refresh: bool = False,
        requester: str | None = None,
        change_set: str | None = None,
    ) -> tuple[int, str, int]:
        """Add or update one entry; returns (id, bucket, priority) of the row afterwards."""
        if math.isnan(offset) or math.isinf(offset):
            raise QueueOverflow(f"cannot convert offset {offset!r} to bigint")
        # The driver truncates the float to an integer before the addition.
        truncated = int(offset)
        if not INT64_MIN <= truncated <= INT64_MAX:
            raise QueueOverflow("value out of int64 range")
        minimum = self._min_priority
        priority = (0 if minimum is None else minimum) + truncated
        if not INT64_MIN <= priority <= INT64_MAX:
            raise QueueOverflow("bigint out of range")
        new_id = self._next_id
        self._next_id += 1  # nextval() runs even when the insert becomes an update
        key = (codebase, campaign, change_set or "")  # the unique index (see _conflict_key)
        existing = self._rows.get(key)
        if existing is None:
            # positional, in field order: a bulk run adds 100,000 rows
            row = QueueItem(
                new_id,
                codebase,
                campaign,
                command,
                bucket,
                priority,
                context,
                estimated_duration_us,
                refresh,
                requester,
                change_set,
            )
        else:
            old_rank, new_rank = BUCKET_RANK[existing.bucket], BUCKET_RANK[bucket]
            overwrite = old_rank >= new_rank or (
                old_rank == new_rank and existing.priority >= priority
            )
            if not overwrite:
                return existing.id, existing.bucket, existing.priority
            row = replace(
                existing,
                context=context,
                priority=priority,
                bucket=bucket,
                estimated_duration_us=estimated_duration_us,
                refresh=refresh,
                requester=requester,
                command=command,
                codebase=codebase,
            )
        self._rows[key] = row
        self._recompute_min(existing, row)
        return row.id, row.bucket, row.priority

    def _recompute_min(self, old: QueueItem | None, new: QueueItem) -> None:
        if self._min_priority is None or new.priority < self._min_priority:
            self._min_priority = new.priority
        elif old is not None and old.priority == self._min_priority and new.priority > old.priority:
            self._min_priority = min(item.priority for item in self._rows.values())

    def rows(self) -> list[QueueItem]:
        """The table in the order workers take it: bucket, priority, id."""
        return sorted_queue(self._rows.values())

    def get(self, key: CandidateKey) -> QueueItem | None:
        return self._rows.get(_conflict_key(*key))


def _conflict_key(codebase: str, suite: str, change_set: str | None) -> tuple[str, str, str]:
    """The unique index ``(codebase, suite, coalesce(change_set, ''))``."""
    return (codebase, suite, change_set or "")
