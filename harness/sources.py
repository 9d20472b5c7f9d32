"""Data sources: a SOURCE argument on the command line → a Dataset.

SOURCE is one of
* a ``postgresql://`` (or ``postgres://``) DSN: the live reader, read-only;
* a path: a snapshot directory, a YAML scenario or a golden-vector set;
* the name of a bundled scenario (``default``, ``rules/…``): see ``scenarios/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from engines.base import Engine
from engines.model import Dataset, Schedule
from harness.errors import SourceError
from harness.snapshot import load_snapshot

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


def open_source(
    spec: str,
    *,
    campaign: str | None = None,
    codebases: Sequence[str] | None = None,
    as_of: datetime | None = None,
) -> Dataset:
    """Load the dataset SOURCE names (filters apply to live databases only).

    ``as_of`` replaces the source's "now" (a live database's transaction time,
    a snapshot's recorded moment)."""
    if is_dsn(spec):
        from harness.live import read_dataset

        return read_dataset(spec, campaign=campaign, codebases=codebases, as_of=as_of)
    dataset = load_snapshot(snapshot_path(spec))
    return dataset if as_of is None else replace(dataset, as_of=as_of)


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


def schedule_source(
    engine: Engine,
    spec: str,
    *,
    campaign: str | None = None,
    codebases: Sequence[str] | None = None,
    as_of: datetime | None = None,
) -> Schedule:
    """Run ``engine`` on SOURCE.

    An engine that reads a snapshot directory itself (a ``schedule_snapshot``
    method, as the new engine has: columns instead of millions of run
    tuples) is handed the directory; every other case loads the dataset.
    """
    reader = getattr(engine, "schedule_snapshot", None)
    if reader is not None and not is_dsn(spec):
        path = snapshot_path(spec)
        if path.is_dir():
            schedule: Schedule = reader(path, as_of=as_of)
            return schedule
    return engine.schedule(open_source(spec, campaign=campaign, codebases=codebases, as_of=as_of))
