"""The legacy engine: an exact port of the production Python scheduler.

``legacy`` / ``legacy:memory`` computes from a Dataset; ``legacy:sql`` runs
the legacy's own per-candidate queries against the live database the
dataset was read from (read only; the queue insertion is simulated).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from engines.bulk import bulk_allocation
from engines.legacy.core import run_legacy
from engines.model import Dataset, Schedule
from harness.errors import EngineNotFound, SourceError

if TYPE_CHECKING:
    from harness.data.janitor_db import JanitorSession

BACKENDS = ("memory", "sql")


class LegacyEngine:
    def __init__(self, backend: str = "memory") -> None:
        if backend not in BACKENDS:
            raise EngineNotFound(
                f"legacy engine has no backend {backend!r} (choose from {', '.join(BACKENDS)})"
            )
        self.backend = backend
        self.name = f"legacy:{backend}"

    def schedule(self, dataset: Dataset) -> Schedule:
        if self.backend == "memory":
            from engines.legacy.memory import MemoryData

            # A run builds hundreds of thousands of objects, none of them cyclic: the
            # collector would only rescan them and the dataset (a fifth of the time).
            with bulk_allocation(freeze=True):
                return run_legacy(
                    MemoryData(dataset), dataset, engine_name=self.name, backend="memory"
                )
        if dataset.live_dsn is None:
            raise SourceError(
                "legacy:sql runs the legacy's queries on a live database: give a postgresql:// "
                "source (to run it on a snapshot, load it with `janitor-shadow restore` first)"
            )
        from engines.legacy.sql import SqlData

        with SqlData.connect(dataset) as data:
            return run_legacy(data, dataset, engine_name=self.name, backend="sql")


class LegacySqlEngine(LegacyEngine):
    """``legacy:sql``: reads the database itself, on the command's snapshot."""

    def __init__(self) -> None:
        super().__init__("sql")

    def schedule_live(self, session: JanitorSession, *, as_of: datetime | None = None) -> Schedule:
        """The legacy's queries on a connection that joins the session's snapshot."""
        from engines.legacy.sql import SqlData

        dataset = session.rows()
        if as_of is not None:
            dataset = replace(dataset, as_of=as_of)
        with session.joined() as conn, SqlData.on(conn, dataset) as data:
            return run_legacy(data, dataset, engine_name=self.name, backend="sql")


def create_engine(option: str | None) -> LegacyEngine:
    backend = option or "memory"
    return LegacySqlEngine() if backend == "sql" else LegacyEngine(backend)
