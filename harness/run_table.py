"""The ``run`` table of a large snapshot, as one Parquet file.

Runs are nearly all of a recording (millions of rows, ten columns). JSON
Lines costs several microseconds a row to parse; a columnar file with typed
timestamps loads two million runs in about three seconds. Timestamps are
stored as ``timestamp[us]`` (naive UTC) and read back as integer
microseconds; ``failure_details`` is kept as JSON text so that its free-form
shape survives exactly.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from engines.model import Run
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
BATCH_ROWS = 200_000


@contextmanager
def bulk_allocation(*, freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic GC while building millions of acyclic records.

    Each generation-0 collection would rescan the growing lists; with the
    collector paused, loading is several times faster. ``freeze`` then moves
    what was built into the permanent generation, so that the first
    collection after loading does not sweep millions of records that cannot
    be garbage anyway (they are still freed by reference counting).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if freeze:
                gc.freeze()
            gc.enable()


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


def read_runs(path: Path) -> list[Run]:
    """Read a run table written by :func:`write_runs`, checking its schema and NULLs."""
    file = str(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read Parquet: {exc}", file=file) from exc
    for field in SCHEMA:
        if field.name not in table.column_names:
            raise InputError("missing column", file=file, field=field.name)
        actual = table.schema.field(field.name).type
        if actual != field.type:
            raise InputError(
                f"expected type {field.type}, got {actual}", file=file, field=field.name
            )
    for name in REQUIRED:
        column = table.column(name)
        if column.null_count:
            first = column.is_null().to_pylist().index(True)
            raise InputError("expected a string, got null", file=file, record=first + 1, field=name)
    with bulk_allocation():
        columns = [
            table.column(name).cast(pa.int64()).to_pylist()
            if name in ("start_time", "finish_time")
            else table.column(name).to_pylist()
            for name in SCHEMA.names
        ]
        details = columns[-1]
        for index, text in enumerate(details):
            if text is not None:
                try:
                    details[index] = orjson.loads(text)
                except orjson.JSONDecodeError as exc:
                    raise InputError(
                        f"invalid JSON: {exc}", file=file, record=index + 1, field="failure_details"
                    ) from exc
        return list(map(Run, *columns))
