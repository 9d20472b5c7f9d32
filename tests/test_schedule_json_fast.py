"""The schedule writer's shortcuts agree with the general path: orjson writes
what the standard library's ``json`` wrote before (parsed, the same
document), the factors passed through untouched are what the general
conversion would have made of them, and the file written a piece at a time
holds the whole document's bytes."""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.model import Decision, ErrorInfo, Provenance, QueueItem, Schedule
from harness.data import schedule_json
from harness.data.schedule_json import (
    PIECE_ROWS,
    _fast_jsonable,
    _jsonable,
    read_schedule,
    schedule_bytes,
    schedule_pieces,
    schedule_to_json,
    write_schedule,
)
from harness.errors import InputError

texts = st.text(max_size=12)
maybe_text = st.none() | texts
floats = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6)
ints = st.none() | st.integers(-(2**62), 2**62)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**62), 2**62)
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
)
factor_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)

decisions = st.builds(
    Decision,
    codebase=texts,
    campaign=texts,
    change_set=maybe_text,
    context=maybe_text,
    command=maybe_text,
    candidate_value=ints,
    value=floats,
    publish_bonus=floats,
    first_run_bonus=floats,
    normalized_codebase_value=floats,
    success_probability=floats,
    estimated_duration_us=ints,
    total_previous_runs=ints,
    offset=floats,
    bucket=maybe_text,
    error=st.none()
    | st.builds(ErrorInfo, type=texts, message=texts, phase=maybe_text, sqlstate=maybe_text),
    factors=st.dictionaries(texts, factor_values, max_size=5),
    reasons=st.lists(texts, max_size=3).map(tuple),
)
queue_items = st.builds(
    QueueItem,
    id=st.integers(0, 2**62),
    codebase=texts,
    suite=texts,
    command=maybe_text,
    bucket=texts,
    priority=st.integers(-(2**62), 2**62),
    context=maybe_text,
    estimated_duration_us=ints,
    refresh=st.booleans(),
    requester=maybe_text,
    change_set=maybe_text,
)
schedules = st.builds(
    Schedule,
    engine=texts,
    profile=maybe_text,
    settings=st.dictionaries(texts, scalars, max_size=3),
    as_of=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)),
    decisions=st.lists(decisions, max_size=6),
    queue=st.lists(queue_items, max_size=6),
    timings=st.dictionaries(texts, st.floats(allow_nan=True, allow_infinity=True), max_size=3),
    provenance=st.none()
    | st.builds(
        Provenance,
        source=texts,
        recorded_at=maybe_text,
        filters=st.dictionaries(texts, maybe_text, max_size=2),
        details=st.dictionaries(texts, scalars, max_size=2),
    ),
    notes=st.lists(texts, max_size=2),
)


def reference(schedule: Schedule) -> Any:
    return json.loads(json.dumps(schedule_to_json(schedule), indent=1, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(schedules)
def test_fast_writer_writes_the_reference_document(schedule: Schedule) -> None:
    assert json.loads(schedule_bytes(schedule)) == reference(schedule)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(texts, factor_values, max_size=6) | factor_values)
def test_factors_passed_through_are_what_the_general_conversion_makes(value: Any) -> None:
    fast = json.dumps(_fast_jsonable(value), allow_nan=False)
    assert json.loads(fast) == json.loads(json.dumps(_jsonable(value), allow_nan=False))


def test_integers_orjson_cannot_hold_take_the_reference_path(tmp_path: Path) -> None:
    decision = Decision("a", "c", None, factors={"huge": 2**70, "bad": float("nan")})
    schedule = Schedule("e", None, {}, datetime(2025, 6, 1), [decision], [])
    assert json.loads(schedule_bytes(schedule)) == reference(schedule)
    write_schedule(schedule, tmp_path / "s.json")
    assert read_schedule(tmp_path / "s.json").decisions[0].factors["huge"] == 2**70


def test_factors_with_keys_that_are_not_strings_take_the_reference_path() -> None:
    decision = Decision("a", "c", None, value=1.5, factors={1: 2.0, None: "x", "ok": 3})
    schedule = Schedule("e", None, {}, datetime(2025, 6, 1), [decision], [])
    assert json.loads(schedule_bytes(schedule)) == reference(schedule)
    assert json.loads(schedule_bytes(schedule))["decisions"][0]["factors"] == {
        "1": 2.0,
        "None": "x",
        "ok": 3,
    }


def _whole_document(schedule: Schedule) -> bytes | None:
    """orjson's serialization of the whole document, or None where it has no rule."""
    try:
        return orjson.dumps(schedule_to_json(schedule, fast=True), option=orjson.OPT_INDENT_2)
    except TypeError:
        return None


@settings(max_examples=300, deadline=None)
@given(schedules, st.integers(1, 4))
def test_pieces_join_into_the_whole_document_byte_for_byte(schedule: Schedule, rows: int) -> None:
    whole = _whole_document(schedule)
    if whole is None:
        with pytest.raises(TypeError):
            b"".join(schedule_pieces(schedule, rows=rows))
    else:
        assert b"".join(schedule_pieces(schedule, rows=rows)) == whole + b"\n"
        assert schedule_bytes(schedule) == whole + b"\n"


def _many_rows(n: int) -> Schedule:
    decisions = [
        Decision(f"cb{i}", "c", None, value=i / 3, factors={"cost": 1.5 * i}, reasons=("r",))
        for i in range(n)
    ]
    queue = [QueueItem(i, f"cb{i}", "c", "cmd", "default", i) for i in range(n)]
    return Schedule("e", None, {}, datetime(2025, 6, 1), decisions, queue)


def test_a_file_of_many_pieces_holds_the_whole_document(tmp_path: Path) -> None:
    schedule = _many_rows(3 * PIECE_ROWS + 5)
    write_schedule(schedule, tmp_path / "s.json")
    whole = _whole_document(schedule)
    assert whole is not None
    assert (tmp_path / "s.json").read_bytes() == whole + b"\n"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_a_value_orjson_refuses_in_a_late_piece_rewrites_the_file_by_the_reference_path(
    tmp_path: Path,
) -> None:
    schedule = _many_rows(2 * PIECE_ROWS)
    schedule.decisions[-1].factors["huge"] = 2**70  # in the last piece: earlier ones are written
    write_schedule(schedule, tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_bytes()) == reference(schedule)
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


@pytest.mark.parametrize("failing", ["second", "last"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "s.json"
    target.write_text("old")
    real_atomic_file = schedule_json.atomic_file

    class DiskFills:
        def __init__(self, handle: IO[bytes]) -> None:
            self.handle, self.written = handle, 0

        def write(self, piece: bytes) -> int:
            if (failing == "second" and self.written) or piece.endswith(b"}\n"):
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += 1
            return self.handle.write(piece)

    @contextmanager
    def filling_up(path: Path) -> Iterator[DiskFills]:
        with real_atomic_file(path) as handle:
            yield DiskFills(handle)

    monkeypatch.setattr(schedule_json, "atomic_file", filling_up)
    with pytest.raises(InputError, match="No space left on device"):
        write_schedule(_many_rows(3 * PIECE_ROWS), target)
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
    assert target.read_text() == "old"
