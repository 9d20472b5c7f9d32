"""An engine that lives outside the project, found by ``plugin_engine:create``.

It wraps the legacy and perturbs it, as an experimental branch would.
"""

from __future__ import annotations

from dataclasses import replace

from engines.base import get_engine
from engines.model import Dataset, Schedule


class DoubledOffsets:
    def __init__(self, option: str | None) -> None:
        self.factor = float(option or 2.0)
        self.name = f"plugin_engine:create:{option or ''}"

    def schedule(self, dataset: Dataset) -> Schedule:
        schedule = get_engine("legacy").schedule(dataset)
        schedule.engine = self.name
        schedule.decisions = [
            d if d.offset is None else replace(d, offset=d.offset * self.factor)
            for d in schedule.decisions
        ]
        return schedule


def create(option: str | None) -> DoubledOffsets:
    return DoubledOffsets(option)


def not_an_engine(option: str | None) -> object:
    return object()


class PermutedRows:
    """The legacy on the same data with the candidate rows in another order, as
    a database may return them: a faithful engine must never be flagged."""

    def __init__(self, option: str | None) -> None:
        self.seed = int(option or 20250601)
        self.name = f"plugin_engine:permuted:{self.seed}"

    def schedule(self, dataset: Dataset) -> Schedule:
        from harness.comparison.noise import shuffled_dataset

        schedule = get_engine("legacy").schedule(shuffled_dataset(dataset, self.seed))
        schedule.engine = self.name
        return schedule


def permuted(option: str | None) -> PermutedRows:
    return PermutedRows(option)


class _RaisingRun:
    def __init__(self) -> None:
        self.name = "plugin_engine:raising:run"

    def schedule(self, dataset: Dataset) -> Schedule:
        raise RuntimeError("the experimental engine is down")


def raising(option: str | None) -> object:
    """A new engine that raises: ``run`` on the whole run; ``candidate`` (the
    default) on every third codebase, inside the new engine's own candidate loop."""
    if option == "run":
        return _RaisingRun()
    from engines.model import Candidate
    from engines.new.config import load_profile
    from engines.new.scoring import SchedulingEngine

    class RaisingOnSome(SchedulingEngine):
        def decide(self, candidate: Candidate, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            if sum(map(ord, candidate.codebase)) % 3 == 0:
                raise ZeroDivisionError(f"experimental bug on {candidate.codebase}")
            return super().decide(candidate, *args, **kwargs)  # type: ignore[arg-type]

    return RaisingOnSome(
        load_profile("parity"), name="plugin_engine:raising:candidate", profile="parity"
    )
