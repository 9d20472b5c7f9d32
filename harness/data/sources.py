"""Data sources: a SOURCE argument on the command line → what an engine reads.

SOURCE is one of
* a ``postgresql://`` (or ``postgres://``) DSN: a live Janitor database, read
  only, in one snapshot for the whole command (:mod:`harness.data.janitor_db`);
* a path: a snapshot directory, a YAML scenario or a golden-vector set;
* the name of a bundled scenario (``default``, ``rules/…``): see ``scenarios/``.

A command opens SOURCE once (:func:`open_input`) and hands each engine what
it reads best: an engine that reads the database itself
(:class:`~engines.base.ReadsDatabase`) gets the session, one that reads a
snapshot directory itself (:class:`~engines.base.ReadsSnapshot`) the
directory (unfiltered only), any other the full Dataset, loaded once, on the
same snapshot.

``--campaign`` and ``--codebase`` filter every kind of source the same way:
a live database in SQL (:mod:`harness.data.janitor_db`), files here
(:func:`filter_dataset`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.base import Engine, ReadsDatabase, ReadsSnapshot
from engines.model import Dataset, Schedule
from harness.data.snapshot import load_snapshot
from harness.errors import SourceError

if TYPE_CHECKING:
    from harness.data.janitor_db import JanitorSession

SCENARIO_ROOT = Path(__file__).resolve().parents[2] / "scenarios"


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


def filter_dataset(
    dataset: Dataset, campaign: str | None, codebases: Sequence[str] | None
) -> Dataset:
    """Keep what the live reader keeps for the same filters (see :mod:`harness.data.janitor_db`).

    Candidates (and the recorded row order) of the campaign and/or the
    codebases; runs of the codebases, or with a campaign alone, the
    campaign's runs and every run of its candidates' codebases (their
    per-codebase average spans all campaigns). Every codebase row, policy,
    Debian version and queue row is kept: the normalized value is relative
    to the maximum over all codebases, and the queue is the queue. With a
    codebase list the per-campaign duration average is over those codebases
    only, as with the live reader; the provenance says so.
    """
    if campaign is None and codebases is None:
        return dataset
    wanted = None if codebases is None else frozenset(codebases)
    candidates = tuple(
        c
        for c in dataset.candidates
        if (campaign is None or c.suite == campaign) and (wanted is None or c.codebase in wanted)
    )
    notes: list[str] = []
    if wanted is not None:
        runs = tuple(r for r in dataset.runs if r.codebase in wanted)
        notes.append("per-campaign duration averages are over the listed codebases only")
    else:
        spanned = {c.codebase for c in dataset.candidates if c.suite == campaign}
        runs = tuple(r for r in dataset.runs if r.suite == campaign or r.codebase in spanned)
        notes.append("runs: the campaign's and every run of its candidates' codebases")
    kept = {c.key for c in candidates}
    row_order = dataset.candidate_row_order
    filters: dict[str, Any] = dict(dataset.provenance.filters)
    if campaign is not None:
        filters["campaign"] = campaign
    if codebases is not None:
        filters["codebases"] = sorted(set(codebases))
    details = dict(dataset.provenance.details)
    earlier = details.get("notes")
    details["notes"] = [*(earlier if isinstance(earlier, list) else ()), *notes]
    return replace(
        dataset,
        candidates=candidates,
        runs=runs,
        candidate_row_order=None if row_order is None else tuple(k for k in row_order if k in kept),
        provenance=replace(dataset.provenance, filters=filters, details=details),
    )


def describe_source(spec: str, campaign: str | None, codebases: Sequence[str] | None) -> str:
    """SOURCE and its filters, as an error message names them."""
    parts = [spec]
    if campaign is not None:
        parts.append(f"--campaign {campaign}")
    parts.extend(f"--codebase {name}" for name in codebases or ())
    return " ".join(parts)


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
    time, a snapshot's recorded moment) for every engine. A file source's
    filters (a live database's are the session's) apply to the Dataset.
    """

    def __init__(
        self,
        *,
        session: JanitorSession | None = None,
        path: Path | None = None,
        as_of: datetime | None = None,
        campaign: str | None = None,
        codebases: Sequence[str] | None = None,
    ) -> None:
        self.session = session
        self.path = path
        self.as_of = as_of
        self.campaign = campaign
        self.codebases = codebases
        self._dataset: Dataset | None = None
        self._rows: Dataset | None = None

    def _load(self, *, runs: bool) -> Dataset:
        assert self.path is not None
        dataset = filter_dataset(load_snapshot(self.path, runs=runs), self.campaign, self.codebases)
        return dataset if self.as_of is None else replace(dataset, as_of=self.as_of)

    def dataset(self) -> Dataset:
        """The full Dataset (every run), loaded once."""
        if self._dataset is None:
            self._dataset = (
                self.session.dataset() if self.session is not None else self._load(runs=True)
            )
        return self._dataset

    def rows(self) -> Dataset:
        """The candidates and the other small tables (the runs only if already loaded)."""
        if self._dataset is not None:
            return self._dataset
        if self.session is not None:
            return self.session.rows()
        if self._rows is None:
            self._rows = self._load(runs=False)
        return self._rows

    def reads_itself(self, engine: Engine) -> bool:
        """Whether ``engine`` reads this input without the full Dataset."""
        if self.session is not None:
            return isinstance(engine, ReadsDatabase)
        return (
            self.path is not None
            and self.path.is_dir()
            and self.campaign is None
            and self.codebases is None
            and isinstance(engine, ReadsSnapshot)
        )

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
            return self.rows()
        return self.dataset()

    def schedule(self, engine: Engine) -> Schedule:
        """Run ``engine`` on this input, the way it reads best."""
        if self.reads_itself(engine):
            if self.session is not None:
                assert isinstance(engine, ReadsDatabase)
                return engine.schedule_live(self.session, as_of=self.as_of)
            assert self.path is not None and isinstance(engine, ReadsSnapshot)
            # the small tables once, if another engine made them be read already
            return engine.schedule_snapshot(self.path, as_of=self.as_of, rows=self._dataset)
        return engine.schedule(self.dataset())


@contextmanager
def open_input(
    spec: str,
    *,
    campaign: str | None = None,
    codebases: Sequence[str] | None = None,
    as_of: datetime | None = None,
) -> Iterator[Input]:
    """SOURCE for the length of a command, filtered to ``campaign`` and ``codebases``.

    A live database's snapshot stays open until the block ends, so every
    connection the engines open inside it sees the same rows.
    """
    if is_dsn(spec):
        from harness.data.janitor_db import open_session

        with open_session(spec, as_of=as_of, campaign=campaign, codebases=codebases) as session:
            yield Input(session=session, as_of=as_of)
    else:
        yield Input(path=snapshot_path(spec), as_of=as_of, campaign=campaign, codebases=codebases)


def open_source(
    spec: str,
    *,
    campaign: str | None = None,
    codebases: Sequence[str] | None = None,
    as_of: datetime | None = None,
) -> Dataset:
    """Load the dataset SOURCE names, on its own, filtered to ``campaign`` and ``codebases``.

    ``as_of`` replaces the source's "now". A live database is read in one transaction that ends here: an engine that
    queries the database later reads another snapshot. Commands use
    :func:`open_input` instead.
    """
    if is_dsn(spec):
        from harness.data.janitor_db import read_dataset

        return read_dataset(spec, campaign=campaign, codebases=codebases, as_of=as_of)
    dataset = filter_dataset(load_snapshot(snapshot_path(spec)), campaign, codebases)
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
