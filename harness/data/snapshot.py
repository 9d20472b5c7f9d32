"""Recorded snapshots: a Dataset in files, replayable offline.

Three layouts are read, one model comes out:

* a **YAML scenario** (``*.yaml``): small, handwritten, every table in one
  file a person can edit;
* a **snapshot directory** (``snapshot.json`` + one JSON Lines file per
  table, gzipped, and the run table in Parquet when large): what ``janitor-shadow record`` writes.
  A JSON Lines run table is read a line at a time, so it streams; the other
  tables (at most one row per candidate) are read whole, which is faster;
* the **golden-vector layout** (``meta.json`` + ``input/*.jsonl``) of
  ``tests/data/vectors``, so those sets run through the same code path.

Rows are encoded the same way everywhere (see ``docs`` in the README): SQL
NULL is ``null``, timestamps are ``YYYY-MM-DDTHH:MM:SS.ffffff`` naive UTC,
intervals are integer microseconds in ``*_us`` fields. A malformed file
raises :class:`~harness.errors.InputError` naming the file, the record
(1-based line or list index) and the field.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from functools import partial
from itertools import chain, compress
from operator import attrgetter, is_not, itemgetter
from pathlib import Path
from types import NoneType
from typing import IO, Any, TypeVar

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from engines.bulk import bulk_allocation, columnwise_builder
from engines.model import (
    BUCKETS,
    EPOCH,
    PUBLISH_MODES,
    Candidate,
    CandidateKey,
    Codebase,
    Dataset,
    DebianVersion,
    NamedPublishPolicy,
    PolicyEntry,
    Provenance,
    QueueItem,
    Run,
    datetime_to_us,
    us_to_datetime,
)
from harness.data.atomic import atomic_directory
from harness.data.run_table import read_runs, write_runs
from harness.data.safe_files import load_json, load_yaml
from harness.errors import InputError

FORMAT_NAME = "janitor-shadow-snapshot"
FORMAT_VERSION = 1
MANIFEST = "snapshot.json"

#: Table name → file stem, in the order they are written.
TABLES = (
    "codebase",
    "named_publish_policy",
    "candidate",
    "run",
    "all_debian_versions",
    "queue",
    "candidate_row_order",
)

T = TypeVar("T")
ONE_MICROSECOND = timedelta(microseconds=1)
#: The latest microsecond a timestamp can hold (Python's datetime.max), and a bound on
#: a scenario run's ``duration_s`` (about 31 years) that keeps finish times in range.
MAX_US = datetime_to_us(datetime.max)
MAX_DURATION_S = 1e9
#: PostgreSQL's ``integer``: candidate ids and values, codebase values, queue ids.
INT4 = (-(2**31), 2**31 - 1)
INT8 = (-(2**63), 2**63 - 1)


class _Row:
    """Typed access to one decoded record, with errors that say where."""

    __slots__ = ("data", "file", "record")

    def __init__(self, data: Any, file: str, record: int) -> None:
        if not isinstance(data, dict):
            raise InputError(
                f"expected an object, got {type(data).__name__}", file=file, record=record
            )
        self.data: dict[str, Any] = data
        self.file = file
        self.record = record

    def fail(self, name: str, expected: str) -> InputError:
        value = self.data.get(name)
        return InputError(
            f"expected {expected}, got {value!r}", file=self.file, record=self.record, field=name
        )

    def _get(self, name: str, required: bool) -> Any:
        if name not in self.data:
            if required:
                raise InputError("missing", file=self.file, record=self.record, field=name)
            return None
        return self.data[name]

    def text(self, name: str, *, required: bool = True, nullable: bool = False) -> Any:
        value = self._get(name, required)
        if value is None:
            if nullable or not required:
                return None
            raise self.fail(name, "a string")
        if not isinstance(value, str):
            raise self.fail(name, "a string")
        return value

    def integer(self, name: str, *, required: bool = True, nullable: bool = True) -> Any:
        value = self._get(name, required)
        if value is None:
            if nullable or not required:
                return None
            raise self.fail(name, "an integer")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, "an integer")
        return value

    def number(self, name: str, *, required: bool = True) -> float | None:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, "a number")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.fail(name, "a finite number")
        return number

    def boolean(self, name: str, *, required: bool = True, nullable: bool = True) -> Any:
        value = self._get(name, required)
        if value is None:
            if nullable or not required:
                return None
            raise self.fail(name, "true or false")
        if not isinstance(value, bool):
            raise self.fail(name, "true or false")
        return value

    def timestamp_us(self, name: str, *, required: bool = True) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, datetime):  # YAML parses timestamps itself
            if value.tzinfo is not None:
                raise self.fail(name, "a naive UTC timestamp")
            return datetime_to_us(value)
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is None:
                return datetime_to_us(moment)
        raise self.fail(name, "a naive UTC timestamp YYYY-MM-DDTHH:MM:SS[.ffffff]")

    def choice(self, name: str, allowed: Iterable[str], *, default: str | None = None) -> str:
        value = self.data.get(name, default)
        allowed = tuple(allowed)
        if value not in allowed:
            raise self.fail(name, "one of " + ", ".join(allowed))
        return str(value)


def format_timestamp(us: int | None) -> str | None:
    if us is None:
        return None
    return us_to_datetime(us).strftime("%Y-%m-%dT%H:%M:%S.%f")


# ---------------------------------------------------------------- decoders


def _codebase(row: _Row) -> Codebase:
    return Codebase(
        name=row.text("name"),
        branch_url=row.text("branch_url", required=False, nullable=True),
        value=row.integer("value", required=False),
    )


def _policy(row: _Row) -> NamedPublishPolicy:
    raw = row.data.get("per_branch_policy", [])
    entries: tuple[PolicyEntry, ...] | None
    if raw is None:
        entries = None
    elif isinstance(raw, list):
        built = []
        for index, entry in enumerate(raw):
            if not isinstance(entry, dict) or not isinstance(entry.get("role"), str):
                raise row.fail("per_branch_policy", "a list of {role, mode, frequency_days}")
            mode = entry.get("mode", "build-only")
            if mode is not None and mode not in PUBLISH_MODES:
                raise InputError(
                    f"entry {index}: mode {mode!r} is not one of " + ", ".join(PUBLISH_MODES),
                    file=row.file,
                    record=row.record,
                    field="per_branch_policy",
                )
            freq = entry.get("frequency_days")
            if freq is not None and (isinstance(freq, bool) or not isinstance(freq, int)):
                raise row.fail("per_branch_policy", "integer frequency_days")
            built.append(PolicyEntry(role=entry["role"], mode=mode, frequency_days=freq))
        entries = tuple(built)
    else:
        raise row.fail("per_branch_policy", "a list or null")
    return NamedPublishPolicy(
        name=row.text("name"),
        per_branch_policy=entries,
        rate_limit_bucket=row.text("rate_limit_bucket", required=False, nullable=True),
    )


def _candidate_factory() -> Callable[[_Row], Candidate]:
    next_id = [0]

    def decode(row: _Row) -> Candidate:
        ident = row.integer("id", required=False)
        if ident is None:
            ident = next_id[0] + 1
        next_id[0] = max(next_id[0], ident)
        return Candidate(
            id=ident,
            codebase=row.text("codebase"),
            suite=row.text("suite"),
            command=row.text("command"),
            change_set=row.text("change_set", required=False, nullable=True),
            context=row.text("context", required=False, nullable=True),
            value=row.integer("value", required=False),
            success_chance=row.number("success_chance", required=False),
            publish_policy=row.text("publish_policy", required=False, nullable=True),
        )

    return decode


_NO_TIME = object()


def _fast_timestamp_us(value: Any) -> Any:
    """The common case (a well-formed string or NULL) without the checks' overhead."""
    if value is None:
        return None
    if type(value) is str and len(value) >= 19:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return _NO_TIME
        if moment.tzinfo is None:
            return (moment - EPOCH) // ONE_MICROSECOND
    return _NO_TIME


