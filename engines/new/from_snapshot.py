"""A bulk run straight from a snapshot directory, reading the run table column-wise.

``load_snapshot`` turns every run into a Python tuple, which at two million
runs costs more than the whole schedule. The new engine only needs columns:
here the small tables are loaded as usual while the Parquet run table is
read with pyarrow, in a second thread, into
:class:`~engines.new.aggregates.RunColumns` directly.
Snapshots whose run table is JSON Lines (small ones) are loaded normally.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa

from engines.model import Schedule
from engines.new.aggregates import RunColumns
from engines.new.scoring import SchedulingEngine
from harness.errors import InputError
from harness.snapshot import load_snapshot, run_table_file


def schedule_snapshot(engine: SchedulingEngine, path: str | os.PathLike[str]) -> Schedule:
    path = Path(path)
    runs_file = run_table_file(path) if path.is_dir() else None
    if runs_file is None or runs_file.suffix != ".parquet":
        return engine.schedule(load_snapshot(path))
    # Arrow reads the Parquet file without the GIL: it overlaps with decoding
    # the small tables, which is pure Python.
    with ThreadPoolExecutor(1, thread_name_prefix="parquet") as pool:
        reading = pool.submit(RunColumns.read_parquet, runs_file)
        dataset = load_snapshot(path, runs=False)
        try:
            columns = reading.result()
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise InputError(f"cannot read Parquet: {exc}", file=str(runs_file)) from exc
    return engine.schedule_with_runs(dataset, columns)
