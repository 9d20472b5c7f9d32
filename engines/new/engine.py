"""The new engine's front door: which way its input is read, in one place.

* a Dataset in memory: the runs are aggregated in Python
  (:meth:`~engines.new.scoring.SchedulingEngine.schedule`);
* a Dataset read from a live database: the aggregates are asked of the
  database, on the snapshot the dataset was read in (:mod:`engines.new.live`);
* a live session (:class:`~engines.base.ReadsDatabase`): the scheduling rows
  and the aggregates, all on the command's snapshot (:mod:`engines.new.live`);
* a snapshot directory (:class:`~engines.base.ReadsSnapshot`): the Parquet
  run table read as columns (:mod:`engines.new.from_snapshot`).

:mod:`engines.new.scoring` only decides, whatever the path.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING

from engines.model import Dataset, Schedule
from engines.new.scoring import SchedulingEngine

if TYPE_CHECKING:
    from harness.data.janitor_db import JanitorSession


class NewEngine(SchedulingEngine):
    """The registry's ``new`` engine: the scorer, reached by every input path."""

    def schedule(self, dataset: Dataset) -> Schedule:
        if dataset.live_dsn is not None:
            from engines.new.live import schedule_live_dataset

            return schedule_live_dataset(self, dataset)
        return super().schedule(dataset)

    def schedule_live(self, session: JanitorSession, *, as_of: datetime | None = None) -> Schedule:
        from engines.new.live import schedule_live

        return schedule_live(self, session, as_of=as_of)

    def schedule_snapshot(
        self,
        path: str | os.PathLike[str],
        *,
        as_of: datetime | None = None,
        rows: Dataset | None = None,
    ) -> Schedule:
        from engines.new.from_snapshot import schedule_snapshot

        return schedule_snapshot(self, path, as_of=as_of, rows=rows)
