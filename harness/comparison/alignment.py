"""One schedule as columns, and two schedules aligned by candidate key.

The comparator works on numpy columns rather than on 100,000 Decision objects:
each numeric field becomes a float64 column plus a "was None" mask (``None`` is
not NaN: an engine that never computed a value is different from one that
computed NaN). Decisions may repeat a key; the last one wins, as the queue's
upsert does (:attr:`engines.model.Schedule.decision_by_key`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from engines.model import BUCKET_RANK, Decision, QueueItem, Schedule
from harness.comparison.comparison_model import DECISION_FIELDS

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


#: Non-numeric decision fields compared structurally (deepdiff on mismatches).
STRUCTURE_FIELDS: tuple[str, ...] = (
    "context",
    "command",
    "candidate_value",
    "publish_bonus",
    "first_run_bonus",
    "bucket",
)

#: A candidate key as a plain tuple: equal to (and hashed like) the model's
#: CandidateKey NamedTuple, but ten times cheaper to build 100,000 of.
Key = tuple[str, str, str | None]


def decision_key(d: Decision) -> Key:
    return (d.codebase, d.campaign, d.change_set)


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
    #: per queue row, in queue order: its key, (bucket rank, priority), and
    #: whether it is the first row of its key (a key queued twice counts once)
    queue_keys: list[Key]
    queue_scores: npt.NDArray[np.int64]
    queue_first: BoolArray
    #: per decision key: the 0-based queue row of its first queue entry (-1: none)
    queue_row: IntArray
    #: per decision key: its structure fields (:data:`STRUCTURE_FIELDS`), as a tuple
    structures: list[tuple[Any, ...]]

    @property
    def size(self) -> int:
        return len(self.keys)

    def detached(self) -> Side:
        """These columns without the Decision objects (nor the schedule's
        decisions and queue): what noise measurement reads of a self-run, and
        cheap to send from another process."""
        return replace(self, schedule=replace(self.schedule, decisions=[], queue=[]), decisions=[])


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


def queue_arrays(
    queue: Sequence[QueueItem],
) -> tuple[list[Key], npt.NDArray[np.int64], dict[Key, int], BoolArray]:
    """Keys, (bucket rank, priority) scores, first 1-based position per key and
    first-occurrence mask of a queue in worker order."""
    keys: list[Key] = [(q.codebase, q.suite, q.change_set) for q in queue]
    other = len(BUCKET_RANK)
    rank = BUCKET_RANK.get
    scores = np.array([(rank(q.bucket, other), q.priority) for q in queue], dtype=np.int64).reshape(
        len(queue), 2
    )
    n = len(keys)
    # reversed, so that the first occurrence of a key is the one that stays
    positions = dict(zip(reversed(keys), range(n, 0, -1), strict=True))
    first = np.zeros(n, dtype=bool)
    if len(positions) == n:
        first[:] = True
    else:
        first[np.fromiter(positions.values(), dtype=np.int64, count=len(positions)) - 1] = True
    return keys, scores, positions, first


def side_from_schedule(schedule: Schedule) -> Side:
    """Columns of ``schedule``; a key decided twice keeps its last decision."""
    by_key: dict[Key, Decision] = {
        (d.codebase, d.campaign, d.change_set): d for d in schedule.decisions
    }
    keys = list(by_key)
    decisions = list(by_key.values())
    index = {k: i for i, k in enumerate(keys)}
    columns = _columns(decisions, DECISION_FIELDS)
    queue_keys, scores, queue_pos, first = queue_arrays(schedule.queue)
    get = queue_pos.get
    row = np.fromiter((get(k, 0) for k in keys), dtype=np.int64, count=len(keys)) - 1
    queued = row >= 0
    safe = np.where(queued, row, 0)
    if scores.shape[0]:
        priority = np.where(queued, scores[safe, 1].astype(np.float64), np.nan)
        bucket = np.where(queued, scores[safe, 0].astype(np.float64), np.nan)
    else:
        priority = np.full(len(keys), np.nan)
        bucket = np.full(len(keys), np.nan)
    positions = np.where(queued, (row + 1).astype(np.float64), np.nan)
    not_queued = ~queued
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
        queue_keys=queue_keys,
        queue_scores=scores,
        queue_first=first,
        queue_row=row,
        structures=list(map(_structure, decisions)),
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
    #: queue rows (0-based, in A's queue order) of keys queued on both sides:
    #: ``queue_a[i]`` in A's queue and ``queue_b[i]`` in B's are the same key
    queue_a: IntArray
    queue_b: IntArray
    #: per key of A / of B: the tie-aware position among the keys queued on both
    #: sides (see :func:`common_positions`); NaN where not queued on both
    position_a: FloatArray
    position_b: FloatArray
    #: B's queue priorities minus this are compared with A's (see :func:`priority_shift`)
    priority_shift: float = 0.0

    def column_a(self, name: str) -> Column:
        """A's column ``name`` for its aligned keys (positions are this alignment's)."""
        if name == "queue_position":
            return Column(self.position_a[self.ia], np.isnan(self.position_a[self.ia]))
        return self.a.columns[name].take(self.ia)

    def value_a(self, name: str, key_index: int) -> float | None:
        """A's value of field ``name`` for its key ``key_index`` (``None``: null)."""
        return _value(self.a, self.position_a, name, key_index)

    def value_b(self, name: str, key_index: int) -> float | None:
        """B's value as compared (a queue priority less the common shift)."""
        value = _value(self.b, self.position_b, name, key_index)
        if name == "queue_priority" and value is not None:
            value -= self.priority_shift
        return value

    def column_b(self, name: str) -> Column:
        if name == "queue_position":
            return Column(self.position_b[self.ib], np.isnan(self.position_b[self.ib]))
        column = self.b.columns[name].take(self.ib)
        if name == "queue_priority" and self.priority_shift:
            return Column(column.values - self.priority_shift, column.null)
        return column


