"""The schedule JSON file: a documented, versioned format other tools read.

Schema: ``harness/data/schedule.schema.json`` (JSON Schema, draft 2020-12). The
version goes up on any incompatible change; readers refuse versions they do
not know. Floats are written with the shortest repr that reads back as the
same double, so a schedule survives a round trip bit for bit; a non-finite
float is written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``.

:func:`schedule_to_json` builds the document; :func:`schedule_pieces`
serializes it with orjson (a fifth of the standard library's time on
100,000 candidates) a few thousand rows at a time, an engine's numbers and
``factors`` passed through untouched when a check of all decisions at once
finds only finite floats and scalar factors (else each decision's
``factors`` are checked on their own); property tests hold both shortcuts to
the general path. :func:`write_schedule` writes the pieces to a file
atomically (:mod:`harness.data.atomic`); :func:`schedule_bytes` joins them.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson

from engines.bulk import bulk_allocation
from engines.model import Decision, ErrorInfo, Provenance, QueueItem, Schedule
from harness.data.atomic import atomic_file, write_atomic
from harness.data.safe_files import load_json
from harness.errors import InputError

SCHEMA_NAME = "janitor-shadow/schedule"
SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("schedule.schema.json")


def _num(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _unnum(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        return float(value.replace("Infinity", "inf"))
    return float(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


#: A decision's float fields, in the document's order.
_FLOAT_FIELDS = attrgetter(
    "value",
    "publish_bonus",
    "first_run_bonus",
    "normalized_codebase_value",
    "success_probability",
    "offset",
)


def decision_to_json(seq: int, d: Decision, *, plain: bool = False) -> dict[str, Any]:
    """``plain``: the caller checked (:func:`_all_plain`) that nothing needs converting."""
    duration = d.estimated_duration_us
    if plain:
        value, publish_bonus, first_run_bonus, codebase_value, probability, offset = _FLOAT_FIELDS(
            d
        )
        factors = d.factors
    else:
        value, publish_bonus, first_run_bonus, codebase_value, probability, offset = map(
            _num, _FLOAT_FIELDS(d)
        )
        factors = _fast_jsonable(d.factors)
    return {
        "seq": seq,
        "codebase": d.codebase,
        "campaign": d.campaign,
        "change_set": d.change_set,
        "context": d.context,
        "command": d.command,
        "candidate_value": d.candidate_value,
        "value": value,
        "publish_bonus": publish_bonus,
        "first_run_bonus": first_run_bonus,
        "normalized_codebase_value": codebase_value,
        "success_probability": probability,
        "estimated_duration_us": duration,
        "estimated_duration_seconds": None if duration is None else duration / 1_000_000,
        "total_previous_runs": d.total_previous_runs,
        "offset": offset,
        "bucket": d.bucket,
        "error": None if d.error is None else d.error.to_json(),
        "factors": factors,
        "reasons": d.reasons,
    }


_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


def _all_plain(decisions: list[Decision]) -> bool:
    """Whether every decision's floats are finite and its factors a dict of strings to
    scalars: then the document holds them as they are (the usual case, checked
    in bulk, much faster than decision by decision). A false "no" only costs time."""
    factors: list[Any] = [d.factors for d in decisions]
    if not set(map(type, factors)) <= {dict}:
        return False
    # (keys that are not strings make orjson raise: schedule_bytes then starts over)
    values: list[Any] = list(chain.from_iterable(map(dict.values, factors)))
    if not set(map(type, values)) <= _PLAIN_TYPES:
        return False
    numbers = [v for v in values if type(v) is float]
    numbers.extend(chain.from_iterable(map(_FLOAT_FIELDS, decisions)))
    try:
        # a NaN or an infinity anywhere makes the sum one; an overflow only costs time
        return math.isfinite(sum(filter(None, numbers)))
    except (TypeError, OverflowError):
        return False


def queue_item_to_json(position: int, q: QueueItem) -> dict[str, Any]:
    return {
        "position": position,
        "id": q.id,
        "codebase": q.codebase,
        "campaign": q.suite,
        "change_set": q.change_set,
        "bucket": q.bucket,
        "priority": q.priority,
        "estimated_duration_us": q.estimated_duration_us,
        "context": q.context,
        "command": q.command,
        "requester": q.requester,
        "refresh": q.refresh,
    }


def _head(schedule: Schedule) -> dict[str, Any]:
    """The document's members before its two long lists, in the document's order."""
    errors = sum(1 for d in schedule.decisions if d.error is not None)
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "engine": schedule.engine,
        "profile": schedule.profile,
        "settings": _jsonable(schedule.settings),
        "as_of": schedule.as_of.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "provenance": (
            None if schedule.provenance is None else _jsonable(schedule.provenance.to_json())
        ),
        "timings": _jsonable(schedule.timings),
        "notes": list(schedule.notes),
        "summary": {
            "decisions": len(schedule.decisions),
            "errors": errors,
            "queue_rows": len(schedule.queue),
        },
    }


def schedule_to_json(schedule: Schedule, *, fast: bool = False) -> dict[str, Any]:
    """``fast``: decisions with nothing to convert skip the conversion (same document);
    :func:`schedule_pieces` serializes this document a piece at a time."""
    plain = fast and _all_plain(schedule.decisions)
    return {
        **_head(schedule),
        "decisions": [
            decision_to_json(i, d, plain=plain) for i, d in enumerate(schedule.decisions)
        ],
        "queue": [queue_item_to_json(i, q) for i, q in enumerate(schedule.queue)],
    }


_SCALARS = (str, int, bool, type(None))


def _fast_jsonable(value: Any) -> Any:
    """:func:`_jsonable`, but a dict of strings and finite or non-float scalars is
    returned as it is (the common case: an engine's ``factors``), unconverted."""
    if type(value) is dict:
        isfinite = math.isfinite
        for key, item in value.items():
            if type(key) is not str:
                return _jsonable(value)
            if type(item) is float:
                if not isfinite(item):
                    return _jsonable(value)
            elif not isinstance(item, _SCALARS):
                return _jsonable(value)
        return value
    return _jsonable(value)


def schedule_bytes(schedule: Schedule) -> bytes:
    """The schedule JSON document (:func:`schedule_to_json`'s) in one piece: what
    :func:`write_schedule` writes to a file a piece at a time."""
    # Hundreds of thousands of fresh dicts, none of them cyclic: the cyclic
    # collector would only rescan them (a third of the time).
    with bulk_allocation():
        try:
            return b"".join(schedule_pieces(schedule))
        except TypeError:  # a value orjson has no rule for: the reference path says which
            return _reference_bytes(schedule)


def _reference_bytes(schedule: Schedule) -> bytes:
    return json.dumps(schedule_to_json(schedule), indent=1, allow_nan=False).encode() + b"\n"


#: Decisions or queue rows serialized at a time by :func:`schedule_pieces`.
PIECE_ROWS = 2048


#: What orjson writes around a list held by an object's member: cut from each piece.
_NESTED_HEAD, _NESTED_TAIL = len(b'{\n  "-": [\n'), len(b"\n  ]\n}")


def _nested(rows: list[Any]) -> bytes:
    """``rows`` as orjson indents a list's items one level inside the document:
    dumped as a member of an object, the items are already at that depth."""
    return orjson.dumps({"-": rows}, option=orjson.OPT_INDENT_2)[_NESTED_HEAD:-_NESTED_TAIL]


def _list_pieces(
    name: str, rows: Sequence[Any], to_json: Callable[[int, Any], Any], size: int
) -> Iterator[bytes]:
    if not rows:
        yield f',\n  "{name}": []'.encode()
        return
    yield f',\n  "{name}": [\n'.encode()
    for start in range(0, len(rows), size):
        if start:
            yield b",\n"
        yield _nested([to_json(i, row) for i, row in enumerate(rows[start : start + size], start)])
    yield b"\n  ]"


def schedule_pieces(schedule: Schedule, *, rows: int = PIECE_ROWS) -> Iterator[bytes]:
    """:func:`schedule_bytes`'s document, the same bytes, a few thousand rows at a time.

    A writer can then write one piece while the next is serialized, and the
    whole document (250 MB at 100,000 candidates) is never in memory at once,
    nor its dicts. Each piece is a list dumped as an object's member, which
    puts its items at the depth they have in the document.
    """
    plain = _all_plain(schedule.decisions)
    head = orjson.dumps(_head(schedule), option=orjson.OPT_INDENT_2)
    yield head[:-2]  # the members, without the closing b"\n}"
    yield from _list_pieces(
        "decisions", schedule.decisions, lambda i, d: decision_to_json(i, d, plain=plain), rows
    )
    yield from _list_pieces("queue", schedule.queue, queue_item_to_json, rows)
    yield b"\n}\n"


#: Pieces serialized ahead of the writer thread, at most.
_PIECES_AHEAD = 4


def write_schedule(schedule: Schedule, path: str | os.PathLike[str]) -> None:
    """Write the schedule JSON; ``-`` writes to standard output. A file appears
    whole or not at all.

    A file is written a piece at a time by a second thread (a write releases
    the GIL) while the next piece is serialized.
    """
    if str(path) == "-":
        data = schedule_bytes(schedule)
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        with (
            bulk_allocation(),
            atomic_file(path) as out,
            ThreadPoolExecutor(1, thread_name_prefix="write") as writer,
        ):
            writing: deque[Future[int]] = deque()
            for piece in schedule_pieces(schedule):
                writing.append(writer.submit(out.write, piece))
                if len(writing) > _PIECES_AHEAD:
                    writing.popleft().result()
            for pending in writing:
                pending.result()
    except TypeError:  # a value orjson has no rule for: the reference path says which
        write_atomic(path, _reference_bytes(schedule))


class _Fields:
    """Typed reads of one JSON object of a schedule file; a wrong type names file, record, field."""

    __slots__ = ("file", "record", "row")

    def __init__(self, row: Any, file: str, record: int | str | None) -> None:
        if not isinstance(row, dict):
            raise InputError(
                f"expected an object, got {type(row).__name__}", file=file, record=record
            )
        self.row, self.file, self.record = row, file, record

    def fail(self, name: str, expected: str) -> InputError:
        return InputError(
            f"expected {expected}, got {self.row.get(name)!r:.80}",
            file=self.file,
            record=self.record,
            field=name,
        )

    def get(
        self, name: str, types: type | tuple[type, ...], expected: str, *, required: bool = False
    ) -> Any:
        if name not in self.row:
            if required:
                raise InputError("missing", file=self.file, record=self.record, field=name)
            return None
        value = self.row[name]
        if value is None and not required:
            return None
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
            raise self.fail(name, expected)
        return value

    def text(self, name: str, *, required: bool = False) -> Any:
        return self.get(name, str, "a string", required=required)

    def integer(self, name: str, *, required: bool = False) -> Any:
        return self.get(name, int, "an integer", required=required)

    def number(self, name: str) -> float | None:
        value = self.row.get(name)
        if value is None:
            return None
        if value in ("NaN", "Infinity", "-Infinity"):
            return _unnum(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, 'a number, "NaN", "Infinity" or "-Infinity"')
        return float(value)

    def mapping(self, name: str) -> dict[str, Any]:
        return self.get(name, dict, "an object") or {}

    def strings(self, name: str) -> tuple[str, ...]:
        values = self.get(name, list, "a list of strings") or []
        if not all(isinstance(v, str) for v in values):
            raise self.fail(name, "a list of strings")
        return tuple(values)


def _tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _decision_from_json(row: Any, file: str, record: int) -> Decision:
    f = _Fields(row, file, f"decisions {record}")
    error = f.mapping("error") if f.row.get("error") is not None else None
    info = None
    if error is not None:
        e = _Fields(error, file, f"decisions {record}, error")
        info = ErrorInfo(
            type=e.text("type", required=True),
            message=e.text("message", required=True),
            phase=e.text("phase"),
            sqlstate=e.text("sqlstate"),
        )
    return Decision(
        codebase=f.text("codebase", required=True),
        campaign=f.text("campaign", required=True),
        change_set=f.text("change_set"),
        context=f.text("context"),
        command=f.text("command"),
        candidate_value=f.integer("candidate_value"),
        value=f.number("value"),
        publish_bonus=f.number("publish_bonus"),
        first_run_bonus=f.number("first_run_bonus"),
        normalized_codebase_value=f.number("normalized_codebase_value"),
        success_probability=f.number("success_probability"),
        estimated_duration_us=f.integer("estimated_duration_us"),
        total_previous_runs=f.integer("total_previous_runs"),
        offset=f.number("offset"),
        bucket=f.text("bucket"),
        error=info,
        factors=f.mapping("factors"),
        reasons=f.strings("reasons"),
    )


def _queue_item_from_json(row: Any, file: str, record: int) -> QueueItem:
    f = _Fields(row, file, f"queue {record}")
    return QueueItem(
        id=f.integer("id", required=True),
        codebase=f.text("codebase", required=True),
        suite=f.text("campaign", required=True),
        command=f.text("command"),
        bucket=f.text("bucket", required=True),
        priority=f.integer("priority", required=True),
        context=f.text("context"),
        estimated_duration_us=f.integer("estimated_duration_us"),
        refresh=bool(f.get("refresh", bool, "true or false")),
        requester=f.text("requester"),
        change_set=f.text("change_set"),
    )


def _timings(top: _Fields, file: str) -> dict[str, float]:
    timings = top.mapping("timings")
    reader = _Fields(timings, file, "timings")
    return {name: reader.number(name) or 0.0 for name in timings}


def read_schedule(path: str | os.PathLike[str]) -> Schedule:
    """Read a schedule JSON file written by :func:`write_schedule`."""
    file = str(path)
    doc = load_json(path, lambda message: InputError(message, file=file))
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_NAME:
        raise InputError(f"not a {SCHEMA_NAME} file", file=file, field="schema")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise InputError(
            f"schema version {doc.get('schema_version')!r:.40} is not supported "
            f"(this build reads {SCHEMA_VERSION})",
            file=file,
            field="schema_version",
        )
    top = _Fields(doc, file, None)
    decision_rows = top.get("decisions", list, "a list") or []
    queue_rows = top.get("queue", list, "a list") or []
    decisions = [_decision_from_json(row, file, i) for i, row in enumerate(decision_rows, start=1)]
    queue = [_queue_item_from_json(row, file, i) for i, row in enumerate(queue_rows, start=1)]
    as_of_text = top.text("as_of", required=True)
    try:
        as_of = datetime.fromisoformat(as_of_text)
    except ValueError as exc:
        raise top.fail("as_of", "a timestamp YYYY-MM-DDTHH:MM:SS.ffffff") from exc
    if as_of.tzinfo is not None:
        raise top.fail("as_of", "a naive UTC timestamp")
    prov = doc.get("provenance")
    provenance = None
    if prov is not None:
        p = _Fields(prov, file, "provenance")
        provenance = Provenance(
            source=p.text("source") or "?",
            recorded_at=p.text("recorded_at"),
            filters=p.mapping("filters"),
            details=p.mapping("details"),
        )
    return Schedule(
        engine=top.text("engine") or "?",
        profile=top.text("profile"),
        settings=top.mapping("settings"),
        as_of=as_of,
        decisions=decisions,
        queue=queue,
        timings=_timings(top, file),
        provenance=provenance,
        notes=list(top.strings("notes")),
    )
