"""The schedule JSON file: a documented, versioned format other tools read.

Schema: ``harness/schedule.schema.json`` (JSON Schema, draft 2020-12). The
version goes up on any incompatible change; readers refuse versions they do
not know. Floats are written with the shortest repr that reads back as the
same double, so a schedule survives a round trip bit for bit; a non-finite
float is written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``.

:func:`schedule_to_json` builds the document; :func:`schedule_bytes`
serializes it with orjson (a fifth of the standard library's time on
100,000 candidates), an engine's ``factors`` passed through untouched when
they hold only finite scalars; property tests hold both shortcuts to the
general path.
The file is written atomically (:mod:`harness.atomic`).
"""

from __future__ import annotations

import gc
import json
import math
import os
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from engines.model import Decision, ErrorInfo, Provenance, QueueItem, Schedule
from harness.atomic import write_atomic
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


def decision_to_json(seq: int, d: Decision) -> dict[str, Any]:
    duration = d.estimated_duration_us
    return {
        "seq": seq,
        "codebase": d.codebase,
        "campaign": d.campaign,
        "change_set": d.change_set,
        "context": d.context,
        "command": d.command,
        "candidate_value": d.candidate_value,
        "value": _num(d.value),
        "publish_bonus": _num(d.publish_bonus),
        "first_run_bonus": _num(d.first_run_bonus),
        "normalized_codebase_value": _num(d.normalized_codebase_value),
        "success_probability": _num(d.success_probability),
        "estimated_duration_us": duration,
        "estimated_duration_seconds": None if duration is None else duration / 1_000_000,
        "total_previous_runs": d.total_previous_runs,
        "offset": _num(d.offset),
        "bucket": d.bucket,
        "error": None if d.error is None else d.error.to_json(),
        "factors": _fast_jsonable(d.factors),
        "reasons": list(d.reasons),
    }


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


def schedule_to_json(schedule: Schedule) -> dict[str, Any]:
    errors = sum(1 for d in schedule.decisions if d.error is not None)
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "engine": schedule.engine,
        "profile": schedule.profile,
        "settings": _jsonable(schedule.settings),
        "as_of": schedule.as_of.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "provenance": None if schedule.provenance is None else schedule.provenance.to_json(),
        "timings": _jsonable(schedule.timings),
        "notes": list(schedule.notes),
        "summary": {
            "decisions": len(schedule.decisions),
            "errors": errors,
            "queue_rows": len(schedule.queue),
        },
        "decisions": [decision_to_json(i, d) for i, d in enumerate(schedule.decisions)],
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
    """The schedule JSON document (:func:`schedule_to_json`'s), serialized with orjson."""
    # Hundreds of thousands of fresh dicts, none of them cyclic: the cyclic
    # collector would only rescan them (a third of the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        document = schedule_to_json(schedule)
        try:
            return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
        except TypeError:  # a value orjson has no rule for: the reference path says which
            return json.dumps(document, indent=1, allow_nan=False).encode() + b"\n"
    finally:
        if collecting:
            gc.enable()


def write_schedule(schedule: Schedule, path: str | os.PathLike[str]) -> None:
    """Write the schedule JSON; ``-`` writes to standard output. A file appears
    whole or not at all."""
    data = schedule_bytes(schedule)
    if str(path) == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    write_atomic(path, data)


def _decision_from_json(row: Mapping[str, Any]) -> Decision:
    error = row.get("error")
    return Decision(
        codebase=row["codebase"],
        campaign=row["campaign"],
        change_set=row.get("change_set"),
        context=row.get("context"),
        command=row.get("command"),
        candidate_value=row.get("candidate_value"),
        value=_unnum(row.get("value")),
        publish_bonus=_unnum(row.get("publish_bonus")),
        first_run_bonus=_unnum(row.get("first_run_bonus")),
        normalized_codebase_value=_unnum(row.get("normalized_codebase_value")),
        success_probability=_unnum(row.get("success_probability")),
        estimated_duration_us=row.get("estimated_duration_us"),
        total_previous_runs=row.get("total_previous_runs"),
        offset=_unnum(row.get("offset")),
        bucket=row.get("bucket"),
        error=None
        if error is None
        else ErrorInfo(
            type=error["type"],
            message=error["message"],
            phase=error.get("phase"),
            sqlstate=error.get("sqlstate"),
        ),
        factors=row.get("factors") or {},
        reasons=tuple(row.get("reasons") or ()),
    )


def _queue_item_from_json(row: Mapping[str, Any]) -> QueueItem:
    return QueueItem(
        id=row["id"],
        codebase=row["codebase"],
        suite=row["campaign"],
        command=row.get("command"),
        bucket=row["bucket"],
        priority=row["priority"],
        context=row.get("context"),
        estimated_duration_us=row.get("estimated_duration_us"),
        refresh=bool(row.get("refresh")),
        requester=row.get("requester"),
        change_set=row.get("change_set"),
    )


def read_schedule(path: str | os.PathLike[str]) -> Schedule:
    """Read a schedule JSON file written by :func:`write_schedule`."""
    file = str(path)
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read: {exc}", file=file) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc}", file=file) from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_NAME:
        raise InputError(f"not a {SCHEMA_NAME} file", file=file, field="schema")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise InputError(
            f"schema version {doc.get('schema_version')!r} is not supported "
            f"(this build reads {SCHEMA_VERSION})",
            file=file,
            field="schema_version",
        )
    decisions = []
    for index, row in enumerate(doc.get("decisions") or [], start=1):
        try:
            decisions.append(_decision_from_json(row))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed decision: {exc}", file=file, record=index) from exc
    queue = []
    for index, row in enumerate(doc.get("queue") or [], start=1):
        try:
            queue.append(_queue_item_from_json(row))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed queue row: {exc}", file=file, record=index) from exc
    prov = doc.get("provenance")
    return Schedule(
        engine=doc.get("engine", "?"),
        profile=doc.get("profile"),
        settings=doc.get("settings") or {},
        as_of=datetime.fromisoformat(doc["as_of"]),
        decisions=decisions,
        queue=queue,
        timings=doc.get("timings") or {},
        provenance=None
        if prov is None
        else Provenance(
            source=prov.get("source", "?"),
            recorded_at=prov.get("recorded_at"),
            filters=prov.get("filters") or {},
            details=prov.get("details") or {},
        ),
        notes=list(doc.get("notes") or ()),
    )
