"""The queue table target against a real PostgreSQL with the Janitor's schema."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest

from engines.base import get_engine
from engines.model import BUCKET_RANK
from harness.data.restore import restore_dataset
from harness.data.snapshot import load_snapshot
from harness.data.sources import schedule_source, snapshot_path
from harness.enqueue import EnqueueError, EnqueueItem, items_from_schedule, open_target
from harness.enqueue.table import QueueTable

pytestmark = pytest.mark.postgres

#: The runner's "next item" query (spec: legacy §7, janitor-schema): the queue
#: joined to its codebase, minus the items already assigned to active runs,
#: ORDER BY bucket, priority, id.
NEXT_ITEM = """
SELECT queue.id, queue.bucket, queue.codebase, queue.suite, queue.command, queue.context,
       queue.estimated_duration, queue.refresh, queue.requester, queue.change_set,
       codebase.branch_url, codebase.vcs_type
FROM queue
LEFT JOIN codebase ON codebase.name = queue.codebase
WHERE NOT (queue.id = ANY(%(assigned)s::int[]))
ORDER BY queue.bucket ASC, queue.priority ASC, queue.id ASC
LIMIT 1
"""


def runner_order(dsn: str) -> list[tuple[str, str, str | None]]:
    """Take every item as the runner does, one at a time (each assigned, then the next)."""
    taken: list[tuple[str, str, str | None]] = []
    assigned: list[int] = []
    with psycopg.connect(dsn) as conn:
        while (row := conn.execute(NEXT_ITEM, {"assigned": assigned}).fetchone()) is not None:
            assigned.append(row[0])
            taken.append((row[2], row[3], row[9]))
    return taken


@pytest.fixture
def restored(janitor_db: str) -> str:
    """The default scenario restored (codebases, candidates, runs) with an empty queue."""
    dataset = load_snapshot(snapshot_path("default"))
    restore_dataset(replace(dataset, queue=()), janitor_db)
    return janitor_db


def test_runner_takes_what_the_new_engine_scheduled_in_its_order(restored: str) -> None:
    schedule = schedule_source(get_engine("new"), restored)  # the live database itself
    expected = items_from_schedule(schedule)
    assert len(expected) > 500
    with open_target(restored, batch_size=97) as target:
        assert isinstance(target, QueueTable)
        first = target.apply(target.plan(schedule))
        assert (first.counts.added, first.batches) == (len(expected), -(-len(expected) // 97))
        assert target.entries() == expected
        assert runner_order(restored) == [i.raw_key for i in expected]

        again = target.plan(schedule)
        assert (again.counts.added, again.counts.moved, again.counts.updated) == (0, 0, 0)
        second = target.apply(again)
        assert (second.counts.added, second.counts.moved, second.counts.written) == (0, 0, 0)
        assert target.entries() == expected


def test_ties_are_broken_by_the_schedules_order(restored: str) -> None:
    """Equal priorities everywhere: only the ids can keep the schedule's order."""
    with psycopg.connect(restored) as conn:
        names = [
            r[0] for r in conn.execute("SELECT name FROM codebase ORDER BY name DESC LIMIT 300")
        ]
    items = [EnqueueItem(n, "lintian-fixes", None, "run", "default", 7) for n in names]
    with open_target(restored, batch_size=64) as target:
        target.apply(target.plan(items))
    assert runner_order(restored) == [i.raw_key for i in items]


def test_upsert_rules_match_the_legacy(restored: str) -> None:
    with psycopg.connect(restored) as conn:
        a, b, c = (r[0] for r in conn.execute("SELECT name FROM codebase ORDER BY name LIMIT 3"))
        conn.execute(
            "INSERT INTO queue (bucket, codebase, suite, command, priority, requester) VALUES "
            "('manual', %s, 'camp', 'old', 5, 'someone'), ('default', %s, 'camp', 'old', 5, 'x'), "
            "('default', %s, 'camp', 'old', 5, 'x')",
            (a, b, c),
        )
        ids_before = dict(conn.execute("SELECT codebase, id FROM queue").fetchall())
    items = [
        EnqueueItem(a, "camp", None, "new", "default", 1),  # manual is more urgent: kept
        EnqueueItem(b, "camp", None, "new", "default", 900),  # same bucket: overwritten
        EnqueueItem(c, "camp", None, "old", "default", 5, context="n", requester="x"),  # in place
    ]
    with open_target(restored) as target:
        plan = target.plan(items)
        assert [e.action.value for e in plan.entries] == ["keep", "move", "update"]
        result = target.apply(plan)
        assert (result.counts.kept, result.counts.moved, result.counts.updated) == (1, 1, 1)
        rows = {e.codebase: e for e in target.entries()}
    assert (rows[a].bucket, rows[a].priority, rows[a].command) == ("manual", 5, "old")
    assert (rows[b].priority, rows[b].command) == (900, "new")
    with psycopg.connect(restored) as conn:
        assert dict(conn.execute("SELECT codebase, id FROM queue").fetchall()) == ids_before