def _run_factory() -> Callable[[_Row], Run]:
    """Runs are most of a snapshot's rows: a fast path, and the checking path on doubt."""
    checked = _checked_run_factory()
    text_or_none = (str, type(None))

    def decode(row: _Row) -> Run:
        d = row.data
        try:
            start = _fast_timestamp_us(d["start_time"])
            finish = _fast_timestamp_us(d["finish_time"])
            ident, codebase, suite, code = d["id"], d["codebase"], d["suite"], d["result_code"]
            transient = d["failure_transient"]
            instigated, context = d["instigated_context"], d["context"]
        except KeyError:
            return checked(row)
        if (
            start is _NO_TIME
            or finish is _NO_TIME
            or (start is not None and finish is not None and finish < start)
            or type(ident) is not str
            or type(codebase) is not str
            or type(suite) is not str
            or type(code) is not str
            or not isinstance(instigated, text_or_none)
            or not isinstance(context, text_or_none)
            or not (transient is None or type(transient) is bool)
        ):
            return checked(row)
        return Run(
            ident,
            codebase,
            suite,
            code,
            start,
            finish,
            transient,
            instigated,
            context,
            d.get("failure_details"),
        )

    return decode


def _checked_run_factory() -> Callable[[_Row], Run]:
    counter = [0]

    def decode(row: _Row) -> Run:
        counter[0] += 1
        start = row.timestamp_us("start_time", required=False)
        finish = row.timestamp_us("finish_time", required=False)
        if finish is None and start is not None and "duration_s" in row.data:
            seconds = row.number("duration_s")
            if seconds is None or not 0 <= seconds <= MAX_DURATION_S:
                raise row.fail(
                    "duration_s", "a finite, non-negative number of seconds (at most 1e9)"
                )
            finish = start + round(seconds * 1_000_000)
            if finish > MAX_US:
                raise row.fail("duration_s", "a duration ending before the year 10000")
        if start is not None and finish is not None and finish < start:
            raise InputError(
                f"finish_time {format_timestamp(finish)} is before start_time "
                f"{format_timestamp(start)} (the schema requires finish_time >= start_time)",
                file=row.file,
                record=row.record,
                field="finish_time",
            )
        ident = row.data.get("id")
        if ident is None:
            ident = f"run-{counter[0]}"
        elif not isinstance(ident, str):
            raise row.fail("id", "a string")
        details = row.data.get("failure_details")
        return Run(
            id=ident,
            codebase=row.text("codebase"),
            suite=row.text("suite"),
            result_code=row.text("result_code"),
            start_us=start,
            finish_us=finish,
            failure_transient=row.boolean("failure_transient", required=False),
            instigated_context=row.text("instigated_context", required=False, nullable=True),
            context=row.text("context", required=False, nullable=True),
            failure_details=details,
        )

    return decode


def _debian_version(row: _Row) -> DebianVersion:
    return DebianVersion(
        source=row.text("source"),
        version=row.text("version"),
        distribution=row.text("distribution", required=False, nullable=True),
    )


def _queue_item(row: _Row) -> QueueItem:
    return QueueItem(
        id=row.integer("id", nullable=False),
        codebase=row.text("codebase"),
        suite=row.text("suite"),
        command=row.text("command", required=False, nullable=True),
        bucket=row.choice("bucket", BUCKETS, default="default"),
        priority=row.integer("priority", required=False) or 0,
        context=row.text("context", required=False, nullable=True),
        estimated_duration_us=row.integer("estimated_duration_us", required=False),
        refresh=bool(row.boolean("refresh", required=False)),
        requester=row.text("requester", required=False, nullable=True),
        change_set=row.text("change_set", required=False, nullable=True),
        branch_url=row.text("branch_url", required=False, nullable=True),
    )


