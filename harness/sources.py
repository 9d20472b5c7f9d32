"""Data sources: a SOURCE argument on the command line → what an engine reads.

SOURCE is one of
* a ``postgresql://`` (or ``postgres://``) DSN: a live Janitor database, read
  only, in one snapshot for the whole command (:mod:`harness.janitor_db`);
* a path: a snapshot directory, a YAML scenario or a golden-vector set;
* the name of a bundled scenario (``default``, ``rules/…``): see ``scenarios/``.

A command opens SOURCE once (:func:`open_input`) and hands each engine what
it reads best: an engine that reads the database itself
(:class:`~engines.base.ReadsDatabase`) gets the session, one that reads a
snapshot directory itself (:class:`~engines.base.ReadsSnapshot`) the
directory, any other the full Dataset, loaded once, on the same snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engines.base import Engine, ReadsDatabase, ReadsSnapshot
from engines.model import Dataset, Schedule
from harness.errors import SourceError
from harness.snapshot import load_snapshot

if TYPE_CHECKING:
    from harness.janitor_db import JanitorSession

SCENARIO_ROOT = Path(__file__).resolve().parent.parent / "scenarios"


def is_dsn(spec: str) -> bool:
    return spec.startswith(("postgresql://", "postgres://"))


def resolve_scenario(spec: str) -> Path | None:
    """A bundled scenario's path, or ``None`` when ``spec`` names none."""
    for candidate in (
        SCENARIO_ROOT / spec,
        SCENARIO_ROOT / f"{spec}.yaml",
    ):
        if candidate.exists():
            return candidate
    return None


def snapshot_path(spec: str) -> Path:
    """The snapshot, scenario or golden-vector path SOURCE names (not a DSN)."""
    path = Path(spec)
    if not path.exists():
        bundled = resolve_scenario(spec)
        if bundled is None:
            raise SourceError(
                f"{spec}: no such file, directory or bundled scenario "
                "(expected a snapshot path, a .yaml scenario or a postgresql:// DSN)"
            )
        path = bundled
    return path


class Input:
    """SOURCE, opened for one command; see the module docstring.

    ``as_of`` replaces the source's "now" (a live database's transaction
    time, a snapshot's recorded moment) for every engine.
    """

    def __init__(
        self,
        *,
        session: JanitorSession | None = None,
        path: Path | None = None,
        as_of: datetime | None = None,
    ) -> None:
        self.session = session
        self.path = path
        self.as_of = as_of
        self._dataset: Dataset | None = None

    def dataset(self) -> Dataset:
        """The full Dataset (every run), loaded once."""
        if self._dataset is None:
            if self.session is not None:
                self._dataset = self.session.dataset()
            else:
                assert self.path is not None
                dataset = load_snapshot(self.path)
                self._dataset = (
                    dataset if self.as_of is None else replace(dataset, as_of=self.as_of)
                )
        return self._dataset

    def reads_itself(self, engine: Engine) -> bool:
        """Whether ``engine`` reads this input without the full Dataset."""
        if self.session is not None:
            return isinstance(engine, ReadsDatabase)
        return self.path is not None and self.path.is_dir() and isinstance(engine, ReadsSnapshot)

    def prepare(self, *engines: Engine) -> None:
        """Load the full Dataset now if any of ``engines`` will need it (for timing)."""
        if not all(self.reads_itself(e) for e in engines):
            self.dataset()

    def dataset_for(self, *engines: Engine) -> Dataset:
        """What ``engine.schedule`` should be given (noise reruns, orchestration).

        On a live database, engines that all read it themselves get the
        scheduling rows of the session (no runs: they ask the database, on the
        session's snapshot); otherwise the full Dataset.
        """
        if self.session is not None and all(isinstance(e, ReadsDatabase) for e in engines):
            rows = self.session.rows()
            return rows if self._dataset is None else self._dataset
        return self.dataset()

    def schedule(self, engine: Engine) -> Schedule:
        """Run ``engine`` on this input, the way it reads best."""
        if self.reads_itself(engine):
            if self.session is not None:
                assert isinstance(engine, ReadsDatabase)
                return engine.schedule_live(self.session, as_of=self.as_of)
            assert self.path is not None and isinstance(engine, ReadsSnapshot)
            return engine.schedule_snapshot(self.path, as_of=self.as_of)
        return engine.schedule(self.dataset())


@contextmanager
def open_input(
    spec: str,
    *,
    campaign: str | None = None,
    codebases: Sequence[str] | None = None,
    as_of: datetime | None = None,
) -> Iterator[Input]:
    """SOURCE for the length of a command (filters apply to live databases only).

    A live database's snapshot stays open until the block ends, so every
    connection the engines open inside it sees the same rows.
    """
    if is_dsn(spec):
        from harness.janitor_db import open_session

        with open_session(spec, as_of=as_of, campaign=campaign, codebases=codebases) as session:
            yield Input(session=session, as_of=as_of)
    else:
        yield Input(path=snapshot_path(spec), as_of=as_of)


def open_source(
    spec: str,
    *,
    campaign: str | None = None,
    codebases: Sequence[str] | None = None,
    as_of: datetime | None = None,
) -> Dataset:
    """Load the dataset SOURCE names, on its own (filters apply to live databases only).

    A live database is read in one transaction that ends here: an engine that
    queries the database later reads another snapshot. Commands use
    :func:`open_input` instead.
    """
    if is_dsn(spec):
        from harness.janitor_db import read_dataset

        return read_dataset(spec, campaign=campaign, codebases=codebases, as_of=as_of)
    dataset = load_snapshot(snapshot_path(spec))
    return dataset if as_of is None else replace(dataset, as_of=as_of)


def schedule_source(
    engine: Engine,
    spec: str,
    *,
    campaign: str | None = None,
    codebases: Sequence[str] | None = None,
    as_of: datetime | None = None,
) -> Schedule:
    """Run ``engine`` on SOURCE (see :meth:`Input.schedule`)."""
    with open_input(spec, campaign=campaign, codebases=codebases, as_of=as_of) as source:
        return source.schedule(engine)