def test_values_round_trip_exactly(restored: str) -> None:
    with psycopg.connect(restored) as conn:
        name = conn.execute("SELECT name FROM codebase LIMIT 1").fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO change_set (id, campaign) VALUES ('cs-1', 'camp')")
    item = EnqueueItem(
        name,
        "camp",
        "cs-1",
        "it's; DROP TABLE queue; --",
        "control",
        2**62 + 1,
        context="ctx 'quoted'",
        estimated_duration_us=90_061_000_001,
        refresh=True,
        requester="scheduler",
    )
    with open_target(restored) as target:
        target.apply(target.plan([item]))
        assert target.entries() == [item]
    with psycopg.connect(restored) as conn:
        row = conn.execute("SELECT estimated_duration FROM queue").fetchone()
    assert row is not None and row[0] == timedelta(microseconds=90_061_000_001)


def test_a_foreign_key_failure_writes_nothing_of_that_batch(restored: str) -> None:
    with psycopg.connect(restored) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM codebase ORDER BY name LIMIT 5")]
    items = [EnqueueItem(n, "camp", None, "run", "default", 1) for n in names]
    items.insert(3, EnqueueItem("no-such-codebase", "camp", None, "run", "default", 1))
    with open_target(restored, batch_size=2) as target:
        with pytest.raises(EnqueueError, match=r"batch 2 failed \(batches 1-1 are written\)"):
            target.apply(target.plan(items))
        assert [e.codebase for e in target.entries()] == names[:2]


def test_connection_killed_mid_batch_rolls_the_batch_back_and_a_rerun_completes(
    restored: str,
) -> None:
    """An uncommitted row of batch 3 blocks the write inside batch 3's INSERT; then the
    writer's backend is terminated: batches 1-2 stay, batch 3 is wholly absent."""
    with psycopg.connect(restored) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM codebase ORDER BY name LIMIT 50")]
    items = [EnqueueItem(n, "camp", None, "run", "default", k % 4) for k, n in enumerate(names)]
    batch = 10
    blocker = psycopg.connect(restored)
    blocker.execute(
        "INSERT INTO queue (codebase, suite, command, priority) VALUES (%s, 'camp', 'x', 99)",
        (items[25].codebase,),
    )  # uncommitted: batch 3 (items 20-29) waits for it in the middle of its INSERT
    failure: list[BaseException] = []
    target = open_target(restored, batch_size=batch)
    assert isinstance(target, QueueTable)
    pid = target.backend_pid

    def write() -> None:
        try:
            target.apply(target.plan(items))
        except EnqueueError as exc:
            failure.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with psycopg.connect(restored, autocommit=True) as admin:
            deadline = time.monotonic() + 30
            while (
                admin.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
                or ("",)
            )[0] != "Lock":
                assert time.monotonic() < deadline, "the writer never blocked"
                time.sleep(0.02)
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        writer.join(30)
    finally:
        blocker.rollback()
        blocker.close()
    assert failure and "batch 3 failed (batches 1-2 are written)" in str(failure[0])
    with target:  # the same target: it connects again by itself
        present = {e.raw_key for e in target.entries()}
        assert present == {i.raw_key for i in items[:20]}
        assert target.backend_pid != pid
        rerun = target.apply(target.plan(items))
        assert (rerun.counts.added, rerun.counts.unchanged) == (30, 20)
        assert target.entries() == sorted(
            items, key=lambda i: (BUCKET_RANK[i.bucket], i.priority, items.index(i))
        )


def test_password_never_shown(restored: str) -> None:
    secret = "n0t-the-password"
    url = restored.replace("postgres@", f"postgres:{secret}@")
    with open_target(url) as target:  # trust authentication: any password connects
        assert secret not in target.url
    with pytest.raises(EnqueueError) as caught:
        open_target(url.rsplit("/", 1)[0] + "/no_such_database")
    assert secret not in str(caught.value) and "no_such_database" in str(caught.value)


def test_existing_rows_keep_their_ids_and_other_rows_stay(restored: str) -> None:
    schedule = schedule_source(get_engine("new"), restored)
    with psycopg.connect(restored) as conn:
        other = conn.execute("SELECT name FROM codebase ORDER BY name DESC LIMIT 1").fetchone()
        assert other is not None
        conn.execute(
            "INSERT INTO queue (bucket, codebase, suite, command, priority) "
            "VALUES ('hook', %s, 'elsewhere', 'x', -3)",
            (other[0],),
        )
    with open_target(restored) as target:
        target.apply(target.plan(schedule))
        entries = target.entries()
    assert entries[0] == EnqueueItem(other[0], "elsewhere", None, "x", "hook", -3)
    assert len(entries) == len(items_from_schedule(schedule)) + 1