def _row_order(row: _Row) -> CandidateKey:
    d = row.data
    codebase, campaign, change_set = d.get("codebase"), d.get("campaign"), d.get("change_set")
    if (
        type(codebase) is str
        and type(campaign) is str
        and (change_set is None or type(change_set) is str)
    ):
        return CandidateKey(codebase, campaign, change_set)  # the common case, checked cheaply
    return CandidateKey(
        row.text("codebase"),
        row.text("campaign"),
        row.text("change_set", required=False, nullable=True),
    )


# ------------------------------------------------------- whole-table fast path
#
# A table written by ``write_snapshot`` has every field in every record, with
# one JSON type per column. For such a table, checking the types column by
# column (in C: ``map(type, column)`` into a set) and building the records
# positionally is several times faster than the field-by-field checks above.
# Anything else (a missing field, another type, bad JSON, a blank line) makes
# the fast path give up, and the table is decoded again record by record by
# the decoders above, which raise the same error as they always did.

_STR: frozenset[type] = frozenset({str})
_STR_OR_NULL: frozenset[type] = frozenset({str, NoneType})
_INT: frozenset[type] = frozenset({int})  # bool is its own type: excluded
_INT_OR_NULL: frozenset[type] = frozenset({int, NoneType})
_FLOAT_OR_NULL: frozenset[type] = frozenset({float, NoneType})


@dataclass(frozen=True)
class _FastTable:
    """How one table's records map onto a model class, field for field.

    ``types`` gives, per field of the model (the JSON key is the field's
    name), the Python types the careful decoder accepts unchanged.
    """

    build: Callable[[list[Any]], list[Any]]
    names: tuple[str, ...]
    types: tuple[frozenset[type], ...]

    @classmethod
    def of(cls, model: Any, types: Mapping[str, frozenset[type]]) -> _FastTable:
        # The field order is the model's own, so positional building cannot drift from it.
        names = tuple(getattr(model, "_fields", None) or (f.name for f in fields(model)))
        return cls(columnwise_builder(model, names), names, tuple(types[name] for name in names))

    def decode(self, records: list[Any]) -> list[Any] | None:
        """The records as model objects, or ``None`` if any needs the careful decoder."""
        if not records:
            return []
        try:
            rows = list(map(itemgetter(*self.names), records))
        except (KeyError, TypeError):  # a field is missing, or a record is not an object
            return None
        columns = list(zip(*rows, strict=True))
        for column, allowed in zip(columns, self.types, strict=True):
            if not allowed.issuperset(map(type, column)):
                return None
        return self.build(columns)


_FAST_TABLES: dict[str, _FastTable] = {
    "codebase": _FastTable.of(
        Codebase, {"name": _STR, "branch_url": _STR_OR_NULL, "value": _INT_OR_NULL}
    ),
    # All ids given: the careful decoder's numbering of missing ids never applies.
    "candidate": _FastTable.of(
        Candidate,
        {
            "id": _INT,
            "codebase": _STR,
            "suite": _STR,
            "command": _STR,
            "change_set": _STR_OR_NULL,
            "context": _STR_OR_NULL,
            "value": _INT_OR_NULL,
            "success_chance": _FLOAT_OR_NULL,  # an int would become a float: careful path
            "publish_policy": _STR_OR_NULL,
        },
    ),
    "all_debian_versions": _FastTable.of(
        DebianVersion, {"source": _STR, "version": _STR, "distribution": _STR_OR_NULL}
    ),
    "candidate_row_order": _FastTable.of(
        CandidateKey, {"codebase": _STR, "campaign": _STR, "change_set": _STR_OR_NULL}
    ),
}


def _inflation_limit(compressed: int) -> int:
    """How large a gzip table may inflate: recorded tables inflate about ten-fold; a
    gzip bomb of a kilobyte would fill gigabytes of memory."""
    return 100 * compressed + (64 << 20)


def _inflated_too_far(limit: int, file: str) -> InputError:
    return InputError(
        f"inflates to more than {limit:,} bytes, 100 times its size (a gzip bomb?): refused",
        file=file,
    )


def _gunzip(data: bytes, file: str) -> bytes:
    """``gzip.decompress``, every member, refusing to inflate beyond :func:`_inflation_limit`."""
    limit = _inflation_limit(len(data))
    parts: list[bytes] = []
    total = 0
    while data:
        inflater = zlib.decompressobj(wbits=31)
        part = inflater.decompress(data, limit - total + 1)
        total += len(part)
        if total > limit:
            raise _inflated_too_far(limit, file)
        if not inflater.eof:
            raise EOFError("compressed file ended before the end-of-stream marker")
        parts.append(part)
        data = inflater.unused_data
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _whole_records(path: Path) -> list[Any] | None:
    """Every record of a (gzipped) JSON Lines file, read in one go; ``None`` on any problem.

    One decompression and one split are much cheaper than a line-by-line
    read. A blank line is not JSON, so it too returns ``None``: the caller then
    re-reads with :func:`_jsonl_records`, which skips it or names the problem.
    """
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = _gunzip(data, str(path))
        lines = data.split(b"\n")
        if not lines[-1]:
            lines.pop()
        return list(map(orjson.loads, lines))
    except (OSError, EOFError, ValueError, zlib.error):  # orjson.JSONDecodeError is a ValueError
        return None


def _decode_table(table: str, path: Path, decode: Callable[[_Row], T]) -> list[T]:
    """A JSON Lines table's records: the fast path if it applies, else record by record."""
    if path.suffix == ".gz" and path.stat().st_size == 0:  # gzip.decompress(b"") is b""
        raise InputError("empty file: not even a gzip header (truncated?)", file=str(path))
    fast = _FAST_TABLES.get(table)
    if fast is not None:
        records = _whole_records(path)
        if records is not None:
            decoded = fast.decode(records)
            if decoded is not None:
                return decoded
    return _decode_all(_jsonl_records(path), decode, str(path))


