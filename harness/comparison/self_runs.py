"""The noise self-runs, on the machine's other core while B runs.

The self-runs (:func:`~harness.comparison.noise.noise_runs`) need only the
reference engine and the dataset, not A's or B's schedule, so a comparison can
start them as soon as it has A (started then, they also inherit what A's run
keeps for reruns, such as the legacy's run index and estimates). A forked child
inherits the loaded dataset for free (copy-on-write) and sends back each run as columns
(:meth:`~harness.comparison.alignment.Side.detached`): a pickled 100,000-row
Schedule costs seconds to load, its columns a fraction of one.

Forking is only safe in a process with no other thread (a lock held by one
would stay held in the child), and useless with one core or with an engine
that reads the command's database connection, which the child must not share
(:mod:`harness.forked`); in those cases the runs happen in the caller, when
asked for, as before.
"""

from __future__ import annotations

import logging

from engines.base import Engine
from engines.model import Dataset
from harness.comparison.alignment import Side, side_from_schedule
from harness.comparison.noise import noise_runs
from harness.forked import ChildDied, Forked, can_fork

log = logging.getLogger("harness.compare")

Runs = list[tuple[str, Side]]


def _runs_as_columns(engine: Engine, dataset: Dataset, seed: int, shuffles: int) -> Runs:
    return [
        (label, side_from_schedule(run).detached())
        for label, run in noise_runs(engine, dataset, seed=seed, shuffles=shuffles)
    ]


class SelfRuns:
    """The self-runs of one engine on one dataset, started now, collected by
    :meth:`result`; use it as a context manager so that a child nobody waits
    for is stopped."""

    def __init__(
        self,
        engine: Engine,
        dataset: Dataset,
        *,
        seed: int,
        shuffles: int,
        parallel: bool = True,
    ) -> None:
        self.engine, self.dataset, self.seed, self.shuffles = engine, dataset, seed, shuffles
        self._child: Forked[Runs] | None = None
        if parallel and can_fork():
            self._child = Forked(
                _runs_as_columns, engine, dataset, seed, shuffles, name="janitor-shadow self-runs"
            )

    @property
    def in_child(self) -> bool:
        return self._child is not None

    def result(self) -> Runs:
        """The runs, waiting for the child if there is one. A child that dies
        without an answer is not fatal: the runs are redone here."""
        child, self._child = self._child, None
        if child is not None:
            try:
                return child.result()
            except ChildDied as died:
                log.warning("the noise self-runs' process: %s; running them here", died)
        return _runs_as_columns(self.engine, self.dataset, self.seed, self.shuffles)

    def __enter__(self) -> SelfRuns:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._child is not None:
            self._child.__exit__(*exc)
