"""Data sources: a SOURCE argument on the command line → a Dataset.

SOURCE is one of
* a ``postgresql://`` (or ``postgres://``) DSN: the live reader, read-only;
* a path: a snapshot directory, a YAML scenario or a golden-vector set;
* the name of a bundled scenario (``default``, ``rules/…``): see ``scenarios/``.

``--campaign`` and ``--codebase`` filter every kind of source the same way:
the live reader in SQL (``harness.live``), files here (:func:`filter_dataset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

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
    """Load the dataset SOURCE names, filtered to ``campaign`` and ``codebases``.

    ``as_of`` replaces the source's "now" (a live database's transaction time,
    a snapshot's recorded moment)."""
    if is_dsn(spec):
        from harness.live import read_dataset

        return read_dataset(spec, campaign=campaign, codebases=codebases, as_of=as_of)
    dataset = filter_dataset(load_snapshot(snapshot_path(spec)), campaign, codebases)
    return dataset if as_of is None else replace(dataset, as_of=as_of)


def filter_dataset(
    dataset: Dataset, campaign: str | None, codebases: Sequence[str] | None
) -> Dataset:
    """Keep what the live reader keeps for the same filters (see ``harness.live``).

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
    if reader is not None and not is_dsn(spec) and campaign is None and codebases is None:
        path = snapshot_path(spec)
        if path.is_dir():
            schedule: Schedule = reader(path, as_of=as_of)
            return schedule
    return engine.schedule(open_source(spec, campaign=campaign, codebases=codebases, as_of=as_of))
