"""One schedule as columns, and two schedules aligned by candidate key.

The comparator works on numpy columns rather than on 100,000 Decision objects:
each numeric field becomes a float64 column plus a "was None" mask (``None`` is
not NaN: an engine that never computed a value is different from one that
computed NaN). Decisions may repeat a key; the last one wins, as the queue's
upsert does (:attr:`engines.model.Schedule.decision_by_key`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from engines.model import BUCKET_RANK, Decision, QueueItem, Schedule
from harness.comparison_model import NUMERIC_FIELDS

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

DECISION_FIELDS: tuple[str, ...] = (
    "offset",
    "success_probability",
    "estimated_duration_us",
    "normalized_codebase_value",
    "value",
    "total_previous_runs",
)
QUEUE_FIELDS: tuple[str, ...] = ("queue_priority", "queue_bucket", "queue_position")

#: Non-numeric decision fields compared structurally (deepdiff on mismatches).
STRUCTURE_FIELDS: tuple[str, ...] = (
    "context",
    "command",
    "candidate_value",
    "publish_bonus",
    "first_run_bonus",
    "bucket",
)

assert DECISION_FIELDS + QUEUE_FIELDS == NUMERIC_FIELDS

#: A candidate key as a plain tuple: equal to (and hashed like) the model's
#: CandidateKey NamedTuple, but ten times cheaper to build 100,000 of.
Key = tuple[str, str, str | None]


def decision_key(d: Decision) -> Key:
    return (d.codebase, d.campaign, d.change_set)


def queue_key(q: QueueItem) -> Key:
    return (q.codebase, q.suite, q.change_set)


def _as_float(value: Any) -> float:
    if value is None:
        return np.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


@dataclass
class Column:
    """A numeric field: values (NaN where None) and the None mask."""

    values: FloatArray
    null: BoolArray

    def take(self, index: IntArray) -> Column:
        return Column(self.values[index], self.null[index])


@dataclass
class Side:
    """One schedule as columns, one row per distinct key (last decision wins)."""

    schedule: Schedule
    keys: list[Key]
    index: dict[Key, int]
    decisions: list[Decision]
    columns: dict[str, Column]
    ok: BoolArray
    error_types: list[str | None]
    campaigns: list[str]
    codebases: list[str]
    queue_pos: dict[Key, int]
    duplicates: int

    @property
    def size(self) -> int:
        return len(self.keys)


def _columns(decisions: Sequence[Decision], names: Sequence[str]) -> dict[str, Column]:
    """All numeric decision fields in one pass (None → NaN, remembered in the mask)."""
    raw = np.array(list(map(attrgetter(*names), decisions)), dtype=object).reshape(
        len(decisions), len(names)
    )
    null = np.asarray(raw == None, dtype=bool)  # noqa: E711 (element-wise on objects)
    try:
        values = raw.astype(np.float64)
    except (TypeError, ValueError):
        values = np.vectorize(_as_float, otypes=[np.float64])(raw).reshape(raw.shape)
    return {
        name: Column(np.ascontiguousarray(values[:, j]), np.ascontiguousarray(null[:, j]))
        for j, name in enumerate(names)
    }


def side_from_schedule(schedule: Schedule) -> Side:
    """Columns of ``schedule``; a key decided twice keeps its last decision."""
    by_key: dict[Key, Decision] = {}
    for d in schedule.decisions:
        by_key[(d.codebase, d.campaign, d.change_set)] = d
    keys = list(by_key)
    decisions = list(by_key.values())
    index = {k: i for i, k in enumerate(keys)}
    columns = _columns(decisions, DECISION_FIELDS)
    queue_pos: dict[Key, int] = {}
    queue_rows: dict[Key, QueueItem] = {}
    for position, item in enumerate(schedule.queue, start=1):
        key = (item.codebase, item.suite, item.change_set)
        if key not in queue_pos:
            queue_pos[key] = position
            queue_rows[key] = item
    priority = np.full(len(keys), np.nan)
    bucket = np.full(len(keys), np.nan)
    positions = np.full(len(keys), np.nan)
    for i, key in enumerate(keys):
        row = queue_rows.get(key)
        if row is not None:
            priority[i] = row.priority
            bucket[i] = BUCKET_RANK.get(row.bucket, len(BUCKET_RANK))
            positions[i] = queue_pos[key]
    not_queued = np.isnan(positions)
    columns["queue_priority"] = Column(priority, not_queued)
    columns["queue_bucket"] = Column(bucket, not_queued.copy())
    columns["queue_position"] = Column(positions, not_queued.copy())
    errors = [None if d.error is None else d.error.type for d in decisions]
    ok = np.fromiter((e is None for e in errors), dtype=bool, count=len(errors))
    return Side(
        schedule=schedule,
        keys=keys,
        index=index,
        decisions=decisions,
        columns=columns,
        ok=ok,
        error_types=errors,
        campaigns=[k[1] for k in keys],
        codebases=[k[0] for k in keys],
        queue_pos=queue_pos,
        duplicates=len(schedule.decisions) - len(keys),
    )


@dataclass
class Alignment:
    """Index pairs into two sides: ``ia[i]`` in A and ``ib[i]`` in B are the
    same key; ``missing`` are A indices absent from B, ``extra`` B indices
    absent from A."""

    a: Side
    b: Side
    ia: IntArray
    ib: IntArray
    missing: IntArray
    extra: IntArray


def align(a: Side, b: Side) -> Alignment:
    """Pair the keys of ``a`` and ``b`` (and make their queue positions comparable)."""
    set_common_positions(a, b)
    ia: list[int] = []
    ib: list[int] = []
    missing: list[int] = []
    b_index = b.index
    for i, key in enumerate(a.keys):
        j = b_index.get(key)
        if j is None:
            missing.append(i)
        else:
            ia.append(i)
            ib.append(j)
    a_index = a.index
    extra = [j for j, key in enumerate(b.keys) if key not in a_index]
    as_array = lambda xs: np.asarray(xs, dtype=np.int64)  # noqa: E731
    return Alignment(a, b, as_array(ia), as_array(ib), as_array(missing), as_array(extra))


def _group_positions(queue: Sequence[QueueItem], common: set[Key]) -> dict[Key, int]:
    """Per key of ``common``: the 1-based rank, among the ``common`` items, of the
    first member of its tie group (same bucket and priority)."""
    out: dict[Key, int] = {}
    rank = 0
    start = 0
    previous: tuple[str, int] | None = None
    for item in queue:
        key = (item.codebase, item.suite, item.change_set)
        if key not in common or key in out:
            continue
        rank += 1
        group = (item.bucket, item.priority)
        if group != previous:
            start, previous = rank, group
        out[key] = start
    return out


def set_common_positions(a: Side, b: Side) -> None:
    """Make ``queue_position`` comparable: the tie-aware rank among the items
    queued on both sides, so that an item present on one side only does not
    shift everything after it, and an order inside a tie group (which comes
    from row ids, i.e. insertion order) is not a difference."""
    common = set(a.queue_pos) & set(b.queue_pos)
    for side in (a, b):
        positions = _group_positions(side.schedule.queue, common)
        values = np.fromiter(
            (positions.get(k, np.nan) for k in side.keys), dtype=np.float64, count=side.size
        )
        side.columns["queue_position"] = Column(values, np.isnan(values))


def structure_tuple(d: Decision) -> tuple[Any, ...]:
    return tuple(getattr(d, name) for name in STRUCTURE_FIELDS)


def same_value(x: Any, y: Any) -> bool:
    """Equality where NaN equals NaN (the comparator's rule for repeated NaN)."""
    if x == y:
        return True
    return isinstance(x, float) and isinstance(y, float) and x != x and y != y


_structure = attrgetter(*STRUCTURE_FIELDS)


def structure_mismatch(da: Decision, db: Decision) -> tuple[str, ...]:
    """Names of the structure fields that differ (cheap; deepdiff explains them)."""
    if _structure(da) == _structure(db):
        return ()
    return tuple(
        name for name in STRUCTURE_FIELDS if not same_value(getattr(da, name), getattr(db, name))
    )
