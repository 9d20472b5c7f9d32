"""The ``memory`` backend: the legacy's database questions answered from a Dataset.

Everything the database would compute is reproduced here: the inner joins,
``ORDER BY start_time DESC`` (NULLs first), ``failure_transient IS NOT TRUE``,
``AVG(interval)`` rounding (:mod:`engines.legacy.pg_interval`) and the
``debversion`` ordering (libapt-pkg's, which the extension uses).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from engines.legacy.core import (
    CandidateRow,
    RereadRow,
    missing_debian_versions_table,
)
from engines.legacy.debversion import compare_versions
from engines.legacy.pg_interval import IntervalSum
from engines.model import Dataset, Run

_COMPARISONS = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    "=": lambda c: c == 0,
    ">=": lambda c: c >= 0,
    ">": lambda c: c > 0,
    "<>": lambda c: c != 0,
    "!=": lambda c: c != 0,
}


def debversion_cmp(left: str, right: str) -> int:
    """Debian version ordering, as the ``debversion`` type compares: libapt-pkg's
    rules, which order every string (a dpkg parser would reject some, and order
    others differently; see :mod:`engines.legacy.debversion`)."""
    return compare_versions(left, right)


class MemoryData:
    """Answers :class:`~engines.legacy.core.LegacyData` from one Dataset."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._policies = dataset.policy_by_name
        self._plain_candidates = {
            (c.codebase, c.suite): c for c in dataset.candidates if not c.change_set
        }
        runs: dict[tuple[str, str], list[Run]] = defaultdict(list)
        for run in dataset.runs:
            if run.failure_transient is not True:
                runs[(run.codebase, run.suite)].append(run)
        for group in runs.values():
            group.sort(key=_newest_first)
        self._runs: Mapping[tuple[str, str], Sequence[Run]] = runs
        self._keys_by_codebase: dict[str, list[tuple[str, str]]] | None = None
        self._avg_codebase: dict[str, int | None] = {}
        self._avg_campaign: dict[str, int | None] = {}

    def candidate_rows(self) -> Sequence[CandidateRow]:
        rows = []
        for c in self.dataset.joined_candidates:
            policy = self._policies[c.publish_policy] if c.publish_policy else None
            rows.append(
                CandidateRow(
                    codebase=c.codebase,
                    campaign=c.suite,
                    change_set=c.change_set,
                    context=c.context,
                    value=c.value,
                    success_chance=c.success_chance,
                    per_branch_policy=None if policy is None else policy.per_branch_policy,
                    command=c.command,
                )
            )
        return rows

    def codebase_values(self) -> Sequence[tuple[str, int | None]]:
        return [(c.name, c.value) for c in self.dataset.codebases]

    def reread_candidate(self, codebase: str, campaign: str) -> RereadRow | None:
        c = self._plain_candidates.get((codebase, campaign))
        if c is None:
            return None
        return RereadRow(c.value, c.success_chance, c.command, c.context)

    def runs(self, codebase: str, campaign: str) -> Sequence[Run]:
        return self._runs.get((codebase, campaign), ())

    def avg_duration_us(
        self, *, codebase: str | None = None, campaign: str | None = None
    ) -> int | None:
        # Computed on demand: only candidates without runs fall back to averages.
        if codebase is not None:
            if codebase not in self._avg_codebase:
                if self._keys_by_codebase is None:
                    self._keys_by_codebase = defaultdict(list)
                    for key in self._runs:
                        self._keys_by_codebase[key[0]].append(key)
                self._avg_codebase[codebase] = _average(
                    self._runs[key] for key in self._keys_by_codebase.get(codebase, ())
                )
            return self._avg_codebase[codebase]
        if campaign is not None:
            if campaign not in self._avg_campaign:
                self._avg_campaign[campaign] = _average(
                    group for key, group in self._runs.items() if key[1] == campaign
                )
            return self._avg_campaign[campaign]
        raise ValueError("avg_duration_us needs a codebase or a campaign")

    def dep_available(self, name: str, version: tuple[str, str] | None) -> bool:
        versions = self.dataset.debian_versions_by_source
        if versions is None:
            raise missing_debian_versions_table()
        candidates = versions.get(name, ())
        if version is None:
            return bool(candidates)
        op, wanted = version
        test = _COMPARISONS[op]
        return any(test(debversion_cmp(have, wanted)) for have in candidates)


def _average(groups: Iterable[Sequence[Run]]) -> int | None:
    total = IntervalSum()
    for group in groups:
        for run in group:
            if run.start_us is not None and run.finish_us is not None:
                total.add_span(run.finish_us, run.start_us)
    return total.average_us()


def _newest_first(run: Run) -> tuple[int, int]:
    return (0, 0) if run.start_us is None else (1, -run.start_us)
