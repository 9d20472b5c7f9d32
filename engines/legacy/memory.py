"""The ``memory`` backend: the legacy's database questions answered from a Dataset.

Everything the database would compute is reproduced here: the inner joins,
``ORDER BY start_time DESC`` (NULLs first), ``failure_transient IS NOT TRUE``,
``AVG(interval)`` rounding (:mod:`engines.legacy.pg_interval`) and the
``debversion`` ordering (libapt-pkg's, which the extension uses).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from operator import itemgetter

from engines.legacy.core import (
    CandidateRow,
    Estimate,
    EstimateKey,
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


class RunIndex:
    """What the legacy's run queries read, grouped once per run table.

    It depends on the runs alone, so the noise reruns of a comparison (the
    same runs, the candidate rows in another order) share one index instead
    of grouping two million runs again; see :func:`run_index`. The per-candidate
    estimates made from it are kept here too (:meth:`estimates`): they do not
    depend on the row order either, and are most of a run's work."""

    def __init__(self, runs: Sequence[Run]) -> None:
        grouped: dict[tuple[str, str], list[Run]] = defaultdict(list)
        for run in runs:
            if run.failure_transient is not True:
                grouped[(run.codebase, run.suite)].append(run)
        for group in grouped.values():
            if len(group) > 1:
                _newest_first(group)
        self.groups: Mapping[tuple[str, str], Sequence[Run]] = grouped
        self._keys_by_codebase: dict[str, list[tuple[str, str]]] | None = None
        self._avg_codebase: dict[str, int | None] = {}
        self._avg_campaign: dict[str, int | None] = {}
        self._estimates: dict[EstimateKey, Estimate] = {}
        self._estimates_versions: object = None

    def estimates(self, debian_versions: object) -> dict[EstimateKey, Estimate]:
        """The estimates computed on these runs with these Debian versions
        (``all_debian_versions``' rows, by identity; other versions start afresh)."""
        if debian_versions is not self._estimates_versions:
            self._estimates, self._estimates_versions = {}, debian_versions
        return self._estimates

    def avg_duration_us(
        self, *, codebase: str | None = None, campaign: str | None = None
    ) -> int | None:
        # Computed on demand: only candidates without runs fall back to averages.
        if codebase is not None:
            if codebase not in self._avg_codebase:
                if self._keys_by_codebase is None:
                    self._keys_by_codebase = defaultdict(list)
                    for key in self.groups:
                        self._keys_by_codebase[key[0]].append(key)
                self._avg_codebase[codebase] = _average(
                    self.groups[key] for key in self._keys_by_codebase.get(codebase, ())
                )
            return self._avg_codebase[codebase]
        if campaign is not None:
            if campaign not in self._avg_campaign:
                self._avg_campaign[campaign] = _average(
                    group for key, group in self.groups.items() if key[1] == campaign
                )
            return self._avg_campaign[campaign]
        raise ValueError("avg_duration_us needs a codebase or a campaign")


#: The last run table indexed and its index: one entry, so a long-running
#: process holds at most one index beside the dataset it is working on.
_last_index: tuple[Sequence[Run], RunIndex] | None = None


def run_index(runs: Sequence[Run]) -> RunIndex:
    """The index of ``runs``, reused while the same (immutable) run table comes back."""
    global _last_index
    if _last_index is not None and _last_index[0] is runs and isinstance(runs, tuple):
        return _last_index[1]
    index = RunIndex(runs)
    _last_index = (runs, index)
    return index


def forget_run_index() -> None:
    """Drop the kept index and its run table: a long-running service calls it
    between cycles, so that one cycle's runs are not held while the next is read."""
    global _last_index
    _last_index = None


class MemoryData:
    """Answers :class:`~engines.legacy.core.LegacyData` from one Dataset."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._policies = dataset.policy_by_name
        self._plain_candidates = {
            (c.codebase, c.suite): c for c in dataset.candidates if not c.change_set
        }
        self._index = run_index(dataset.runs)
        self._runs = self._index.groups

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
        return self._index.avg_duration_us(codebase=codebase, campaign=campaign)

    def known_estimates(self) -> MutableMapping[EstimateKey, Estimate]:
        # kept with the run index: the noise reruns only redo what row order changes
        return self._index.estimates(self.dataset.debian_versions)

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
    # Run fields 4 and 5: start_us and finish_us
    total.add_spans(
        [
            run[5] - run[4]
            for group in groups
            for run in group
            if run[4] is not None and run[5] is not None
        ]
    )
    return total.average_us()


_start_us = itemgetter(4)  # Run.start_us, read by C


def _newest_first(group: list[Run]) -> None:
    """``ORDER BY start_time DESC``: NULLs first, ties in table order (the sort
    is stable, with ``reverse`` too), without a Python key per run."""
    if None in map(_start_us, group):
        undated = [run for run in group if run.start_us is None]
        dated = [run for run in group if run.start_us is not None]
        dated.sort(key=_start_us, reverse=True)
        group[:] = undated + dated
    else:
        group.sort(key=_start_us, reverse=True)
