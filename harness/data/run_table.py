"""The ``run`` table of a large snapshot, as one Parquet file.

Runs are nearly all of a recording (millions of rows, ten columns). JSON
Lines costs several microseconds a row to parse; a columnar file with typed
timestamps loads two million runs in about two seconds. Timestamps are
stored as ``timestamp[us]`` (naive UTC) and read back as integer
microseconds; ``failure_details`` is kept as JSON text so that its free-form
shape survives exactly. The repeating text columns are read as dictionaries,
so that each distinct codebase, campaign, result code or context is one
Python string shared by all its runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engines.bulk import bulk_allocation
from engines.model import Run, datetime_to_us
from harness.errors import InputError

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("codebase", pa.string()),
        ("suite", pa.string()),
        ("result_code", pa.string()),
        ("start_time", pa.timestamp("us")),
        ("finish_time", pa.timestamp("us")),
        ("failure_transient", pa.bool_()),
        ("instigated_context", pa.string()),
        ("context", pa.string()),
        ("failure_details", pa.string()),
    ]
)
REQUIRED = ("id", "codebase", "suite", "result_code")
#: Columns with few distinct values (codebases, campaigns, result codes, contexts).
REPEATING = ("codebase", "suite", "result_code", "instigated_context", "context")
BATCH_ROWS = 200_000
#: What Python's datetime can hold, in µs since 1970 (a Parquet timestamp can hold more).
MIN_US, MAX_US = datetime_to_us(datetime.min), datetime_to_us(datetime.max)


def write_runs(runs: Sequence[Run], path: Path) -> int:
    """Write ``runs`` to ``path`` in batches; returns the row count."""
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        for start in range(0, len(runs), BATCH_ROWS):
            batch = runs[start : start + BATCH_ROWS]
            columns: list[Any] = [
                [r.id for r in batch],
                [r.codebase for r in batch],
                [r.suite for r in batch],
                [r.result_code for r in batch],
                pa.array([r.start_us for r in batch], pa.int64()).cast(pa.timestamp("us")),
                pa.array([r.finish_us for r in batch], pa.int64()).cast(pa.timestamp("us")),
                [r.failure_transient for r in batch],
                [r.instigated_context for r in batch],
                [r.context for r in batch],
                [
                    None if r.failure_details is None else orjson.dumps(r.failure_details).decode()
                    for r in batch
                ],
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=SCHEMA))
    return len(runs)


def check_time_order(
    start: np.ndarray,
    start_null: np.ndarray,
    finish: np.ndarray,
    finish_null: np.ndarray,
    file: str,
) -> None:
    """Refuse a run that finishes before it starts (the schema's ``finish_time >= start_time``).

    Integer microseconds with NULL masks, as the new engine holds them; one
    vectorised comparison, a few milliseconds for two million runs.
    """
    for name, values, nulls in (
        ("start_time", start, start_null),
        ("finish_time", finish, finish_null),
    ):
        outside = np.flatnonzero(((values < MIN_US) | (values > MAX_US)) & ~nulls)
        if len(outside):
            raise InputError(
                f"expected a timestamp from year 1 to 9999, got {int(values[outside[0]])} µs "
                "since 1970",
                file=file,
                record=int(outside[0]) + 1,
                field=name,
            )
    bad = np.flatnonzero((finish < start) & ~start_null & ~finish_null)
    if len(bad):
        row = int(bad[0])
        raise InputError(
            f"finish_time is before start_time ({int(start[row] - finish[row])} µs earlier; the "
            "schema requires finish_time >= start_time)",
            file=file,
            record=row + 1,
            field="finish_time",
        )


def check_unique_ids(ids: pa.ChunkedArray, file: str) -> None:
    """Refuse a repeated run id (the primary key). Costs about a second per million runs,
    so it is asked only of files no manifest vouches for."""
    if pc.count_distinct(ids).as_py() == len(ids):
        return
    seen: dict[str, int] = {}
    for row, ident in enumerate(ids.to_pylist()):
        first = seen.setdefault(ident, row)
        if first != row:
            raise InputError(
                f"duplicate run id {ident!r} (also record {first + 1}; the schema makes it unique)",
                file=file,
                record=row + 1,
                field="id",
            )


def check_unvouched(table: pa.Table, file: str) -> None:
    """What a file no manifest vouches for must also pass: valid UTF-8 in every string
    (Arrow checks it only here) and unique run ids. A few tenths of a second per
    million runs; a recorded file's sha256 makes both needless."""
    try:
        table.validate(full=True)
    except pa.ArrowException as exc:
        raise InputError(f"invalid data: {exc}", file=file) from exc
    if "id" in table.column_names:
        check_unique_ids(table.column("id"), file)
    if "failure_details" in table.column_names:
        details = table.column("failure_details")
        valid = np.flatnonzero(details.is_valid().to_numpy(zero_copy_only=False))
        texts = details.take(pa.array(valid, pa.int64())).to_pylist()
        for row, text in zip(valid.tolist(), texts, strict=True):
            try:
                orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise InputError(
                    f"invalid JSON: {exc}", file=file, record=row + 1, field="failure_details"
                ) from exc


def read_runs(path: Path, *, vouched: bool = False) -> list[Run]:
    """Read a run table written by :func:`write_runs`, checking its schema, NULLs and times.

    ``vouched``: the manifest's sha256 matched, so the file is as it was
    written (from a table whose primary key is the run id): the checks of
    :func:`check_unvouched` are skipped.
    """
    file = str(path)
    try:
        problem = _schema_problem(pq.read_schema(path), file)
        if problem is not None:
            pq.read_table(path)  # an unreadable file is reported as such first, as it always was
            raise problem
        # The repeating columns come back as dictionaries: see _shared_strings.
        table = pq.read_table(path, columns=SCHEMA.names, read_dictionary=REPEATING)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read Parquet: {exc}", file=file) from exc
    for name in REQUIRED:
        column = table.column(name)
        if column.null_count:
            first = column.is_null().to_pylist().index(True)
            raise InputError("expected a string, got null", file=file, record=first + 1, field=name)
    times = [table.column(name).cast(pa.int64()) for name in ("start_time", "finish_time")]
    nulls = [column.is_null().to_numpy(zero_copy_only=False) for column in times]
    values = [column.fill_null(0).to_numpy() for column in times]
    check_time_order(values[0], nulls[0], values[1], nulls[1], file)
    if not vouched:
        check_unvouched(table, file)

    def decode(index: int, text: str) -> Any:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"invalid JSON: {exc}", file=file, record=index + 1, field="failure_details"
            ) from exc

    return runs_from_table(table, SCHEMA.names, decode)


