"""The comparison step of ``run --mode shadow``: the harness's own comparator.

Shadow mode must judge the candidate engine exactly as ``compare`` would
(tolerances, waivers, the noise baseline, the budget), or the two commands
could disagree about the same pair of schedules. This module binds those
settings once and hands the orchestrator a callable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engines.base import Engine
from engines.model import Dataset, Schedule
from harness.comparison.compare import compare_schedules
from harness.comparison.comparison_model import Comparison
from harness.comparison.tolerances import Settings, default_settings
from harness.comparison.waivers import Waiver


@dataclass(frozen=True)
class HarnessComparator:
    """Compares the candidate's schedule against the control's.

    With ``noise``, the control engine runs again on the same dataset (as is,
    with the candidate rows shuffled by ``seed``, and in the order the
    candidate processed them) after both schedules are in hand, exactly as
    ``compare`` measures it.
    """

    settings: Settings | None = None
    waivers: Sequence[Waiver] = ()
    noise: bool = False
    seed: int = 1
    budget: int = 0
    source: str = "engine"

    def __call__(
        self, control_engine: Engine, dataset: Dataset, control: Schedule, candidate: Schedule
    ) -> Comparison:
        from harness.cli.commands.compare import measure

        settings = self.settings or default_settings()
        profile = (
            measure(control_engine, dataset, control, self.seed, settings, candidate)
            if self.noise
            else None
        )
        return compare_schedules(
            control,
            candidate,
            settings=settings,
            noise=profile,
            waivers=tuple(self.waivers),
            budget=self.budget,
            source_a=self.source,
            source_b=self.source,
        )
