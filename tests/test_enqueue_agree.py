"""Redis, the queue table and a ten-line model of the upsert rule agree on every queue.

Rounds of enqueues with overlapping keys, random buckets and priorities (many
ties) and random batch sizes go to both targets; after each round both hold
exactly the model's queue, in the model's worker order, and report the same
counts.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engines.model import BUCKET_RANK, BUCKETS
from harness.enqueue import Action, EnqueueCounts, EnqueueItem, classify, open_target
from harness.enqueue.redis_queue import RedisQueue

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

CODEBASES = tuple(f"pkg{n}" for n in range(6))


def model(rounds: list[list[EnqueueItem]]) -> Iterator[tuple[list[EnqueueItem], EnqueueCounts]]:
    """The rule, plainly: per round, the queue in worker order and the counts."""
    queue: dict[tuple[str, str, str | None], tuple[EnqueueItem, int]] = {}
    seq = 0
    for items in rounds:
        actions = []
        for item in items:
            existing = queue.get(item.raw_key)
            action = classify(item, None if existing is None else existing[0])
            actions.append(action)
            if action is Action.ADD:
                seq += 1
                queue[item.raw_key] = (item, seq)
            elif action.writes and existing is not None:
                queue[item.raw_key] = (item, existing[1])
        ordered = sorted(
            queue.values(), key=lambda e: (BUCKET_RANK[e[0].bucket], e[0].priority, e[1])
        )
        yield [e[0] for e in ordered], EnqueueCounts.of(actions)


entry = st.builds(
    EnqueueItem,
    codebase=st.sampled_from(CODEBASES),
    campaign=st.sampled_from(("camp-a", "camp-b")),
    change_set=st.sampled_from((None, "cs")),
    command=st.sampled_from(("run", "other")),
    bucket=st.sampled_from(BUCKETS[:3] + BUCKETS[-1:]),
    priority=st.integers(min_value=-3, max_value=3) | st.integers(-(2**63), 2**63 - 1),
    context=st.sampled_from((None, "ctx", "it's")),
    estimated_duration_us=st.none() | st.integers(min_value=0, max_value=10**14),
    refresh=st.booleans(),
    requester=st.sampled_from((None, "scheduler")),
    branch_url=st.none(),  # deprecated: the legacy's add never writes it, so neither does the table
)
rounds_strategy = st.lists(
    st.lists(entry, max_size=12, unique_by=lambda i: i.raw_key), min_size=1, max_size=4
)


@pytest.fixture(scope="module")
def shared_db(janitor_databases) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with janitor_databases.fresh() as dsn:
        with psycopg.connect(dsn) as conn:
            for name in CODEBASES:
                conn.execute("INSERT INTO codebase (name) VALUES (%s)", (name,))
            conn.execute("INSERT INTO change_set (id, campaign) VALUES ('cs', 'camp-a')")
        yield dsn


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rounds=rounds_strategy, batch_size=st.integers(min_value=1, max_value=5))
def test_both_targets_hold_the_models_queue(
    redis_url: str, shared_db: str, rounds: list[list[EnqueueItem]], batch_size: int
) -> None:
    with psycopg.connect(shared_db, autocommit=True) as conn:
        conn.execute("TRUNCATE queue RESTART IDENTITY")
    with (
        open_target(redis_url, batch_size=batch_size, key_prefix="agree") as redis_target,
        open_target(shared_db, batch_size=batch_size) as table,
    ):
        assert isinstance(redis_target, RedisQueue)
        redis_target.clear()
        for items, (expected, counts) in zip(rounds, model(rounds), strict=True):
            for target in (redis_target, table):
                plan = target.plan(items)
                assert plan.counts == counts
                assert target.apply(plan).counts == counts
                assert target.entries() == expected
