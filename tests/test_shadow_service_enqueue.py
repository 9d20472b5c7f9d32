"""The shadow service enqueueing for real: into a real Redis, idempotently, and
surviving Redis going away and coming back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_shadow_service import _config, _populate, _records

from engines.base import get_engine
from harness.data.sources import open_source
from harness.service.runner import ShadowService

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# The enqueue targets come from the enqueue work (issue 10, items 1-3); until
# that is merged the service refuses enqueue.to and these tests wait for it.
enqueue = pytest.importorskip("harness.enqueue", reason="the enqueue targets are not merged yet")
items_from_schedule, open_target = enqueue.items_from_schedule, enqueue.open_target


def _expected(dsn: str) -> list[Any]:
    schedule = get_engine("legacy:memory").schedule(open_source(dsn))
    return [item.raw_key for item in items_from_schedule(schedule)]


def _held(url: str) -> list[Any]:
    with open_target(url) as target:
        return [item.raw_key for item in target.entries()]


def test_enqueue_is_idempotent_and_in_the_schedules_order(
    janitor_db: str, redis_url: str, tmp_path: Path
) -> None:
    _populate(janitor_db)
    state = tmp_path / "state"
    config = _config(janitor_db, state, enqueue_to=redis_url, max_cycles=2)
    assert ShadowService(config).run() == 0
    first, second = _records(state)
    expected = _expected(janitor_db)
    assert first["status"] == second["status"] == "ok"
    assert first["enqueue"]["entries"] == len(expected) > 0
    assert first["enqueue"]["added"] == len(expected) and first["enqueue"]["stopped"] is False
    # the same snapshot again: nothing to write
    assert second["enqueue"]["added"] == second["enqueue"]["moved"] == 0
    assert second["enqueue"]["unchanged"] == len(expected)
    assert _held(redis_url) == expected


def test_redis_going_away_fails_the_cycle_and_the_service_recovers(
    janitor_db: str, redis_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _populate(janitor_db)
    state = tmp_path / "state"
    redis_proc = request.getfixturevalue("janitor_redis_proc")
    base = _config(janitor_db, state, enqueue_to=redis_url)
    assert ShadowService(replace(base, max_cycles=1)).run() == 0
    redis_proc.stop()
    try:
        assert ShadowService(base, once=True).run() == 4
    finally:
        redis_proc.start()
    assert ShadowService(replace(base, max_cycles=1)).run() == 0
    statuses = [(r["status"], r.get("phase")) for r in _records(state)]
    assert statuses == [("ok", None), ("failed", "enqueue"), ("ok", None)]
    failed = _records(state)[1]
    assert failed["divergences"]["real"] > 0  # what the cycle found is kept
    assert _held(redis_url) == _expected(janitor_db)
