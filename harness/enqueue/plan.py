"""What an enqueue writes, and the one protocol both queue targets implement.

The new engine's schedule becomes a list of :class:`EnqueueItem`, in the
order workers must take them. A target compares them with what it holds
(:meth:`QueueTarget.plan`: nothing is written) and then writes them
(:meth:`QueueTarget.apply`) in batches, each batch all or nothing. Both
targets re-add an item with the Janitor's upsert rule (legacy spec §7), so
enqueueing the same schedule twice changes nothing the second time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from operator import attrgetter, itemgetter
from types import TracebackType
from typing import Any, NamedTuple, Protocol, Self, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from engines.bulk import bulk_allocation
from engines.model import BUCKET_RANK, CandidateKey, QueueItem, Schedule, timedelta_to_us
from harness.cli.crash import redact_secrets
from harness.errors import ShadowError

#: Items per batch: one MULTI/EXEC (Redis) or one transaction (queue table).
DEFAULT_BATCH_SIZE = 1000


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: What both targets can hold as a duration: a bigint of microseconds that is a timedelta.
MIN_DURATION_US = max(INT64_MIN, timedelta_to_us(timedelta.min))
MAX_DURATION_US = min(INT64_MAX, timedelta_to_us(timedelta.max))


class EnqueueError(ShadowError):
    """A queue target that cannot be opened, read or written (never shows a password)."""


def redact_url(url: str) -> str:
    """``url`` without its password (in the user part or a ``password`` query key)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hostinfo = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{hostinfo}" if user else hostinfo
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "password"], safe="/"
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(message: str, url: str) -> str:
    """First line of an error message, with the URL's password masked if a library echoed it."""
    text = message.strip().splitlines()[0] if message.strip() else ""
    parts = urlsplit(url)
    secrets = [parts.password, unquote(parts.password)] if parts.password else []
    secrets += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return redact_secrets(text)  # and any other connection string the message quotes


class EnqueueItem(NamedTuple):
    """One queue entry as a target stores it; ``priority`` is a bigint, exactly.

    A NamedTuple rather than a frozen dataclass: as immutable, several times
    faster to build and compare, which a 100,000-entry enqueue feels.
    """

    codebase: str
    campaign: str
    change_set: str | None
    command: str | None
    bucket: str
    priority: int
    context: str | None = None
    estimated_duration_us: int | None = None
    refresh: bool = False
    requester: str | None = None
    branch_url: str | None = None

    @property
    def key(self) -> CandidateKey:
        return CandidateKey(self.codebase, self.campaign, self.change_set)

    @property
    def raw_key(self) -> tuple[str, str, str | None]:
        """The key as a plain tuple (cheaper than :attr:`key` in bulk)."""
        return (self.codebase, self.campaign, self.change_set)

    def payload(self) -> tuple[Any, ...]:
        """Everything but the key and the position: what an update may change."""
        # branch_url is deprecated and the legacy's add never writes it: carried, not compared
        return (
            self.command,
            self.context,
            self.estimated_duration_us,
            self.refresh,
            self.requester,
        )

    @classmethod
    def from_queue_item(cls, row: QueueItem) -> EnqueueItem:
        return cls._make(_ROW(row))


#: A queue row's fields in EnqueueItem's order, and its key (bulk conversion).
_ROW = attrgetter(
    "codebase",
    "suite",
    "change_set",
    "command",
    "bucket",
    "priority",
    "context",
    "estimated_duration_us",
    "refresh",
    "requester",
    "branch_url",
)
_ROW_KEY = attrgetter("codebase", "suite", "change_set")
_KEY = itemgetter(0, 1, 2)


def check_item(item: EnqueueItem) -> None:
    """Refuse what no queue can hold: an unknown bucket, a priority beyond bigint."""
    if item.bucket not in BUCKET_RANK:
        raise EnqueueError(f"{item.key.label()}: unknown queue bucket {item.bucket!r}")
    if not INT64_MIN <= item.priority <= INT64_MAX:
        raise EnqueueError(f"{item.key.label()}: priority {item.priority} is not a bigint")
    duration = item.estimated_duration_us
    if duration is not None and not MIN_DURATION_US <= duration <= MAX_DURATION_US:
        raise EnqueueError(f"{item.key.label()}: estimated duration {duration} µs is out of range")


