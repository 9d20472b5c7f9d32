"""The plan's "new with legacy fallback" as an engine, so any source can feed it."""

from __future__ import annotations

from engines.base import Engine, get_engine
from engines.model import Dataset, Schedule
from engines.new.orchestrator import OrchestrationMode, SchedulingOrchestrator


class FallbackEngine:
    """``primary``, with the legacy deciding every candidate it fails on (plan §4.1)."""

    def __init__(self, primary: Engine) -> None:
        self.name = f"{primary.name}+fallback:legacy"
        self._orchestrator = SchedulingOrchestrator(
            primary, get_engine("legacy"), OrchestrationMode.FALLBACK
        )

    def schedule(self, dataset: Dataset) -> Schedule:
        return self._orchestrator.schedule_candidates(dataset).schedule