def runs_from_table(
    table: pa.Table, names: Sequence[str], decode_details: Callable[[int, str], Any]
) -> list[Run]:
    """Run tuples from ``table``'s columns ``names`` (in Run's field order; repeating
    strings as dictionaries, times as timestamps or integer µs), each non-NULL
    ``failure_details`` text turned into its value by ``decode_details(row, text)``."""
    with bulk_allocation():
        columns = [_python_values(table.column(name)) for name in names]
        details = table.column("failure_details")
        parsed = columns[-1]
        # Only the rows that have details are visited (most have none).
        for index in np.flatnonzero(details.is_valid().to_numpy(zero_copy_only=False)).tolist():
            parsed[index] = decode_details(index, parsed[index])
        # Run is a NamedTuple, whose __new__ cannot be overridden: tuple.__new__
        # builds the same object without a Python-level call per row.
        return list(map(tuple.__new__, repeat(Run), zip(*columns, strict=True)))


def _schema_problem(schema: pa.Schema, file: str) -> InputError | None:
    for field in SCHEMA:
        if field.name not in schema.names:
            return InputError("missing column", file=file, field=field.name)
        actual = schema.field(field.name).type
        if actual != field.type:
            return InputError(
                f"expected type {field.type}, got {actual}", file=file, field=field.name
            )
    return None


def _python_values(column: pa.ChunkedArray) -> list[Any]:
    """A column as a list of Python values (timestamps as integer microseconds)."""
    if pa.types.is_dictionary(column.type):
        return _shared_strings(column)
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.int64())
        if not column.null_count:
            return column.to_numpy().tolist()
    return column.to_pylist()


def _shared_strings(column: pa.ChunkedArray) -> list[str | None]:
    """A dictionary column's values, one Python string per distinct value.

    Converting each of two million cells separately costs several times as
    much, and holds two million copies of a few thousand codebase names.
    """
    if len(column) == 0:
        return []
    combined = column.combine_chunks()  # one dictionary for all row groups
    values = np.array([*combined.dictionary.to_pylist(), None], dtype=object)
    indices = pc.fill_null(combined.indices, len(values) - 1).to_numpy()
    return values[indices].tolist()