def _decoders() -> dict[str, Callable[[_Row], Any]]:
    return {
        "codebase": _codebase,
        "named_publish_policy": _policy,
        "candidate": _candidate_factory(),
        "run": _run_factory(),
        "all_debian_versions": _debian_version,
        "queue": _queue_item,
        "candidate_row_order": _row_order,
    }


# ---------------------------------------------------------------- encoders


def encode_codebase(c: Codebase) -> dict[str, Any]:
    return {"name": c.name, "branch_url": c.branch_url, "value": c.value}


def encode_policy(p: NamedPublishPolicy) -> dict[str, Any]:
    entries = (
        None
        if p.per_branch_policy is None
        else [
            {"role": e.role, "mode": e.mode, "frequency_days": e.frequency_days}
            for e in p.per_branch_policy
        ]
    )
    return {"name": p.name, "per_branch_policy": entries, "rate_limit_bucket": p.rate_limit_bucket}


def encode_candidate(c: Candidate) -> dict[str, Any]:
    return {
        "id": c.id,
        "codebase": c.codebase,
        "suite": c.suite,
        "change_set": c.change_set,
        "context": c.context,
        "value": c.value,
        "success_chance": c.success_chance,
        "command": c.command,
        "publish_policy": c.publish_policy,
    }


def encode_run(r: Run) -> dict[str, Any]:
    return {
        "id": r.id,
        "codebase": r.codebase,
        "suite": r.suite,
        "result_code": r.result_code,
        "start_time": format_timestamp(r.start_us),
        "finish_time": format_timestamp(r.finish_us),
        "failure_transient": r.failure_transient,
        "instigated_context": r.instigated_context,
        "context": r.context,
        "failure_details": r.failure_details,
    }


def encode_debian_version(v: DebianVersion) -> dict[str, Any]:
    return {"source": v.source, "distribution": v.distribution, "version": v.version}


def encode_queue_item(q: QueueItem) -> dict[str, Any]:
    return {
        "id": q.id,
        "bucket": q.bucket,
        "codebase": q.codebase,
        "branch_url": q.branch_url,
        "suite": q.suite,
        "command": q.command,
        "priority": q.priority,
        "context": q.context,
        "estimated_duration_us": q.estimated_duration_us,
        "refresh": q.refresh,
        "requester": q.requester,
        "change_set": q.change_set,
    }


def encode_row_order(key: CandidateKey) -> dict[str, Any]:
    return {"codebase": key.codebase, "campaign": key.campaign, "change_set": key.change_set}


def table_rows(dataset: Dataset) -> dict[str, Iterable[dict[str, Any]] | None]:
    """Every table of ``dataset`` as encoded rows (``None``: the table is absent)."""
    return {
        "codebase": map(encode_codebase, dataset.codebases),
        "named_publish_policy": map(encode_policy, dataset.policies),
        "candidate": map(encode_candidate, dataset.candidates),
        "run": map(encode_run, dataset.runs),
        "all_debian_versions": (
            None
            if dataset.debian_versions is None
            else map(encode_debian_version, dataset.debian_versions)
        ),
        "queue": map(encode_queue_item, dataset.queue),
        "candidate_row_order": (
            None
            if dataset.candidate_row_order is None
            else map(encode_row_order, dataset.candidate_row_order)
        ),
    }


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Tables:
    as_of: datetime
    provenance: Provenance
    tables: Mapping[str, list[Any] | None]
    #: Table → what an error names (its file, or "scenario.yaml: candidates").
    labels: Mapping[str, str]
    #: False only for a YAML scenario that says ``schema_checks: false``.
    schema_checks: bool = True


def _parse_as_of(value: Any, file: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InputError(
                f"expected a naive UTC timestamp, got {value!r}", file=file, field="as_of"
            ) from exc
    else:
        raise InputError(f"expected a timestamp, got {value!r}", file=file, field="as_of")
    if moment.tzinfo is not None:
        raise InputError("expected a naive UTC timestamp (no offset)", file=file, field="as_of")
    return moment


def _decode_all(
    records: Iterable[tuple[int, Any]], decode: Callable[[_Row], T], file: str
) -> list[T]:
    return [decode(_Row(data, file, number)) for number, data in records]


def _jsonl_records(path: Path) -> Iterator[tuple[int, Any]]:
    compressed = path.suffix == ".gz"
    opener: Callable[..., IO[bytes]] = gzip.open if compressed else open  # type: ignore[assignment]
    try:
        limit = _inflation_limit(path.stat().st_size) if compressed else -1
        with opener(path, "rb") as handle:
            total = number = 0
            while line := handle.readline(limit - total + 1 if compressed else -1):
                number += 1
                total += len(line)
                if compressed and total > limit:
                    raise _inflated_too_far(limit, str(path))
                if not line.strip():
                    continue
                try:
                    yield number, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise InputError(f"invalid JSON: {exc}", file=str(path), record=number) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot read: {exc}", file=str(path)) from exc


def _read_json(path: Path) -> Any:
    return load_json(path, lambda message: InputError(message, file=str(path)), limit=16 << 20)


def _find_table_file(folder: Path, table: str) -> Path | None:
    names = [f"{table}.jsonl", f"{table}.jsonl.gz"]
    if table == "run":
        names.append("run.parquet")
    for name in names:
        if (folder / name).exists():
            return folder / name
    return None


@dataclass(frozen=True)
class _Header:
    folder: Path
    as_of: datetime
    provenance: Provenance
    #: Tables the manifest records as absent from the source.
    absent: frozenset[str]
    #: Table → its manifest entry ({file, rows, sha256...}); empty without a manifest.
    entries: Mapping[str, Mapping[str, Any]]


def _mapping(value: Any, file: str, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"expected an object, got {type(value).__name__}", file=file, field=field)
    return value


def _table_entries(manifest: Mapping[str, Any], file: str) -> dict[str, Mapping[str, Any]]:
    """The manifest's per-table entries, checked: a known table, its file name, rows, hashes."""
    entries: dict[str, Mapping[str, Any]] = {}
    for table, entry in _mapping(manifest.get("tables"), file, "tables").items():
        field = f"tables.{table}"
        if table not in TABLES:
            raise InputError("not a table of this format", file=file, field=field)
        names = {f"{table}.jsonl", f"{table}.jsonl.gz"} | (
            {"run.parquet"} if table == "run" else set()
        )
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("file"), str)
            or entry["file"] not in names
            or type(entry.get("rows")) is not int
            or entry["rows"] < 0
        ):
            raise InputError(
                "expected {file: " + " or ".join(sorted(names)) + ", rows: a count, sha256: …}",
                file=file,
                field=field,
            )
        for key in ("sha256", "sha256_uncompressed"):
            digest = entry.get(key)
            if digest is not None and not (
                isinstance(digest, str)
                and len(digest) == 64
                and all(c in "0123456789abcdef" for c in digest)
            ):
                raise InputError(
                    "expected 64 lowercase hex digits", file=file, field=f"{field}.{key}"
                )
        entries[table] = entry
    return entries


