"""The new engine's queue in Redis (migration plan §3.1), with the queue table's semantics.

Layout under a key prefix (default ``queue``):

* ``{prefix}:{bucket}`` — one sorted set per bucket, scored by priority;
* ``{prefix}:items`` — a hash: item id → the entry's payload (JSON);
* ``{prefix}:seq`` — a counter that numbers entries at their first add, as
  the table's ``id`` sequence does (an entry keeps its number when re-added).

The item id is the JSON array ``[codebase, campaign, change_set]``, the queue
table's unique key. A sorted-set member is that id behind a fixed-width
prefix, ``{priority+2**63:016x}{seq:016x}:``. Why the prefix: priorities are
bigints, and a score (a double) holds integers exactly only up to 2**53,
which nothing keeps the offsets below (cost / worth grows without bound as
the success probability falls); Redis orders equal scores by member bytes, and the prefix makes that
order the exact priority and then the sequence. The score is ``float(priority)``,
monotone in the priority, so ``(score, member)`` order is ``(priority, seq)``
for every bigint, and ties break as the table's id would. A member therefore
changes when its entry moves; the payload records the current member.

Writes go in batches, each one ``WATCH``/``MULTI``/``EXEC`` transaction: the
upsert rule is decided on what the batch read, and if anything touched the
queue in between (a worker took an item) the batch is decided again. Readers
and workers never see part of a batch, and a server killed mid-batch comes
back (AOF) with the batch wholly there or wholly absent. Taking the next item
is one Lua script over the buckets in order, so no two workers get the same.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
import redis
from redis.exceptions import WatchError

from engines.model import BUCKETS, CandidateKey
from harness.enqueue.plan import (
    DEFAULT_BATCH_SIZE,
    INT64_MIN,
    Action,
    BatchedTarget,
    EnqueueError,
    EnqueueItem,
    EnqueuePlan,
    PlanEntry,
    chunks,
    classify,
)

#: Width of a member's sort prefix: 16 hex digits of priority, 16 of sequence, ':'.
PREFIX_LENGTH = 33
#: How often a batch is decided again when workers keep changing the queue under it.
MAX_ATTEMPTS = 50

#: KEYS: the bucket sets in bucket order, then the items hash. Returns the payload or nil.
_TAKE = """
local items = KEYS[#KEYS]
for i = 1, #KEYS - 1 do
  local popped = redis.call('ZPOPMIN', KEYS[i])
  if popped[1] then
    local id = string.sub(popped[1], 34)
    local payload = redis.call('HGET', items, id)
    redis.call('HDEL', items, id)
    return payload
  end
end
return false
"""

#: KEYS as _TAKE; ARGV: the item id, then the bucket names in bucket order.
_POSITION = """
local payload = redis.call('HGET', KEYS[#KEYS], ARGV[1])
if not payload then return false end
local entry = cjson.decode(payload)
local position = 0
for i = 1, #KEYS - 1 do
  if ARGV[i + 1] == entry['bucket'] then
    local rank = redis.call('ZRANK', KEYS[i], entry['member'])
    if not rank then return false end
    return position + rank
  end
  position = position + redis.call('ZCARD', KEYS[i])
end
return false
"""


#: KEYS[1]: the items hash; ARGV: item ids. Returns {index, payload, …} for the ids
#: present only: a fresh queue answers with nothing to parse (HMGET would send a nil per id).
_FOUND = """
local out = {}
for i = 1, #ARGV do
  local payload = redis.call('HGET', KEYS[1], ARGV[i])
  if payload then
    out[#out + 1] = i
    out[#out + 1] = payload
  end
end
return out
"""


def item_id(key: CandidateKey | EnqueueItem) -> str:
    """The stable id of a queue entry: its unique key as a JSON array."""
    return orjson.dumps((key[0], key[1], key[2])).decode()


def member(priority: int, seq: int, ident: str) -> str:
    return f"{priority - INT64_MIN:016x}{seq:016x}:{ident}"


class _Stored(NamedTuple):
    item: EnqueueItem
    seq: int
    member: str


_FIELDS = EnqueueItem._fields


def _encode(item: EnqueueItem, seq: int, sort_member: str) -> bytes:
    """The payload: the entry's fields by name, its sequence number and current member."""
    return orjson.dumps(
        {**dict(zip(_FIELDS, item, strict=True)), "seq": seq, "member": sort_member}
    )


def _decode(raw: str | bytes) -> _Stored:
    data = orjson.loads(raw)
    return _Stored(EnqueueItem._make(map(data.__getitem__, _FIELDS)), data["seq"], data["member"])


class RedisQueue(BatchedTarget):
    """A :class:`~harness.enqueue.plan.QueueTarget` on a Redis server."""

    errors = (redis.RedisError,)

    def __init__(
        self, url: str, *, batch_size: int = DEFAULT_BATCH_SIZE, key_prefix: str = "queue"
    ) -> None:
        super().__init__(url, batch_size)
        self.prefix = key_prefix
        self.bucket_keys = [f"{key_prefix}:{bucket}" for bucket in BUCKETS]
        self.items_key = f"{key_prefix}:items"
        self.seq_key = f"{key_prefix}:seq"
        try:
            self._client: redis.Redis = redis.Redis.from_url(url, decode_responses=True)
            self._client.ping()
        except (redis.RedisError, ValueError) as exc:
            raise self._error("cannot connect to", exc) from None
        self._take = self._client.register_script(_TAKE)
        self._position = self._client.register_script(_POSITION)

    def bucket_key(self, bucket: str) -> str:
        return f"{self.prefix}:{bucket}"

    # ------------------------------------------------------------ reading

    def _found(self, client: Any, ids: Sequence[str]) -> dict[int, _Stored]:
        """The stored entries among ``ids``, by position (plain EVAL: it also runs
        immediately on a pipeline under WATCH, where a cached script could not be loaded)."""
        flat = client.eval(_FOUND, 1, self.items_key, *ids)
        return {flat[n] - 1: _decode(flat[n + 1]) for n in range(0, len(flat), 2)}

    def _plan(self, items: Sequence[EnqueueItem]) -> EnqueuePlan:
        entries: list[PlanEntry] = []
        try:
            for batch in chunks(items, self.batch_size):
                ids = [item_id(item) for item in batch]
                stored = self._found(self._client, ids)
                for n, item in enumerate(batch):
                    existing = s.item if (s := stored.get(n)) else None
                    entries.append(PlanEntry(item, classify(item, existing), existing))
        except redis.RedisError as exc:
            raise self._error("cannot read the queue at", exc) from None
        return EnqueuePlan(self.url, tuple(entries))

    def entries(self) -> list[EnqueueItem]:
        """The queue in worker order, read in one transaction (a consistent view)."""
        try:
            with self._client.pipeline(transaction=True) as pipe:
                for key in self.bucket_keys:
                    pipe.zrange(key, 0, -1)
                pipe.hgetall(self.items_key)
                *ranges, payloads = pipe.execute()
        except redis.RedisError as exc:
            raise self._error("cannot read the queue at", exc) from None
        return [_decode(payloads[m[PREFIX_LENGTH:]]).item for members in ranges for m in members]

    def position(self, key: CandidateKey) -> int | None:
        """0-based place in worker order across all buckets (``None``: not queued)."""
        try:
            found = self._position(
                keys=[*self.bucket_keys, self.items_key], args=[item_id(key), *BUCKETS]
            )
        except redis.RedisError as exc:
            raise self._error("cannot read the queue at", exc) from None
        return None if found is None else int(found)

    def take(self) -> EnqueueItem | None:
        """Remove and return the next item in worker order, atomically (a worker's pop)."""
        try:
            raw = self._take(keys=[*self.bucket_keys, self.items_key])
        except redis.RedisError as exc:
            raise self._error("cannot take from the queue at", exc) from None
        return None if raw is None else _decode(raw).item

    def __len__(self) -> int:
        try:
            return int(self._client.hlen(self.items_key))
        except redis.RedisError as exc:
            raise self._error("cannot read the queue at", exc) from None

    # ------------------------------------------------------------ writing

    def _write_batch(self, batch: Sequence[EnqueueItem]) -> list[Action]:
        ids = [item_id(item) for item in batch]
        for attempt in range(MAX_ATTEMPTS):
            with self._client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(self.items_key)
                    return self._decide_and_write(pipe, ids, batch)
                except WatchError:
                    # a worker took an entry meanwhile: decide again, after a short, growing,
                    # jittered pause so that busy workers cannot starve the batch
                    time.sleep(random.uniform(0, min(0.1, 0.001 * 2**attempt)))
        raise EnqueueError(
            f"{self.url}: the queue changed under every one of {MAX_ATTEMPTS} attempts "
            "to write a batch; nothing of that batch was written"
        )

    def _decide_and_write(
        self, pipe: Any, ids: Sequence[str], batch: Sequence[EnqueueItem]
    ) -> list[Action]:
        """Inside WATCH: read, decide with the upsert rule, then MULTI … EXEC."""
        stored = self._found(pipe, ids)
        absent = len(ids) - len(stored)
        next_seq = int(pipe.incrby(self.seq_key, absent)) - absent + 1 if absent else 0
        actions: list[Action] = []
        # Arguments go as bytes (the client passes bytes through untouched); scores as
        # integers' digits, which Redis rounds to a double exactly as float() would.
        payloads: dict[bytes, bytes] = {}
        removals: dict[str, list[str]] = {}
        additions: dict[str, dict[bytes, bytes]] = {}
        for n, (ident, item) in enumerate(zip(ids, batch, strict=True)):
            old = stored.get(n)
            action = classify(item, None if old is None else old.item)
            actions.append(action)
            if not action.writes:
                continue
            if old is None:
                seq, next_seq = next_seq, next_seq + 1
            else:
                seq = old.seq
            new_member = member(item.priority, seq, ident)
            payloads[ident.encode()] = _encode(item, seq, new_member)
            if old is not None:
                if (old.item.bucket, old.member) == (item.bucket, new_member):
                    continue  # updated in place: the payload only
                removals.setdefault(old.item.bucket, []).append(old.member)
            additions.setdefault(item.bucket, {})[new_member.encode()] = b"%d" % item.priority
        if not payloads:
            pipe.unwatch()
            return actions
        pipe.multi()
        pipe.hset(self.items_key, mapping=payloads)
        for bucket, members in removals.items():
            pipe.zrem(self.bucket_key(bucket), *members)
        for bucket, mapping in additions.items():
            pipe.zadd(self.bucket_key(bucket), mapping)
        pipe.execute()
        return actions

    # ------------------------------------------------------------ lifetime

    def clear(self) -> None:
        """Remove the whole queue (the keys under the prefix), in one transaction."""
        try:
            self._client.delete(*self.bucket_keys, self.items_key, self.seq_key)
        except redis.RedisError as exc:
            raise self._error("cannot clear the queue at", exc) from None

    def close(self) -> None:
        self._client.close()
