"""The scheduling model every engine shares: what the scheduler reads, what it decides.

Timestamps are naive UTC, as the Janitor stores them. Inside the model they are
kept as whole microseconds since the Unix epoch (``*_us`` fields): that is
exact, cheap to subtract, and is what PostgreSQL's interval arithmetic works
in. Helpers convert to and from ``datetime`` at the edges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from itertools import repeat
from operator import attrgetter
from typing import Any, NamedTuple

EPOCH = datetime(1970, 1, 1)
US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND

#: PostgreSQL's ``queue_bucket`` enum, in its declared (= sort) order.
BUCKETS: tuple[str, ...] = (
    "update-existing-mp",
    "manual",
    "control",
    "hook",
    "reschedule",
    "update-new-mp",
    "missing-deps",
    "default",
)
BUCKET_RANK: Mapping[str, int] = {name: rank for rank, name in enumerate(BUCKETS)}

#: PostgreSQL's ``publish_mode`` enum.
PUBLISH_MODES: tuple[str, ...] = (
    "push",
    "attempt-push",
    "propose",
    "build-only",
    "push-derived",
    "skip",
    "bts",
)


def datetime_to_us(moment: datetime) -> int:
    """Naive-UTC datetime → microseconds since the epoch (exact)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def us_to_datetime(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def us_to_timedelta(us: int) -> timedelta:
    return timedelta(microseconds=us)


def timedelta_to_us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


class CandidateKey(NamedTuple):
    """What identifies a candidate (and a queue entry): NULL change_set is ``None``."""

    codebase: str
    campaign: str
    change_set: str | None

    def label(self) -> str:
        suffix = f" [{self.change_set}]" if self.change_set else ""
        return f"{self.codebase}/{self.campaign}{suffix}"


@dataclass(frozen=True, slots=True)
class Codebase:
    name: str
    branch_url: str | None = None
    value: int | None = None


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """One element of ``named_publish_policy.per_branch_policy``."""

    role: str
    #: ``None`` is a NULL mode, which the legacy looks up as ``KeyError(None)``.
    mode: str | None
    frequency_days: int | None = None


@dataclass(frozen=True, slots=True)
class NamedPublishPolicy:
    name: str
    #: ``None`` is SQL NULL, which the legacy cannot iterate (a TypeError).
    per_branch_policy: tuple[PolicyEntry, ...] | None
    rate_limit_bucket: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    codebase: str
    suite: str
    command: str
    change_set: str | None = None
    context: str | None = None
    value: int | None = None
    success_chance: float | None = None
    publish_policy: str | None = None

    @property
    def campaign(self) -> str:
        return self.suite

    @property
    def key(self) -> CandidateKey:
        return CandidateKey(self.codebase, self.suite, self.change_set)


#: A candidate's key fields, in :class:`CandidateKey` order.
_KEY_FIELDS = attrgetter("codebase", "suite", "change_set")


class Run(NamedTuple):
    """A row of ``run``. A NamedTuple rather than a frozen dataclass: equally
    immutable, and five times faster to build, which matters at millions of runs."""

    id: str
    codebase: str
    suite: str
    result_code: str
    start_us: int | None
    finish_us: int | None
    failure_transient: bool | None = None
    instigated_context: str | None = None
    context: str | None = None
    #: The ``failure_details`` JSON value as decoded (``None`` is SQL NULL).
    failure_details: Any = None

    @property
    def campaign(self) -> str:
        return self.suite

    @property
    def duration_us(self) -> int | None:
        if self.start_us is None or self.finish_us is None:
            return None
        return self.finish_us - self.start_us

    @property
    def start_time(self) -> datetime | None:
        return None if self.start_us is None else us_to_datetime(self.start_us)

    @property
    def finish_time(self) -> datetime | None:
        return None if self.finish_us is None else us_to_datetime(self.finish_us)


@dataclass(frozen=True, slots=True)
class DebianVersion:
    """A row of ``all_debian_versions``; ``version`` compares with Debian ordering."""

    source: str
    version: str
    distribution: str | None = None


@dataclass(frozen=True, slots=True)
class QueueItem:
    """A row of the ``queue`` table."""

    id: int
    codebase: str
    suite: str
    command: str | None
    bucket: str = "default"
    priority: int = 0
    context: str | None = None
    estimated_duration_us: int | None = None
    refresh: bool = False
    requester: str | None = None
    change_set: str | None = None
    branch_url: str | None = None

    @property
    def campaign(self) -> str:
        return self.suite

    @property
    def key(self) -> CandidateKey:
        return CandidateKey(self.codebase, self.suite, self.change_set)

    def sort_key(self) -> tuple[int, int, int]:
        """Workers take items ``ORDER BY bucket, priority, id``."""
        return (BUCKET_RANK[self.bucket], self.priority, self.id)


@dataclass(frozen=True)
class Provenance:
    """Where a dataset came from. Never holds a password."""

    source: str
    recorded_at: str | None = None
    filters: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "recorded_at": self.recorded_at,
            "filters": dict(self.filters),
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class Dataset:
    """One consistent, read-only view of everything the scheduler reads, at ``as_of``.

    ``candidate_row_order`` is the order in which the legacy's candidate query
    (no ORDER BY) returned its rows; the legacy's results depend on it. When a
    source cannot know it, it is the candidates that survive the join in id
    order. ``debian_versions`` is ``None`` when the table does not exist.
    ``live_dsn`` is set when the dataset was read from a live database, so
    that engines which query the database themselves can reach it;
    ``live_snapshot`` is the exported snapshot it was read in, while the
    command that read it holds that open: such an engine joins it, so it
    sees the very rows the dataset holds.
    """

    as_of: datetime
    codebases: tuple[Codebase, ...]
    candidates: tuple[Candidate, ...]
    policies: tuple[NamedPublishPolicy, ...]
    runs: tuple[Run, ...]
    debian_versions: tuple[DebianVersion, ...] | None
    queue: tuple[QueueItem, ...] = ()
    candidate_row_order: tuple[CandidateKey, ...] | None = None
    provenance: Provenance = field(default_factory=lambda: Provenance(source="memory"))
    live_dsn: str | None = None
    live_snapshot: str | None = None

    @property
    def as_of_us(self) -> int:
        return datetime_to_us(self.as_of)

    @cached_property
    def codebase_by_name(self) -> Mapping[str, Codebase]:
        return {c.name: c for c in self.codebases}

    @cached_property
    def policy_by_name(self) -> Mapping[str, NamedPublishPolicy]:
        return {p.name: p for p in self.policies}

    @cached_property
    def candidates_by_key(self) -> Mapping[CandidateKey, Candidate]:
        # Candidate.key, built in C: a property call per candidate is a tenth of a second
        keys = map(tuple.__new__, repeat(CandidateKey), map(_KEY_FIELDS, self.candidates))
        return dict(zip(keys, self.candidates, strict=True))

    @cached_property
    def joined_candidates(self) -> tuple[Candidate, ...]:
        """The candidate query's rows, in the order the legacy processed them.

        Rows whose codebase is missing or whose policy is NULL or unknown are
        dropped, as the legacy's inner joins drop them.
        """
        if self.candidate_row_order is not None:
            by_key = self.candidates_by_key
            return tuple(by_key[key] for key in self.candidate_row_order)
        codebases, policies = self.codebase_by_name, self.policy_by_name
        return tuple(
            c
            for c in sorted(self.candidates, key=lambda c: c.id)
            if c.codebase in codebases
            and c.publish_policy is not None
            and c.publish_policy in policies
        )

    @cached_property
    def runs_by_codebase_campaign(self) -> Mapping[tuple[str, str], tuple[Run, ...]]:
        """Runs per (codebase, campaign), newest first, NULL start times first.

        That is PostgreSQL's ``ORDER BY start_time DESC`` (NULLS FIRST is its
        default for DESC); ties keep the input order.
        """
        groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
        for run in self.runs:
            groups[(run.codebase, run.suite)].append(run)
        return {key: tuple(sorted(runs, key=_newest_first)) for key, runs in groups.items()}

    @cached_property
    def debian_versions_by_source(self) -> Mapping[str, tuple[str, ...]] | None:
        if self.debian_versions is None:
            return None
        return versions_by_source(self.debian_versions)

    def counts(self) -> dict[str, int | None]:
        return {
            "codebase": len(self.codebases),
            "candidate": len(self.candidates),
            "named_publish_policy": len(self.policies),
            "run": len(self.runs),
            "all_debian_versions": (
                None if self.debian_versions is None else len(self.debian_versions)
            ),
            "queue": len(self.queue),
        }


def _newest_first(run: Run) -> tuple[int, int]:
    if run.start_us is None:
        return (0, 0)
    return (1, -run.start_us)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An exception the scheduler raised for one candidate.

    ``type`` names the exception as the legacy would raise it (for example
    ``builtins.KeyError``), so that two engines' failures can be compared.
    """

    type: str
    message: str
    phase: str | None = None
    sqlstate: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.phase is not None:
            out["phase"] = self.phase
        if self.sqlstate is not None:
            out["sqlstate"] = self.sqlstate
        return out


@dataclass(frozen=True, slots=True)
class Decision:
    """What an engine decided for one candidate row, and why.

    Numbers are ``None`` where the engine never got that far (an error).
    ``factors`` holds the intermediate quantities behind the numbers (cost,
    worth, multiplier, successes, …) under stable names; ``reasons`` says in
    words which rule or fallback produced each number.
    """

    codebase: str
    campaign: str
    change_set: str | None
    context: str | None = None
    command: str | None = None
    candidate_value: int | None = None
    value: float | None = None
    publish_bonus: float | None = None
    first_run_bonus: float | None = None
    normalized_codebase_value: float | None = None
    success_probability: float | None = None
    estimated_duration_us: int | None = None
    total_previous_runs: int | None = None
    offset: float | None = None
    bucket: str | None = None
    error: ErrorInfo | None = None
    factors: Mapping[str, Any] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()

    @property
    def key(self) -> CandidateKey:
        return CandidateKey(self.codebase, self.campaign, self.change_set)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Schedule:
    """All decisions of one engine run plus the queue they produce.

    ``decisions`` are in processing order; ``queue`` is the whole queue table
    afterwards, in the order workers take it (bucket, priority, id).
    """

    engine: str
    profile: str | None
    settings: Mapping[str, Any]
    as_of: datetime
    decisions: list[Decision]
    queue: list[QueueItem]
    timings: dict[str, float] = field(default_factory=dict)
    provenance: Provenance | None = None
    notes: list[str] = field(default_factory=list)

    @cached_property
    def decision_by_key(self) -> Mapping[CandidateKey, Decision]:
        """Last decision per key: a re-add of the same key overwrote the first."""
        return {d.key: d for d in self.decisions}

    def errors(self) -> list[Decision]:
        return [d for d in self.decisions if d.error is not None]


def versions_by_source(rows: Iterable[DebianVersion]) -> dict[str, tuple[str, ...]]:
    """``all_debian_versions`` grouped by source package, in row order."""
    versions: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        versions[row.source].append(row.version)
    return {source: tuple(v) for source, v in versions.items()}


def sorted_queue(items: Iterable[QueueItem]) -> list[QueueItem]:
    """Items in :meth:`QueueItem.sort_key` order.

    Sorted per bucket with a C-level key: a Python key function per item was
    a noticeable part of a 100,000-candidate run.
    """
    by_bucket: dict[str, list[QueueItem]] = {}
    for item in items:
        by_bucket.setdefault(item.bucket, []).append(item)
    by_priority = attrgetter("priority", "id")
    ordered: list[QueueItem] = []
    for bucket in sorted(by_bucket, key=BUCKET_RANK.__getitem__):
        ordered += sorted(by_bucket[bucket], key=by_priority)
    return ordered