def _directory_header(path: Path) -> _Header:
    manifest_path = path / MANIFEST
    if manifest_path.exists():
        file = str(manifest_path)
        manifest = _read_json(manifest_path)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise InputError(f"not a {FORMAT_NAME} manifest", file=file)
        version = manifest.get("version")
        if version != FORMAT_VERSION:
            raise InputError(
                f"format version {version!r} is not supported (this build reads {FORMAT_VERSION})",
                file=file,
                field="version",
            )
        as_of = _parse_as_of(manifest.get("as_of"), file)
        prov = _mapping(manifest.get("provenance"), file, "provenance")
        provenance = Provenance(
            source=str(prov.get("source", path)),
            recorded_at=_optional_text(prov.get("recorded_at"), file, "provenance.recorded_at"),
            filters=dict(_mapping(prov.get("filters"), file, "provenance.filters")),
            details=dict(_mapping(prov.get("details"), file, "provenance.details")),
        )
        absent = manifest.get("absent_tables") or []
        if not isinstance(absent, list) or not all(isinstance(t, str) for t in absent):
            raise InputError("expected a list of table names", file=file, field="absent_tables")
        return _Header(path, as_of, provenance, frozenset(absent), _table_entries(manifest, file))
    if (path / "meta.json").exists() and (path / "input").is_dir():
        file = str(path / "meta.json")
        meta = _mapping(_read_json(path / "meta.json"), file, "(top level)")
        as_of = _parse_as_of(meta.get("as_of"), file)
        provenance = Provenance(
            source=f"golden vectors {meta.get('name', path.name)}",
            details={"generator": meta.get("generator"), "legacy": meta.get("legacy")},
        )
        return _Header(path / "input", as_of, provenance, frozenset(), {})
    raise InputError(
        f"not a snapshot: expected {MANIFEST} (or meta.json and input/ of the golden vectors)",
        file=str(path),
    )


def _optional_text(value: Any, file: str, field: str) -> str | None:
    if isinstance(value, date):  # YAML reads an unquoted date or timestamp as one
        return value.isoformat()
    if value is not None and not isinstance(value, str):
        raise InputError(f"expected a string, got {value!r:.60}", file=file, field=field)
    return value


def load_debian_versions(path: str | os.PathLike[str]) -> list[DebianVersion] | None:
    """A snapshot directory's ``all_debian_versions`` rows alone; ``None`` when it has none."""
    header = _directory_header(Path(path))
    file = _table_file(header, "all_debian_versions")
    if file is None:
        return None
    return _decode_table("all_debian_versions", file, _debian_version)


def snapshot_as_of(path: str | os.PathLike[str]) -> datetime:
    """A snapshot directory's ``as_of``, read from its manifest alone (no table is decoded)."""
    return _directory_header(Path(path)).as_of


#: Tables a snapshot may lack (an old recording, a hand-made directory) when its
#: manifest does not list them. A table the manifest lists must be there.
OPTIONAL_TABLES = frozenset({"all_debian_versions", "candidate_row_order", "queue"})


def _table_file(header: _Header, table: str) -> Path | None:
    """The file of ``table``; ``None`` when the snapshot does not have that table."""
    entry = header.entries.get(table)
    if entry is not None:
        file = header.folder / entry["file"]
        if not file.is_file():
            raise InputError(
                f"table {table} ({entry['rows']} rows in the manifest) is missing its file",
                file=str(file),
            )
        return file
    file = _find_table_file(header.folder, table)
    if file is None and table not in header.absent and table not in OPTIONAL_TABLES:
        raise InputError(f"missing table file {table}.jsonl[.gz]", file=str(header.folder))
    return file