def _value(side: Side, positions: FloatArray, name: str, key_index: int) -> float | None:
    if name == "queue_position":
        value = float(positions[key_index])
        return None if value != value else value
    column = side.columns[name]
    return None if column.null[key_index] else float(column.values[key_index])


def align(a: Side, b: Side) -> Alignment:
    """Pair the keys of ``a`` and ``b`` (and make their queue positions comparable)."""
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
    qa: list[int] = []
    qb: list[int] = []
    b_queue = b.queue_pos
    keys = a.queue_keys
    for row in np.flatnonzero(a.queue_first).tolist():
        position = b_queue.get(keys[row])
        if position is not None:
            qa.append(row)
            qb.append(position - 1)
    as_array = lambda xs: np.asarray(xs, dtype=np.int64)  # noqa: E731
    queue_a, queue_b = as_array(qa), as_array(qb)
    pairs_a, pairs_b = as_array(ia), as_array(ib)
    return Alignment(
        a,
        b,
        pairs_a,
        pairs_b,
        as_array(missing),
        as_array(extra),
        queue_a,
        queue_b,
        _group_starts(a, queue_a),
        _group_starts(b, np.sort(queue_b)),
        priority_shift(a.columns["queue_priority"], b.columns["queue_priority"], pairs_a, pairs_b),
    )


def priority_shift(pa: Column, pb: Column, ia: IntArray, ib: IntArray) -> float:
    """The shift of B's whole queue against A's: the most common ``B − A`` of
    the priorities of the keys queued on both sides, when more keys share it
    than share no shift at all (else 0).

    The legacy queues every item at the queue's minimum plus its own offset,
    and the minimum comes from the first row it processed (spec §7). So when
    that one row's offset changes, every priority moves by the same amount,
    which workers never see (they see the order). Removing the common shift
    leaves each candidate's priority divergence to the candidates whose own
    priority moved.
    """
    ok = ~pa.null[ia] & ~pb.null[ib]
    if not ok.any():
        return 0.0
    diff = pb.values[ib][ok] - pa.values[ia][ok]
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return 0.0
    values, counts = np.unique(diff, return_counts=True)
    best = int(np.argmax(counts))
    at_zero = counts[values == 0.0]
    if values[best] != 0.0 and counts[best] > (int(at_zero[0]) if at_zero.size else 0):
        return float(values[best])
    return 0.0


def _group_starts(side: Side, rows: IntArray) -> FloatArray:
    """Per key of ``side``: the 1-based rank, among the queue ``rows`` (sorted:
    the rows whose key is queued on both sides), of the first member of its
    tie group (same bucket and priority); NaN where not among them.

    That makes ``queue_position`` comparable: an item present on one side only
    does not shift everything after it, and the order inside a tie group (the
    row ids, i.e. insertion order) is compared separately, as tie order."""
    by_row = np.full(len(side.queue_keys), np.nan)
    if rows.size:
        scores = side.queue_scores[rows]
        new = np.ones(rows.size, dtype=bool)
        new[1:] = np.any(scores[1:] != scores[:-1], axis=1)
        ranks = np.arange(1, rows.size + 1)
        by_row[rows] = np.maximum.accumulate(np.where(new, ranks, 0))
    if not by_row.size:
        return np.full(side.size, np.nan)
    row = side.queue_row
    return np.where(row >= 0, by_row[np.maximum(row, 0)], np.nan)


def same_value(x: Any, y: Any) -> bool:
    """Equality where NaN equals NaN (the comparator's rule for repeated NaN)."""
    if x == y:
        return True
    return isinstance(x, float) and isinstance(y, float) and x != x and y != y


_structure = attrgetter(*STRUCTURE_FIELDS)


def structures_differ(sa: tuple[Any, ...], sb: tuple[Any, ...]) -> bool:
    """Whether two :attr:`Side.structures` entries differ (NaN equal to NaN)."""
    return sa != sb and not all(map(same_value, sa, sb))


def structure_mismatch(da: Decision, db: Decision) -> tuple[str, ...]:
    """Names of the structure fields that differ (cheap; deepdiff explains them)."""
    if _structure(da) == _structure(db):
        return ()
    return tuple(
        name for name in STRUCTURE_FIELDS if not same_value(getattr(da, name), getattr(db, name))
    )
