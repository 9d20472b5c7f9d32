"""A bulk run straight from a snapshot directory, reading the run table column-wise.

``load_snapshot`` turns every run into a Python tuple, which at two million
runs costs more than the whole schedule. The new engine only needs columns:
here the Parquet run table is read with pyarrow into
:class:`~engines.new.aggregates.RunColumns` and aggregated in a second
thread while the small tables are loaded as usual, and a worker process
works out the install-deps verdicts on the other core
(:mod:`engines.new.verdict_worker`), with which the install-deps failures
are then decided a group at a time on arrays. Snapshots whose run table is JSON
Lines (small ones) are loaded normally.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engines.bulk import bulk_allocation
from engines.model import Dataset, Schedule, datetime_to_us
from engines.new.aggregates import Aggregates, ContextRuns, RunColumns, aggregate_run_columns
from engines.new.config import EngineConfig
from engines.new.scoring import SchedulingEngine
from engines.new.verdict_worker import VerdictWorker
from harness.data.run_table import check_time_order, check_unvouched
from harness.data.snapshot import load_snapshot, run_table_file, snapshot_as_of, verify_run_table
from harness.errors import InputError

log = logging.getLogger("engines.new")


def schedule_snapshot(
    engine: SchedulingEngine,
    path: str | os.PathLike[str],
    *,
    as_of: datetime | None = None,
    rows: Dataset | None = None,
) -> Schedule:
    """Decide a snapshot's candidates; a Parquet run table is aggregated while the rest loads.

    ``as_of`` replaces the snapshot's recorded moment. ``rows`` is the
    snapshot as already loaded by the caller: its small tables are used as
    they are, and only the run table is read again, as columns. The schedule's
    ``aggregate_seconds`` is the wall time until the aggregates were ready,
    reading included (the two overlap).
    """
    path = Path(path)
    runs_file = run_table_file(path) if path.is_dir() else None
    if runs_file is None or runs_file.suffix != ".parquet":
        dataset = rows if rows is not None and rows.runs else load_snapshot(path)
        return engine.schedule(dataset if as_of is None else replace(dataset, as_of=as_of))
    started = time.perf_counter()
    as_of_us = datetime_to_us(as_of or snapshot_as_of(path))
    # The install-deps verdicts are worked out in another process meanwhile.
    worker = VerdictWorker(runs_file, path)
    try:
        with bulk_allocation(freeze=True):
            # Arrow reads the Parquet file and numpy sorts it mostly without the GIL:
            # both overlap with decoding the other tables, which is pure Python.
            with ThreadPoolExecutor(1, thread_name_prefix="runs") as pool:
                aggregating = pool.submit(_aggregate_runs, path, runs_file, engine.config, as_of_us)
                dataset = load_snapshot(path, runs=False) if rows is None else rows
                if as_of is not None:
                    dataset = replace(dataset, as_of=as_of)
                # What deciding asks of the other tables (cached on the dataset), worked
                # out while the runs are still being aggregated rather than after.
                _ = dataset.joined_candidates, dataset.debian_versions_by_source
                agg, context_runs = aggregating.result()
            verdicts = worker.verdicts()
            if verdicts is not None and len(verdicts.codes) != len(context_runs.columns):
                # the worker read another run table (the file changed meanwhile)
                log.warning("install-deps verdict worker read another run table, ignored")
                verdicts = None
            context_runs.complete(
                agg,
                (c.context for c in dataset.candidates if c.context),
                debian_versions=dataset.debian_versions_by_source,
                verdicts=verdicts,
                config=engine.config,
            )
            # the groups left undecided hold a failure the worker could not decide:
            # the engine meets it on the candidate, as it would have anyway
            return engine.schedule_aggregated(dataset, agg, started=started)
    finally:
        worker.stop()


def _aggregate_runs(
    snapshot: Path, runs_file: Path, config: EngineConfig, as_of_us: int
) -> tuple[Aggregates, ContextRuns]:
    """Verify the run table against the manifest, read its columns, aggregate them.

    The checks are those ``load_snapshot`` makes of a run table, and their
    errors come in the same order; hashing the file (which releases the GIL)
    runs beside the reading, not before it.
    """
    file = str(runs_file)
    with ThreadPoolExecutor(1, thread_name_prefix="verify") as pool:
        verifying = pool.submit(verify_run_table, snapshot, runs_file)
        failure: Exception | None = None
        try:
            columns = RunColumns.read_parquet(runs_file)
        except (OSError, ValueError, pa.ArrowException) as exc:
            failure = exc
        vouched = verifying.result()
    try:
        if not vouched:
            check_unvouched(pq.read_table(runs_file), file)
        if failure is not None:
            raise failure
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise InputError(f"cannot read Parquet: {exc}", file=file) from exc
    check_time_order(columns.start, columns.start_null, columns.finish, columns.finish_null, file)
    return aggregate_run_columns(columns, config, as_of_us)
