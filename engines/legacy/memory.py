"""The ``memory`` backend: the legacy's database questions answered from a Dataset.

Everything the database would compute is reproduced here: the inner joins,
``ORDER BY start_time DESC`` (NULLs first), ``failure_transient IS NOT TRUE``,
``AVG(interval)`` rounding (:mod:`engines.legacy.pg_interval`) and the
``debversion`` ordering (libapt-pkg's, which the extension uses).
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engines.grouping import group_order, newest_first, run_starts
from engines.legacy.core import (
    CandidateRow,
    Estimate,
    EstimateKey,
    RereadRow,
    missing_debian_versions_table,
)
from engines.legacy.debversion import compare_versions
from engines.legacy.pg_interval import IntervalSum, codebase_and_campaign_averages
from engines.model import Dataset, Run

#: A codebase's or campaign's ``AVG(finish_time - start_time)`` in µs, by name.
Averages = Mapping[str, int | None]

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
        self.groups: Mapping[tuple[str, str], Sequence[Run]]
        averages: tuple[Averages, Averages]
        by_columns = _index_by_columns(runs)
        if by_columns is None:
            self.groups = _group_in_python(runs)
            averages = _averages_run_by_run(self.groups)
        else:
            self.groups, averages = by_columns
        self._avg_codebase, self._avg_campaign = averages
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
        if codebase is not None:
            return self._avg_codebase.get(codebase)
        if campaign is not None:
            return self._avg_campaign.get(campaign)
        raise ValueError("avg_duration_us needs a codebase or a campaign")


def _group_in_python(runs: Sequence[Run]) -> dict[tuple[str, str], list[Run]]:
    """The counted runs by (codebase, campaign), newest first."""
    grouped: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        if run.failure_transient is not True:
            grouped[(run.codebase, run.suite)].append(run)
    for group in grouped.values():
        if len(group) > 1:
            _newest_first(group)
    return dict(grouped)


class _Codes(dict[Any, int]):
    """Value → its number, in order of first appearance."""

    def __missing__(self, value: Any) -> int:
        code = self[value] = len(self)
        return code


#: Time columns beyond this would let a span or a negation overflow int64.
_TIME_BOUND = 2**62


def _time_columns(runs: Sequence[Run]) -> tuple[pa.Array, pa.Array] | None:
    """The runs' start and finish times as int64 columns; ``None`` when a time is
    not an integer, or so large that a span or a negation could overflow."""
    try:
        start = pa.array(list(map(_start_us, runs)), pa.int64())
        finish = pa.array(list(map(_finish_us, runs)), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    for times in (start, finish):
        extremes = pc.min_max(times).as_py()
        if extremes["min"] is not None and not (
            -_TIME_BOUND < extremes["min"] <= extremes["max"] < _TIME_BOUND
        ):
            return None
    return start, finish


def _index_by_columns(
    runs: Sequence[Run],
) -> tuple[dict[tuple[str, str], list[Run]], tuple[Averages, Averages]] | None:
    """:func:`_group_in_python`'s groups (same order, same lists) and
    every codebase's and campaign's AVG, sorted and summed by numpy on the
    runs' columns: a Python sort per group and a second pass over every run
    cost several times more at two million runs. ``None`` when a time is not
    an integer that fits the columns (the run-by-run code then decides).
    """
    n = len(runs)
    times = _time_columns(runs) if n else None
    if times is None:
        return None
    start, finish = times
    start_null = start.is_null().to_numpy(zero_copy_only=False)
    finish_null = finish.is_null().to_numpy(zero_copy_only=False)
    start_us, finish_us = start.fill_null(0).to_numpy(), finish.fill_null(0).to_numpy()
    # failure_transient IS NOT TRUE
    kept = ~np.fromiter(map(operator.is_, map(_transient, runs), repeat(True)), np.bool_, n)
    codebase_codes, campaign_codes = _Codes(), _Codes()
    codebase = np.fromiter(map(codebase_codes.__getitem__, map(_codebase, runs)), np.int64, n)
    campaign = np.fromiter(map(campaign_codes.__getitem__, map(_campaign, runs)), np.int64, n)
    codebase_names, campaign_names = list(codebase_codes), list(campaign_codes)
    width = max(len(campaign_names), 1)
    key = codebase * width + campaign

    rows = np.flatnonzero(kept)
    rows = rows[group_order(key[rows], newest_first(start_us[rows], start_null[rows]))]
    groups: dict[tuple[str, str], list[Run]] = {}
    if len(rows):
        ordered = list(map(runs.__getitem__, rows.tolist()))
        key_sorted = key[rows]
        begins = np.flatnonzero(run_starts(key_sorted))
        bounds = np.append(begins, len(rows)).tolist()
        group_keys = key_sorted[begins].tolist()
        # in order of their first counted run, as the run-by-run dict has them
        for g in np.argsort(np.minimum.reduceat(rows, begins)).tolist():
            pair = (codebase_names[group_keys[g] // width], campaign_names[group_keys[g] % width])
            groups[pair] = ordered[bounds[g] : bounds[g + 1]]

    averages = codebase_and_campaign_averages(
        finish_us - start_us,
        kept & ~start_null & ~finish_null,
        codebase,
        campaign,
        codebase_names,
        campaign_names,
    )
    return groups, averages


def _averages_run_by_run(
    groups: Mapping[tuple[str, str], Sequence[Run]],
) -> tuple[dict[str, int | None], dict[str, int | None]]:
    """Every codebase's and campaign's AVG, summed run by run in Python integers:
    for times that do not fit a column (:func:`_index_by_columns`)."""
    averages: tuple[dict[str, int | None], dict[str, int | None]] = ({}, {})
    for field, by_name in enumerate(averages):
        members: dict[str, list[Sequence[Run]]] = defaultdict(list)
        for pair, runs in groups.items():
            members[pair[field]].append(runs)
        by_name.update((name, _average(runs)) for name, runs in members.items())
    return averages


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
        self._dep_answers: dict[tuple[str, tuple[str, str] | None], bool] = {}

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
        # The same relations recur across thousands of install-deps failures, and
        # each answer depends only on the name, the constraint and this dataset's
        # Debian versions; an answer that raised is not kept, so it raises again.
        key = (name, version)
        try:
            return self._dep_answers[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable name: asked as it is
            return self._dep_available(name, version)
        answer = self._dep_answers[key] = self._dep_available(name, version)
        return answer

    def _dep_available(self, name: str, version: tuple[str, str] | None) -> bool:
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


# Run fields read by C
_codebase, _campaign, _start_us, _finish_us = (
    itemgetter(1),
    itemgetter(2),
    itemgetter(4),
    itemgetter(5),
)
_transient = itemgetter(6)


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