def _sha256_file(path: Path) -> str:
    """The file's sha256, read in 1 MiB blocks (hashlib releases the GIL for each)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _sha256_uncompressed(path: Path) -> str:
    digest = hashlib.sha256()
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify_table_file(header: _Header, table: str, file: Path) -> None:
    """Check ``file`` against the manifest's sha256 (of the file as stored; or, for
    snapshots written before that was recorded, of its uncompressed content)."""
    entry = header.entries.get(table)
    if entry is None:
        return
    try:
        if entry.get("sha256") is not None:
            ok = _sha256_file(file) == entry["sha256"]
        elif entry.get("sha256_uncompressed") is not None:
            ok = _sha256_uncompressed(file) == entry["sha256_uncompressed"]
        else:
            return
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot read: {exc}", file=str(file)) from exc
    if not ok:
        raise InputError(
            "its sha256 is not the one in the manifest: the file was changed or damaged "
            "since it was recorded",
            file=str(file),
        )


def _vouched(header: _Header, table: str) -> bool:
    """Whether the manifest holds a sha256 of the file as stored (then verified)."""
    entry = header.entries.get(table)
    return entry is not None and entry.get("sha256") is not None


def _check_row_count(header: _Header, table: str, file: Path, count: int) -> None:
    entry = header.entries.get(table)
    if entry is not None and entry["rows"] != count:
        raise InputError(
            f"holds {count} rows, the manifest says {entry['rows']}: the file is incomplete or "
            "was replaced",
            file=str(file),
        )


def verify_run_table(path: str | os.PathLike[str], file: Path) -> bool:
    """For a caller that reads a directory's run table itself (``load_snapshot(runs=False)``):
    check it against the manifest (sha256, row count). Returns whether a manifest
    vouches for the file by its sha256 (see :func:`harness.data.run_table.check_unvouched`)."""
    header = _directory_header(Path(path))
    verify_table_file(header, "run", file)
    entry = header.entries.get("run")
    if entry is None:
        return False
    if file.suffix == ".parquet":
        try:
            rows = pq.ParquetFile(file).metadata.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"cannot read Parquet: {exc}", file=str(file)) from exc
        _check_row_count(header, "run", file, rows)
    return _vouched(header, "run")


def _read_directory(path: Path, *, runs: bool = True) -> _Tables:
    header = _directory_header(path)
    decoders = _decoders()
    tables: dict[str, list[Any] | None] = {}
    labels: dict[str, str] = {}
    for table in TABLES:
        if table == "run" and not runs:
            tables[table] = None  # the caller reads the run table itself (run_table_file)
            continue
        file = _table_file(header, table)
        if file is None:
            tables[table] = None
            continue
        labels[table] = str(file)
        verify_table_file(header, table, file)
        if file.suffix == ".parquet":
            tables[table] = read_runs(file, vouched=_vouched(header, table))
        else:
            with bulk_allocation():
                tables[table] = _decode_table(table, file, decoders[table])
        _check_row_count(header, table, file, len(tables[table] or ()))
    if tables["queue"] is None:
        tables["queue"] = []
    return _Tables(header.as_of, header.provenance, tables, labels)


#: YAML scenario keys → table names.
YAML_TABLES = {
    "codebases": "codebase",
    "publish_policies": "named_publish_policy",
    "candidates": "candidate",
    "runs": "run",
    "debian_versions": "all_debian_versions",
    "queue": "queue",
    "candidate_row_order": "candidate_row_order",
}
YAML_OTHER_KEYS = {
    "format",
    "version",
    "as_of",
    "description",
    "provenance",
    "expected",
    "name",
    "schema_checks",
}


def _read_yaml(path: Path) -> _Tables:
    file = str(path)
    document = load_yaml(path, lambda message: InputError(message, file=file))
    if not isinstance(document, dict):
        raise InputError("expected a mapping at the top level", file=file)
    unknown = set(document) - set(YAML_TABLES) - YAML_OTHER_KEYS
    if unknown:
        raise InputError(
            "unknown key(s) " + ", ".join(sorted(map(str, unknown))),
            file=file,
        )
    version = document.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise InputError(f"format version {version!r} is not supported", file=file, field="version")
    as_of = _parse_as_of(document.get("as_of"), file)
    decoders = _decoders()
    tables: dict[str, list[Any] | None] = {}
    for key, table in YAML_TABLES.items():
        rows = document.get(
            key, None if table in ("all_debian_versions", "candidate_row_order") else []
        )
        if rows is None:
            tables[table] = None if table != "queue" else []
            continue
        if not isinstance(rows, list):
            raise InputError(f"expected a list, got {type(rows).__name__}", file=file, field=key)
        tables[table] = _decode_all(enumerate(rows, start=1), decoders[table], f"{file}: {key}")
    prov = _mapping(document.get("provenance"), file, "provenance")
    provenance = Provenance(
        source=str(prov.get("source", f"scenario {path.name}")),
        recorded_at=_optional_text(prov.get("recorded_at"), file, "provenance.recorded_at"),
        details={"description": document.get("description")} if document.get("description") else {},
    )
    checks = document.get("schema_checks", True)
    if not isinstance(checks, bool):
        raise InputError(
            f"expected true or false, got {checks!r}", file=file, field="schema_checks"
        )
    labels = {table: f"{file}: {key}" for key, table in YAML_TABLES.items()}
    return _Tables(as_of, provenance, tables, labels, schema_checks=checks)


def run_table_file(path: str | os.PathLike[str]) -> Path | None:
    """The run table file of a snapshot directory (``run.parquet`` or JSON Lines), if any."""
    path = Path(path)
    if not path.is_dir():
        return None
    return _table_file(_directory_header(path), "run")


def load_snapshot(path: str | os.PathLike[str], *, runs: bool = True) -> Dataset:
    """Read a snapshot (YAML scenario, snapshot directory or golden-vector set).

    ``runs=False`` leaves a directory's run table unread (``Dataset.runs`` is
    empty), for engines that read it column-wise themselves (:func:`run_table_file`).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or directory", file=str(path))
    if not path.is_dir() and path.suffix not in (".yaml", ".yml"):
        raise InputError("expected a .yaml scenario or a snapshot directory", file=str(path))
    with bulk_allocation(freeze=True):
        raw = _read_directory(path, runs=runs) if path.is_dir() else _read_yaml(path)
        return _build_dataset(raw, str(path))


