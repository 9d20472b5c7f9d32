"""The new engine on a live Janitor database: scheduling rows + set-based aggregates.

The runs stay in the database; the engine asks for their aggregates
(:mod:`engines.new.aggregates_sql`) on connections that join the command's
snapshot, while the scheduling rows (candidates in the legacy's row order,
codebases, policies, queue) are read and built on the session's own
connection: the server works while Python builds. Sessions, queries and
row converters are :mod:`harness.data.janitor_db`'s.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from engines.bulk import bulk_allocation
from engines.model import Dataset, Schedule
from harness.data.janitor_db import JanitorSession, dataset_session, open_session

if TYPE_CHECKING:
    from engines.new.scoring import SchedulingEngine


def schedule_live(
    engine: SchedulingEngine,
    session: JanitorSession,
    *,
    as_of: datetime | None = None,
    rows: Dataset | None = None,
) -> Schedule:
    """One bulk run on the session's snapshot; ``rows`` defaults to ``session.rows()``.

    The aggregate queries start first; the scheduling rows are read (once
    per session) while the server works.
    """
    from engines.new.aggregates_sql import start_aggregates

    started = time.perf_counter()
    moment = as_of or (session.moment if rows is None else rows.as_of)
    with bulk_allocation(freeze=True):
        pending = start_aggregates(session.connection, engine.config, moment, session.joined)
        try:
            dataset = session.rows() if rows is None else rows
            agg = pending.result({c.context for c in dataset.candidates if c.context})
        finally:
            pending.close()
    if dataset.as_of != moment:
        dataset = replace(dataset, as_of=moment)
    return engine.schedule_aggregated(dataset, agg, started=started, verdicts=pending.verdicts)


def schedule_live_dataset(engine: SchedulingEngine, dataset: Dataset) -> Schedule:
    """A Dataset read from a live database: aggregates from its snapshot (or a new one)."""
    with dataset_session(dataset) as session:
        return schedule_live(engine, session, rows=dataset)


def schedule_from_database(
    engine: SchedulingEngine, dsn: str, *, as_of: datetime | None = None
) -> Schedule:
    """One bulk run straight from ``dsn``, in a session of its own."""
    with open_session(dsn, as_of=as_of) as session:
        return schedule_live(engine, session)
