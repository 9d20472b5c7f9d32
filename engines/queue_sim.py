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
from dataclasses import fields
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np

from engines.bulk import columnwise_builder
from engines.model import BUCKET_RANK, CandidateKey, QueueItem, sorted_queue

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class QueueOverflow(ArithmeticError):
    """A priority that does not fit PostgreSQL's bigint."""


#: A QueueItem's fields, in order; the simulator holds rows as plain tuples of them
#: and builds the QueueItems once, all at once, when asked for the table.
_NAMES = tuple(f.name for f in fields(QueueItem))
_ID, _SUITE, _BUCKET, _PRIORITY, _CHANGE_SET, _BRANCH_URL = (
    _NAMES.index(name) for name in ("id", "suite", "bucket", "priority", "change_set", "branch_url")
)
_as_row = attrgetter(*_NAMES)
_build_items = columnwise_builder(QueueItem, _NAMES)


class QueueSimulator:
    """An in-memory ``queue`` table with the legacy's add semantics.

    The id sequence continues after the largest existing id: a snapshot does
    not record the sequence itself, and a fresh database starts it at 1.
    """

    def __init__(self, initial: Iterable[QueueItem] = ()) -> None:
        self._rows: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        for item in initial:
            self._rows[_conflict_key(item.codebase, item.suite, item.change_set)] = _as_row(item)
        self._next_id = max((row[_ID] for row in self._rows.values()), default=0) + 1
        self._min_priority: int | None = min(
            (row[_PRIORITY] for row in self._rows.values()), default=None
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
            row_id, suite, kept_change_set, branch_url = new_id, campaign, change_set, None
        else:
            old_rank, new_rank = BUCKET_RANK[existing[_BUCKET]], BUCKET_RANK[bucket]
            overwrite = old_rank >= new_rank or (
                old_rank == new_rank and existing[_PRIORITY] >= priority
            )
            if not overwrite:
                return existing[_ID], existing[_BUCKET], existing[_PRIORITY]
            # the row keeps its id, campaign, change set and branch URL
            row_id, suite, kept_change_set, branch_url = (
                existing[_ID],
                existing[_SUITE],
                existing[_CHANGE_SET],
                existing[_BRANCH_URL],
            )
        row = (
            row_id,
            codebase,
            suite,
            command,
            bucket,
            priority,
            context,
            estimated_duration_us,
            refresh,
            requester,
            kept_change_set,
            branch_url,
        )
        self._rows[key] = row
        self._recompute_min(existing, priority)
        return row_id, bucket, priority

    def _recompute_min(self, old: tuple[Any, ...] | None, priority: int) -> None:
        if self._min_priority is None or priority < self._min_priority:
            self._min_priority = priority
        elif old is not None and old[_PRIORITY] == self._min_priority and priority > old[_PRIORITY]:
            self._min_priority = min(row[_PRIORITY] for row in self._rows.values())

    def rows(self) -> list[QueueItem]:
        """The table in the order workers take it: bucket, priority, id.

        Sorted as row tuples by numpy (ids are unique: one order), then built:
        sorting 100,000 QueueItems by a key cost more than building them.
        """
        rows = list(self._rows.values())
        if not rows:
            return []
        try:
            order = np.lexsort(
                (
                    np.fromiter(map(itemgetter(_ID), rows), np.int64, len(rows)),
                    np.fromiter(map(itemgetter(_PRIORITY), rows), np.int64, len(rows)),
                    np.fromiter((BUCKET_RANK[r[_BUCKET]] for r in rows), np.int64, len(rows)),
                )
            )
        except OverflowError:  # beyond bigint: only a hand-made table; sorted as the model sorts
            return sorted_queue(_build_items(list(zip(*rows, strict=True))))
        ordered = list(map(rows.__getitem__, order.tolist()))
        return _build_items(list(zip(*ordered, strict=True)))

    def get(self, key: CandidateKey) -> QueueItem | None:
        row = self._rows.get(_conflict_key(*key))
        return None if row is None else QueueItem(*row)


def _conflict_key(codebase: str, suite: str, change_set: str | None) -> tuple[str, str, str]:
    """The unique index ``(codebase, suite, coalesce(change_set, ''))``."""
    return (codebase, suite, change_set or "")