def _build_dataset(raw: _Tables, origin: str) -> Dataset:
    t = raw.tables
    _check_schema(raw)
    candidates: list[Candidate] = t["candidate"] or []
    # Plain (codebase, suite, change_set) tuples: equal to and hashed as CandidateKeys, built in C.
    keys = set(map(attrgetter("codebase", "suite", "change_set"), candidates))
    if len(keys) != len(candidates):
        seen: set[CandidateKey] = set()
        for c in candidates:
            if c.key in seen:
                raise InputError(
                    f"duplicate candidate {c.key.label()} (codebase, suite, change_set must be unique)",
                    file=origin,
                    record=f"candidate id {c.id}",
                )
            seen.add(c.key)
    row_order = t["candidate_row_order"]
    if row_order is not None:
        # The recorded row order is the legacy query's rows: only candidates its inner joins keep.
        unjoinable = _unjoinable_keys(raw, candidates)
        allowed = keys - unjoinable if unjoinable else keys
        if not allowed.issuperset(row_order):
            for index, key in enumerate(row_order, start=1):
                if key not in keys:
                    raise InputError(
                        f"names no candidate: {key.label()}",
                        file=origin,
                        record=f"candidate_row_order {index}",
                    )
                if key not in allowed:
                    raise InputError(
                        f"names {key.label()}, which the legacy's candidate query cannot return "
                        "(its codebase or publish policy is NULL or missing)",
                        file=origin,
                        record=f"candidate_row_order {index}",
                    )
    return Dataset(
        as_of=raw.as_of,
        codebases=tuple(t["codebase"] or ()),
        candidates=tuple(candidates),
        policies=tuple(t["named_publish_policy"] or ()),
        runs=tuple(t["run"] or ()),
        debian_versions=None
        if t["all_debian_versions"] is None
        else tuple(t["all_debian_versions"]),
        queue=tuple(t["queue"] or ()),
        candidate_row_order=None if row_order is None else tuple(row_order),
        provenance=raw.provenance,
    )


# ------------------------------------------------- what the schema forbids


_NOT_NONE = partial(is_not, None)


def _first_duplicate(values: list[Any]) -> tuple[int, int] | None:
    """(first index, repeated index) of the first value seen twice; ``None`` if all differ."""
    if len(set(values)) == len(values):
        return None
    seen: dict[Any, int] = {}
    for index, value in enumerate(values):
        first = seen.setdefault(value, index)
        if first != index:
            return first, index
    return None


def _unique(raw: _Tables, table: str, values: list[Any], what: str, field: str) -> None:
    found = _first_duplicate(values)
    if found is not None:
        first, again = found
        raise InputError(
            f"duplicate {what} {values[again]!r} (also record {first + 1}; the schema "
            "makes it unique)",
            file=raw.labels.get(table, table),
            record=again + 1,
            field=field,
        )


def _in_range(
    raw: _Tables, table: str, values: list[Any], field: str, bounds: tuple[int, int], note: str = ""
) -> None:
    low, high = bounds
    present = list(filter(_NOT_NONE, values))
    if present and (min(present) < low or max(present) > high):
        index = next(i for i, v in enumerate(values) if v is not None and not low <= v <= high)
        raise InputError(
            f"expected an integer from {low} to {high}{note}, got {values[index]!r}",
            file=raw.labels.get(table, table),
            record=index + 1,
            field=field,
        )


def _check_schema(raw: _Tables) -> None:
    """Refuse what the production schema forbids (see ``janitor-schema.md``), column-wise.

    A live database cannot hold such rows, so neither engine was written for
    them: a run ending before it started made a duration of minus 25 years,
    a candidate naming no policy a traceback. Duplicates, time order, ranges
    and non-finite numbers are always refused; the foreign keys and
    ``candidate.value > 0`` may be waived by a YAML scenario's
    ``schema_checks: false``, for the rule scenarios that pin what the
    legacy does with such rows (it drops a candidate whose codebase or
    policy is missing, in its inner joins; a value of 0 or below fails its
    assertion unless the candidate has no runs).
    """
    t = raw.tables
    codebases: list[Codebase] = t["codebase"] or []
    names = list(map(attrgetter("name"), codebases))
    _unique(raw, "codebase", names, "codebase name", "name")
    _in_range(raw, "codebase", list(map(attrgetter("value"), codebases)), "value", INT4)
    policies: list[NamedPublishPolicy] = t["named_publish_policy"] or []
    policy_names = list(map(attrgetter("name"), policies))
    _unique(raw, "named_publish_policy", policy_names, "policy name", "name")
    candidates: list[Candidate] = t["candidate"] or []
    ids = list(map(attrgetter("id"), candidates))
    _in_range(raw, "candidate", ids, "id", INT4)
    _unique(raw, "candidate", ids, "candidate id", "id")
    values = list(map(attrgetter("value"), candidates))
    value_bounds = (1, INT4[1]) if raw.schema_checks else INT4
    _in_range(raw, "candidate", values, "value", value_bounds, " (the schema: value > 0)")
    chances = filter(_NOT_NONE, map(attrgetter("success_chance"), candidates))
    if not all(map(math.isfinite, chances)):
        index = next(
            i
            for i, c in enumerate(candidates)
            if c.success_chance is not None and not math.isfinite(c.success_chance)
        )
        raise InputError(
            f"expected a finite number, got {candidates[index].success_chance!r}",
            file=raw.labels.get("candidate", "candidate"),
            record=index + 1,
            field="success_chance",
        )
    if raw.schema_checks:
        _references(raw, candidates, "publish_policy", set(policy_names), "named_publish_policy")
        _references(raw, candidates, "codebase", set(names), "codebase")
    runs = t["run"]
    if runs is not None and not raw.labels.get("run", "").endswith(".parquet"):
        _unique(raw, "run", list(map(itemgetter(0), runs)), "run id", "id")  # Parquet: read_runs
    queue: list[QueueItem] = t["queue"] or []
    _in_range(raw, "queue", list(map(attrgetter("id"), queue)), "id", INT4)
    _unique(raw, "queue", list(map(attrgetter("id"), queue)), "queue id", "id")
    _unique(raw, "queue", [q.key for q in queue], "queue entry", "change_set")
    _in_range(raw, "queue", list(map(attrgetter("priority"), queue)), "priority", INT8)
    durations = list(map(attrgetter("estimated_duration_us"), queue))
    _in_range(raw, "queue", durations, "estimated_duration_us", INT8)


