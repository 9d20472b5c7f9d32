"""The enqueue model without a server: the upsert rule, plan counts, URL redaction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engines.base import get_engine
from engines.model import BUCKETS, QueueItem
from engines.queue_sim import QueueSimulator
from harness.data.sources import schedule_source
from harness.enqueue import (
    Action,
    EnqueueCounts,
    EnqueueError,
    EnqueueItem,
    classify,
    items_from_schedule,
    open_target,
    overwrites,
    redact_url,
)
from harness.enqueue.plan import scrub, unique_keys

buckets = st.sampled_from(BUCKETS)
priorities = st.integers(min_value=-(10**12), max_value=10**12)


@given(buckets, priorities, buckets, st.integers(min_value=-(10**6), max_value=10**6))
def test_overwrite_rule_agrees_with_the_queue_simulation(
    old_bucket: str, old_priority: int, new_bucket: str, offset: int
) -> None:
    """The same decision as the legacy's INSERT … ON CONFLICT … WHERE, as simulated."""
    existing = QueueItem(1, "cb", "camp", "cmd", bucket=old_bucket, priority=old_priority)
    sim = QueueSimulator([existing])
    _, bucket, priority = sim.add(
        codebase="cb", campaign="camp", command="cmd2", offset=float(offset), bucket=new_bucket
    )
    new_priority = old_priority + offset  # the simulation adds to the queue's minimum
    replaced = (bucket, priority) == (new_bucket, new_priority) and (
        sim.get(existing.key) != existing
    )
    assert overwrites(old_bucket, old_priority, new_bucket, new_priority) == replaced


def _item(bucket: str = "default", priority: int = 0, **kw: object) -> EnqueueItem:
    fields: dict[str, object] = {
        "codebase": "cb",
        "campaign": "camp",
        "change_set": None,
        "command": "run",
        "bucket": bucket,
        "priority": priority,
    }
    fields.update(kw)
    return EnqueueItem(**fields)  # type: ignore[arg-type]


def test_classify_names_each_outcome() -> None:
    here = _item("default", 10)
    assert classify(here, None) is Action.ADD
    assert classify(here, here) is Action.UNCHANGED
    assert classify(_item("default", 10, context="c"), here) is Action.UPDATE
    # same bucket: overwritten even with a worse priority (spec §7)
    assert classify(_item("default", 99), here) is Action.MOVE
    # a more urgent bucket wins over default, and is never overwritten by it
    assert classify(_item("manual", 99), here) is Action.MOVE
    assert classify(here, _item("manual", 99)) is Action.KEEP
    # deprecated branch_url alone is no change (the legacy's add never writes it)
    assert classify(_item(branch_url="https://x"), _item()) is Action.UNCHANGED


def test_counts_add_up() -> None:
    counts = EnqueueCounts.of([Action.ADD, Action.KEEP, Action.UNCHANGED, Action.MOVE])
    assert (counts.added, counts.moved, counts.left_alone, counts.written) == (1, 1, 2, 2)
    assert (counts + counts).to_json()["kept"] == 2


def test_items_from_schedule_are_the_decisions_entries_in_worker_order() -> None:
    schedule = schedule_source(get_engine("new:parity"), "default")
    items = items_from_schedule(schedule)
    assert [i.key for i in items] == [q.key for q in schedule.queue]
    assert {i.key for i in items} == {d.key for d in schedule.decisions if d.ok}


def test_items_from_schedule_skip_entries_no_decision_touched() -> None:
    schedule = schedule_source(get_engine("new:parity"), "default")
    stranger = QueueItem(10**6, "other", "camp", "cmd", bucket="manual", priority=-5)
    schedule.queue.insert(0, stranger)
    assert stranger.key not in {i.key for i in items_from_schedule(schedule)}


def test_a_key_twice_is_refused() -> None:
    with pytest.raises(EnqueueError, match="appears twice"):
        unique_keys([_item(), _item(priority=3)])


def test_priority_beyond_bigint_is_refused() -> None:
    with pytest.raises(EnqueueError, match="not a bigint"):
        unique_keys([_item(priority=2**63)])
    with pytest.raises(EnqueueError, match="out of range"):
        unique_keys([_item(estimated_duration_us=2**63)])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@host:6379/0", "redis://host:6379/0"),
        ("rediss://user:hunter2@host/1", "rediss://user@host/1"),
        ("postgresql://janitor:hunter2@db/janitor", "postgresql://janitor@db/janitor"),
        (
            "postgresql://db/janitor?password=hunter2&sslmode=require",
            "postgresql://db/janitor?sslmode=require",
        ),
    ],
)
def test_redact_url_drops_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_scrub_masks_an_echoed_password() -> None:
    url = "redis://:p%40ss@host/0"
    assert scrub("auth failed for p@ss and p%40ss\nmore", url) == "auth failed for *** and ***"
    other = "see postgresql://u:other@db/x"
    assert scrub(other, url) == "see postgresql://u:***@db/x"


def test_unknown_scheme_is_one_line_without_the_url() -> None:
    with pytest.raises(EnqueueError) as caught:
        open_target("user:hunter2@host/0")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(EnqueueError, match="'mysql'"):
        open_target("mysql://u:hunter2@host/db")
