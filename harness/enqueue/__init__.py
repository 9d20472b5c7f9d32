"""Writing the new engine's decisions where workers take work: Redis or the queue table.

Usage (the ``enqueue`` command and the shadow service both do this)::

    with open_target("redis://:secret@host:6379/0") as target:
        plan = target.plan(schedule)      # reads only: added / moved / left alone
        result = target.apply(plan)       # batches, each all or nothing

``open_target`` picks the implementation by URL scheme: ``redis://``,
``rediss://`` (TLS) and ``unix://`` give :class:`RedisQueue`;
``postgresql://`` and ``postgres://`` give :class:`QueueTable`.
"""

from __future__ import annotations

from harness.enqueue.plan import (
    DEFAULT_BATCH_SIZE,
    Action,
    EnqueueCounts,
    EnqueueError,
    EnqueueItem,
    EnqueuePlan,
    EnqueueResult,
    PlanEntry,
    QueueTarget,
    as_items,
    classify,
    items_from_schedule,
    overwrites,
    redact_url,
)

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_target(
    url: str, *, batch_size: int = DEFAULT_BATCH_SIZE, key_prefix: str = "queue"
) -> QueueTarget:
    """The queue target ``url`` names; ``key_prefix`` applies to Redis only."""
    if url.startswith(REDIS_SCHEMES):
        from harness.enqueue.redis_queue import RedisQueue

        return RedisQueue(url, batch_size=batch_size, key_prefix=key_prefix)
    if url.startswith(POSTGRES_SCHEMES):
        from harness.enqueue.table import QueueTable

        return QueueTable(url, batch_size=batch_size)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    shown = f"scheme {scheme!r}" if scheme.isalnum() else "a URL without a scheme"
    raise EnqueueError(
        f"--to: unsupported queue URL ({shown}; "
        "expected redis://, rediss://, unix:// or postgresql://)"
    )


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Action",
    "EnqueueCounts",
    "EnqueueError",
    "EnqueueItem",
    "EnqueuePlan",
    "EnqueueResult",
    "PlanEntry",
    "QueueTarget",
    "as_items",
    "classify",
    "items_from_schedule",
    "open_target",
    "overwrites",
    "redact_url",
]