def _references(
    raw: _Tables, candidates: list[Candidate], field: str, known: set[str], target: str
) -> None:
    named = set(map(attrgetter(field), candidates))
    named.discard(None)
    if named <= known:
        return
    index = next(
        i
        for i, c in enumerate(candidates)
        if getattr(c, field) is not None and getattr(c, field) not in known
    )
    raise InputError(
        f"names no {target} row: {getattr(candidates[index], field)!r} (the schema's foreign "
        f"key {field} → {target}.name)",
        file=raw.labels.get("candidate", "candidate"),
        record=index + 1,
        field=field,
    )


def _unjoinable_keys(raw: _Tables, candidates: list[Candidate]) -> set[tuple[Any, ...]]:
    """Keys of the candidates the legacy's inner joins drop (NULL or unknown policy or codebase)."""
    policies = set(map(attrgetter("name"), raw.tables["named_publish_policy"] or ()))
    policy_column = list(map(attrgetter("publish_policy"), candidates))
    odd_policies = set(policy_column) - policies  # usually {None}, or nothing
    selected: Iterable[Candidate] = (
        compress(candidates, map(odd_policies.__contains__, policy_column)) if odd_policies else ()
    )
    if not raw.schema_checks:  # otherwise every candidate's codebase exists
        codebases = set(map(attrgetter("name"), raw.tables["codebase"] or ()))
        selected = chain(selected, (c for c in candidates if c.codebase not in codebases))
    return set(map(attrgetter("codebase", "suite", "change_set"), selected))


# ---------------------------------------------------------------- writing


def _dump_line(row: Mapping[str, Any]) -> bytes:
    return orjson.dumps(row) + b"\n"


def _write_chunk(sink: IO[bytes], chunk: list[bytes], digest: Any) -> int:
    data = b"".join(chunk)
    digest.update(data)
    sink.write(data)
    written = len(chunk)
    chunk.clear()
    return written


def write_snapshot(
    dataset: Dataset,
    path: str | os.PathLike[str],
    *,
    compress: bool = True,
    columnar_runs: bool | None = None,
) -> Path:
    """Write ``dataset`` as a snapshot directory; returns its path.

    The run table goes to Parquet (``columnar_runs``) by default once it is
    large (over 50,000 runs); smaller ones stay JSON Lines, readable by eye.

    Written into a temporary sibling and renamed (:func:`harness.data.atomic.atomic_directory`),
    so that a failure never leaves a half-written snapshot behind.
    """
    target = Path(path)
    with atomic_directory(target) as staging:
        write_snapshot_files(dataset, staging, compress=compress, columnar_runs=columnar_runs)
    return target


def write_snapshot_files(
    dataset: Dataset,
    staging: Path,
    *,
    compress: bool = True,
    columnar_runs: bool | None = None,
) -> None:
    """The snapshot's files, into the (empty, not yet published) directory ``staging``."""
    if columnar_runs is None:
        columnar_runs = len(dataset.runs) > 50_000
    files: dict[str, Any] = {}
    absent = []
    for table, rows in table_rows(dataset).items():
        if rows is None:
            absent.append(table)
            continue
        if table == "run" and columnar_runs:
            count = write_runs(dataset.runs, staging / "run.parquet")
            digest_of_file = _sha256_file(staging / "run.parquet")
            files[table] = {"file": "run.parquet", "rows": count, "sha256": digest_of_file}
            continue
        name = f"{table}.jsonl.gz" if compress else f"{table}.jsonl"
        digest = hashlib.sha256()
        count = 0
        with open(staging / name, "wb") as raw:
            sink: IO[bytes] = (
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0)  # type: ignore[assignment]
                if compress
                else raw
            )
            chunk: list[bytes] = []
            for row in rows:
                chunk.append(_dump_line(row))
                if len(chunk) >= 10_000:
                    count += _write_chunk(sink, chunk, digest)
            count += _write_chunk(sink, chunk, digest)
            if compress:
                sink.close()
        files[table] = {
            "file": name,
            "rows": count,
            "sha256": _sha256_file(staging / name),
            "sha256_uncompressed": digest.hexdigest(),
        }
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "as_of": dataset.as_of.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "provenance": dataset.provenance.to_json(),
        "tables": files,
        "absent_tables": absent,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def dataset_to_yaml(dataset: Dataset, *, description: str | None = None) -> str:
    """Render a (small) dataset as an editable YAML scenario."""
    doc: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "as_of": dataset.as_of.strftime("%Y-%m-%dT%H:%M:%S.%f"),
    }
    if description:
        doc["description"] = description
    rows = table_rows(dataset)
    for key, table in YAML_TABLES.items():
        table_data = rows[table]
        if table_data is None:
            continue
        doc[key] = list(table_data)
    return yaml.dump(doc, Dumper=_ScenarioDumper, sort_keys=False, allow_unicode=True, width=100)


class _ScenarioDumper(yaml.SafeDumper):
    """SafeDumper that double-quotes strings holding Unicode line breaks.

    PyYAML may write NEL, LINE SEPARATOR or PARAGRAPH SEPARATOR raw in a
    single-quoted scalar, which reads back folded into a space; in double
    quotes they are escaped and survive.
    """


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = '"' if any(ch in value for ch in "\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ScenarioDumper.add_representer(str, _represent_str)