def unique_keys(items: Sequence[EnqueueItem]) -> Sequence[EnqueueItem]:
    """``items``, checked; each key may appear once (one batch cannot upsert a row twice)."""
    if len(set(map(_KEY, items))) != len(items):
        seen: set[tuple[str, str, str | None]] = set()
        for item in items:
            if item.raw_key in seen:
                raise EnqueueError(f"{item.key.label()}: the same queue entry appears twice")
            seen.add(item.raw_key)
    for item in items:
        duration = item.estimated_duration_us
        if (
            item.bucket not in BUCKET_RANK
            or not INT64_MIN <= item.priority <= INT64_MAX
            or (duration is not None and not MIN_DURATION_US <= duration <= MAX_DURATION_US)
        ):
            check_item(item)
    return items


def chunks(items: Sequence[EnqueueItem], size: int) -> Iterator[Sequence[EnqueueItem]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def overwrites(existing_bucket: str, existing_priority: int, bucket: str, priority: int) -> bool:
    """The legacy's upsert condition: does a re-add replace the existing entry?

    ``existing.bucket >= new.bucket OR (same bucket AND existing.priority >=
    new.priority)`` in the enum's order; with equal buckets the first part is
    already true, so a re-add in the same bucket always overwrites.
    """
    old_rank, new_rank = BUCKET_RANK[existing_bucket], BUCKET_RANK[bucket]
    return old_rank >= new_rank or (old_rank == new_rank and existing_priority >= priority)


class Action(Enum):
    ADD = "add"  # not in the queue: inserted
    MOVE = "move"  # overwritten with another bucket or priority
    UPDATE = "update"  # overwritten in place: same bucket and priority, other payload
    UNCHANGED = "unchanged"  # overwritten with identical values: nothing to write
    KEEP = "keep"  # the upsert rule keeps the existing entry (a more urgent bucket)

    @property
    def writes(self) -> bool:
        return self in (Action.ADD, Action.MOVE, Action.UPDATE)


def classify(item: EnqueueItem, existing: EnqueueItem | None) -> Action:
    """What re-adding ``item`` over ``existing`` does under the upsert rule."""
    if existing is None:
        return Action.ADD
    if existing == item:
        return Action.UNCHANGED
    if not overwrites(existing.bucket, existing.priority, item.bucket, item.priority):
        return Action.KEEP
    if (existing.bucket, existing.priority) != (item.bucket, item.priority):
        return Action.MOVE
    if existing.payload() != item.payload():
        return Action.UPDATE
    return Action.UNCHANGED


class PlanEntry(NamedTuple):
    item: EnqueueItem
    action: Action
    #: The entry the target holds now (``None``: absent).
    existing: EnqueueItem | None = None


@dataclass(frozen=True)
class EnqueueCounts:
    added: int = 0
    moved: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0

    @property
    def left_alone(self) -> int:
        return self.unchanged + self.kept

    @property
    def written(self) -> int:
        return self.added + self.moved + self.updated

    @classmethod
    def of(cls, actions: Iterable[Action]) -> EnqueueCounts:
        tally = dict.fromkeys(Action, 0)
        for action in actions:
            tally[action] += 1
        return cls(
            added=tally[Action.ADD],
            moved=tally[Action.MOVE],
            updated=tally[Action.UPDATE],
            unchanged=tally[Action.UNCHANGED],
            kept=tally[Action.KEEP],
        )

    def __add__(self, other: EnqueueCounts) -> EnqueueCounts:
        return EnqueueCounts(
            self.added + other.added,
            self.moved + other.moved,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.kept + other.kept,
        )

    def to_json(self) -> dict[str, int]:
        return {
            "added": self.added,
            "moved": self.moved,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "kept": self.kept,
        }


@dataclass(frozen=True)
class EnqueuePlan:
    """What applying would do, item by item, in the order the items are written."""

    target: str  # the target's URL, without its password
    entries: tuple[PlanEntry, ...]

    @property
    def items(self) -> tuple[EnqueueItem, ...]:
        return tuple(e.item for e in self.entries)

    @property
    def counts(self) -> EnqueueCounts:
        return EnqueueCounts.of(e.action for e in self.entries)


@dataclass(frozen=True)
class EnqueueResult:
    """What :meth:`QueueTarget.apply` did (decided again at write time, atomically)."""

    target: str
    counts: EnqueueCounts
    batches: int
    #: ``should_stop`` answered yes between two batches: the rest was not written.
    stopped: bool = False
    timings: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class QueueTarget(Protocol):
    """A queue the new engine's decisions are written to (Redis or the queue table)."""

    #: The URL without its password: safe to print and log.
    url: str

    def plan(self, schedule: Schedule | Sequence[EnqueueItem]) -> EnqueuePlan:
        """Compare the schedule's entries (or these items) with the queue; reads only."""
        ...

    def apply(
        self, plan: EnqueuePlan, *, should_stop: Callable[[], bool] | None = None
    ) -> EnqueueResult:
        """Write the plan's items in batches, each wholly or not at all.

        The upsert rule is applied again against the queue as it is at write
        time (the plan may be stale); ``should_stop`` is asked before each
        batch, so a service stopping never leaves a partial batch.
        """
        ...

    def entries(self) -> list[EnqueueItem]:
        """The whole queue in the order workers take it (bucket, priority, insertion)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def as_items(schedule: Schedule | Sequence[EnqueueItem]) -> list[EnqueueItem]:
    """A schedule's entries (:func:`items_from_schedule`), or the items as given."""
    if isinstance(schedule, Schedule):
        return items_from_schedule(schedule)
    return list(schedule)


class BatchedTarget:
    """What both targets share: the batch loop of :meth:`apply`, one-line errors, lifetime.

    A subclass names ``errors`` (its library's exception types) and writes one
    batch atomically in :meth:`_write_batch`.
    """

    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, url: str, batch_size: int) -> None:
        if batch_size < 1:
            raise EnqueueError(f"batch size must be at least 1, not {batch_size}")
        #: Safe to print and log; ``_secret_url`` is for connecting only.
        self.url = redact_url(url)
        self._secret_url = url
        self.batch_size = batch_size

    def _error(self, doing: str, exc: BaseException) -> EnqueueError:
        reason = scrub(str(exc), self._secret_url) or type(exc).__name__
        return EnqueueError(f"{doing} {self.url}: {reason}")

    def _plan(self, items: Sequence[EnqueueItem]) -> EnqueuePlan:
        raise NotImplementedError

    def _write_batch(self, batch: Sequence[EnqueueItem]) -> list[Action]:
        raise NotImplementedError

    def plan(self, schedule: Schedule | Sequence[EnqueueItem]) -> EnqueuePlan:
        with bulk_allocation():
            return self._plan(unique_keys(as_items(schedule)))

    def apply(
        self, plan: EnqueuePlan, *, should_stop: Callable[[], bool] | None = None
    ) -> EnqueueResult:
        started = time.perf_counter()
        counts = EnqueueCounts()
        batches = 0
        stopped = False
        with bulk_allocation():
            items = unique_keys(plan.items)
        try:
            for batch in chunks(items, self.batch_size):
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                with bulk_allocation():
                    counts += EnqueueCounts.of(self._write_batch(batch))
                batches += 1
        except self.errors as exc:
            raise self._error(
                f"writing batch {batches + 1} failed (batches 1-{batches} are written) at", exc
            ) from None
        elapsed = {"write": time.perf_counter() - started}
        return EnqueueResult(self.url, counts, batches, stopped=stopped, timings=elapsed)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def items_from_schedule(schedule: Schedule) -> list[EnqueueItem]:
    """The queue entries the schedule's decisions produced, in worker order.

    Entries the schedule's queue held before the run (and no decision
    touched) are not the engine's to write. An entry whose re-add the upsert
    rule refused is written as the queue holds it, so the target ends up as
    the schedule says.
    """
    with bulk_allocation():
        decided = {
            (d.codebase, d.campaign, d.change_set) for d in schedule.decisions if d.error is None
        }
        make = EnqueueItem._make
        return [make(_ROW(row)) for row in schedule.queue if _ROW_KEY(row) in decided]
