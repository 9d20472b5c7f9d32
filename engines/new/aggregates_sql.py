"""Set-based aggregates from a live PostgreSQL database: a few queries over the whole run table.

The same :class:`~engines.new.aggregates.Aggregates` as the snapshot path,
asked of the server in one READ ONLY REPEATABLE READ transaction, never a
query per candidate. Three scans of ``run`` do it all:

* the *groups* query: one row per (codebase, campaign) with the counts, the
  exact span sums behind the legacy's mean, the interval sums behind the
  AVG fallbacks (added up per codebase and per campaign here, as PostgreSQL
  would), the decayed weights and the spans behind the medians, as the
  configured methods need them;
* the *context* query: the candidates whose context a counted run had;
* the *deps* query: the install-deps failures, newest first, decided in Python.

:func:`start_aggregates` runs them on two more connections that join the
command's snapshot, in threads, while the caller reads the scheduling rows
on its own connection: the server works on the aggregates while Python
builds the candidates.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

from engines.legacy.pg_interval import LazyAverages
from engines.model import US_PER_DAY
from engines.new.aggregates import (
    Aggregates,
    DepsOutcome,
    DepsRun,
    grouped_medians,
    legacy_mean_us,
    mean_if_unambiguous,
)
from engines.new.config import EngineConfig
from engines.new.success import fold_deps, text_verdicts

if TYPE_CHECKING:
    from harness.data.janitor_db import JoinConnection

#: With the default 4 MB, grouping 2,000,000 runs into 100,000 groups spills to
#: disk (or is planned as a sort); for this read-only transaction only.
WORK_MEM_SQL = "SET LOCAL work_mem = '256MB'"
#: Floats (weight and seconds sums) come as text: print them exactly, whatever
#: the server's or role's default.
EXACT_FLOATS_SQL = "SET LOCAL extra_float_digits = 3"

#: For the connections that only run the big scans: no JIT (compiling costs more
#: than it saves on these expressions), no parallel workers (the connections
#: already run side by side, so workers only fight them for the cores), and room
#: for the hash tables of the groups query: the planner guesses 8 kB per group
#: for the spans of the medians (a few hundred bytes in practice) and would
#: otherwise sort two million rows by codebase and campaign instead.
SCAN_SETTINGS_SQL = (
    WORK_MEM_SQL,
    EXACT_FLOATS_SQL,
    "SET LOCAL hash_mem_multiplier = 8",
    "SET LOCAL jit = off",
    # A scan of a big table may otherwise join one already under way (ours on the
    # other connection, or anyone's) and start mid-table: the groups' float sums
    # (decay weights) would then add up in a different order from run to run.
    "SET LOCAL synchronize_seqscans = off",
    "SET LOCAL max_parallel_workers_per_gather = 0",
)


def _exact_us(interval: str) -> str:
    """SQL for an interval in whole microseconds, exact, without numeric arithmetic.

    ``EXTRACT(EPOCH …)`` is a numeric; ``date_part`` a float8 that is within
    far less than half a microsecond of the exact value below 10⁹ seconds
    (31 years), where rounding it gives the exact integer. Beyond, the slow
    exact way.
    """
    return (
        f"CASE WHEN abs(date_part('epoch', {interval})) < 1e9::float8 "
        f"THEN (date_part('epoch', {interval}) * 1e6::float8)::bigint "
        f"ELSE (EXTRACT(EPOCH FROM {interval}) * 1000000)::bigint END"
    )


def _weight(relevant: str) -> str:
    """SQL for the decay weight of a relevant run, bit for bit the float8 of

    ``power(0.5, EXTRACT(EPOCH FROM as_of - start_time)::float8 / 86400.0 /
    half_life)``: the exact microseconds divided by 10⁶ as doubles round the
    same way as the exact numeric seconds converted to a double.
    """
    age = "%(as_of)s - start_time"
    seconds = (
        f"CASE WHEN abs(date_part('epoch', {age})) < 1e9::float8 "
        f"THEN (date_part('epoch', {age}) * 1e6::float8)::bigint::float8 / 1000000::float8 "
        f"ELSE (EXTRACT(EPOCH FROM {age}))::float8 END"
    )
    return (
        f"CASE WHEN {relevant} THEN power(0.5::float8, ({seconds}) / 86400.0 / %(half_life)s) END"
    )


#: The plan's relevant runs (given a counted run): with a start time, not a
#: transient result code, inside the window.
_RELEVANT = """start_time IS NOT NULL
              AND NOT (result_code = ANY(%(transient_codes)s))
              AND (%(window_start)s::timestamp IS NULL OR start_time >= %(window_start)s)"""

#: Every flag the groups query filters on, computed once per run (OFFSET 0 keeps
#: the planner from pasting the expressions into each aggregate).
_RUN_FLAGS_SQL = f"""
SELECT codebase, suite, start_time,
       NOT (result_code = 'worker-failure'
            AND (start_time IS NULL OR start_time <= %(cutoff)s)) AS counted,
       result_code = 'success' AS success,
       {_exact_us("finish_time - start_time")} AS span_us,
       result_code = 'worker-failure' AND start_time IS NULL AS wf_null,
       NOT (result_code = 'install-deps-unsatisfied-dependencies'
            AND failure_details IS NOT NULL) AS plain,
       NOT (result_code = 'worker-failure' AND start_time <= %(cutoff)s)
           AND {_RELEVANT} AS relevant
FROM run
WHERE failure_transient IS NOT TRUE
OFFSET 0
"""

#: (name, SQL) of the groups query's columns, by what needs them.
_COUNT_COLUMNS = (
    ("total", "count(*) FILTER (WHERE counted)"),
    ("successes", "count(*) FILTER (WHERE counted AND success)"),
    ("ignored", "count(*) FILTER (WHERE NOT counted AND start_time IS NOT NULL)"),
    ("timed", "count(span_us) FILTER (WHERE counted)"),
    ("wf_null", "bool_or(wf_null)"),
)
#: The legacy-mean method: the exact span sums behind the mean, and
#: AVG(finish_time - start_time) of all non-transient runs (the fallbacks): the
#: interval's (days, µs) fields summed separately, as PostgreSQL's AVG does.
_MEAN_COLUMNS = (
    ("span_sum", "sum(span_us) FILTER (WHERE counted)"),
    ("span_abs", "sum(abs(span_us)) FILTER (WHERE counted)"),
    ("all_timed", "count(span_us)"),
    ("all_span_sum", "sum(span_us)"),
    ("all_days", "sum(span_us / 86400000000)"),
)
_DECAYED_COLUMNS = (
    ("weight_sum", "sum(weight) FILTER (WHERE plain)"),
    ("weighted_successes", "sum(weight) FILTER (WHERE success)"),
)
#: The relevant timed spans, as big-endian int64s (numpy reads them at once).
_MEDIAN_COLUMNS = (
    (
        "spans",
        "string_agg(int8send(span_us), ''::bytea) FILTER (WHERE relevant AND span_us IS NOT NULL)",
    ),
)


def _groups_sql(columns: Iterable[tuple[str, str]], decayed: bool) -> str:
    rows = _RUN_FLAGS_SQL
    if decayed:
        rows = f"SELECT *, {_weight('relevant')} AS weight FROM ({rows}) f OFFSET 0"
    select = ",\n       ".join(f"{sql} AS {name}" for name, sql in columns)
    return f"SELECT codebase, suite,\n       {select}\nFROM ({rows}) r\nGROUP BY codebase, suite"


#: The legacy's float sum of the seconds, newest first, for the groups whose mean
#: it decides (float8 ``sum`` adds in the aggregate's order, as the legacy's loop;
#: the index on (codebase, suite, start_time DESC) hands each group over in order).
_ORDERED_SECONDS_SQL = """
SELECT g.codebase, g.suite, s.seconds, s.n
FROM unnest(%(codebases)s::text[], %(suites)s::text[]) AS g (codebase, suite)
CROSS JOIN LATERAL (
    SELECT sum((EXTRACT(EPOCH FROM r.finish_time - r.start_time) * 1000000)::bigint::float8
               / 1000000::float8 ORDER BY r.start_time DESC) AS seconds,
           count(*) AS n
    FROM run r
    WHERE r.codebase = g.codebase AND r.suite = g.suite
      AND r.failure_transient IS NOT TRUE
      AND r.start_time IS NOT NULL AND r.finish_time IS NOT NULL
      AND NOT (r.result_code = 'worker-failure' AND r.start_time <= %(cutoff)s)
) s
"""

#: Newest first (NULL start times first, as PostgreSQL's DESC); grouped in Python,
#: which keeps that order within each group.
_DEPS_SQL = """
SELECT codebase, suite, instigated_context, context, failure_details::text, {weight}
FROM run
WHERE failure_transient IS NOT TRUE
  AND result_code = 'install-deps-unsatisfied-dependencies'
  AND failure_details IS NOT NULL
ORDER BY start_time DESC NULLS FIRST
"""

#: Candidates whose context a counted run of their codebase and campaign had
#: (instigated or final), install-deps failures with details excepted (Python
#: decides those). Candidates are few: they are hashed and the runs probe them.
_CONTEXT_SQL = """
SELECT c.codebase, c.suite, c.context
FROM run r
JOIN candidate c ON c.codebase = r.codebase AND c.suite = r.suite
WHERE r.failure_transient IS NOT TRUE
  AND NOT (r.result_code = 'worker-failure'
           AND (r.start_time IS NULL OR r.start_time <= %(cutoff)s))
  AND NOT (r.result_code = 'install-deps-unsatisfied-dependencies'
           AND r.failure_details IS NOT NULL)
  AND c.context <> ''
  AND (c.context = r.instigated_context OR c.context = r.context)
GROUP BY c.id
"""


def _query_params(config: EngineConfig, as_of: datetime) -> dict[str, Any]:
    est = config.success_estimation
    window = est.historical_data_window_days
    return {
        "as_of": as_of,
        "cutoff": as_of - timedelta(days=est.ignore_worker_failures_older_than_days),
        "transient_codes": list(est.transient_result_codes),
        "window_start": None if window is None else as_of - timedelta(days=window),
        "half_life": est.half_life_days,
    }


@dataclass
class _Plan:
    """What to ask for, from the configured methods."""

    params: dict[str, Any]
    decayed: bool
    median: bool
    columns: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def of(cls, config: EngineConfig, as_of: datetime) -> _Plan:
        decayed = config.success_estimation.method == "decayed"
        median = config.duration_estimation.method == "median"
        columns = _COUNT_COLUMNS + (_MEDIAN_COLUMNS if median else _MEAN_COLUMNS)
        if decayed:
            columns += _DECAYED_COLUMNS
        return cls(_query_params(config, as_of), decayed, median, columns)

    def groups(self, c: Any) -> _Groups:
        cur = c.execute(_groups_sql(self.columns, self.decayed), self.params)
        names = [name for name, _ in self.columns]
        return _Groups.from_rows(cur.fetchall(), names)

    def contexts(self, c: Any) -> list[tuple[str, str, str]]:
        return c.execute(_CONTEXT_SQL, self.params).fetchall()

    def deps(self, c: Any) -> dict[tuple[str, str], list[DepsRun]]:
        weight = _weight(f"{_RELEVANT}") if self.decayed else "0.0::float8"
        cur = c.execute(_DEPS_SQL.format(weight=f"coalesce({weight}, 0.0::float8)"), self.params)
        runs: dict[tuple[str, str], list[DepsRun]] = defaultdict(list)
        for codebase, suite, ictx, ctx, text, w in cur:
            runs[(codebase, suite)].append(DepsRun(ictx, ctx, None, w, text))
        return runs


@dataclass
class _Groups:
    """The groups query's rows, as columns."""

    keys: list[tuple[str, str]]
    columns: dict[str, list[Any]]

    @classmethod
    def from_rows(cls, rows: list[tuple[Any, ...]], names: list[str]) -> _Groups:
        if not rows:
            return cls([], {name: [] for name in names})
        transposed = list(zip(*rows, strict=True))
        keys = list(zip(transposed[0], transposed[1], strict=True))
        return cls(keys, {name: list(transposed[i + 2]) for i, name in enumerate(names)})


def _fill_means(agg: Aggregates, groups: _Groups, plan: _Plan) -> list[tuple[str, str]]:
    """Index the groups and their means; return the groups whose mean needs the ordered sum."""
    col = groups.columns
    n = len(groups.keys)
    agg.group_index = {key: g for g, key in enumerate(groups.keys)}
    agg.timed = col["timed"]
    agg.seconds_sum = [0.0] * n
    ambiguous: list[tuple[str, str]] = []
    if plan.median:  # the median method never reads the mean
        agg._means = dict.fromkeys(range(n))
        return ambiguous
    means = agg._means
    for g, (timed, span_sum, span_abs) in enumerate(
        zip(col["timed"], col["span_sum"], col["span_abs"], strict=True)
    ):
        if timed:
            mean = mean_if_unambiguous(int(span_sum), int(span_abs), timed)
            if mean is None:
                ambiguous.append(groups.keys[g])
            else:
                means[g] = mean
    return ambiguous


def _fill(agg: Aggregates, groups: _Groups, plan: _Plan) -> None:
    """Copy the rest of the groups' figures into ``agg``."""
    col = groups.columns
    n = len(groups.keys)
    agg.total = col["total"]
    agg.successes = col["successes"]
    agg.ignored = col["ignored"]
    problems: list[str | None] = [None] * n
    # a counted run without both times (span_us is NULL then): fewer timed than counted
    for g, (total, timed, wf_null) in enumerate(
        zip(col["total"], col["timed"], col["wf_null"], strict=True)
    ):
        if wf_null:
            problems[g] = "TypeError: a worker failure has a NULL start time"
        elif total > timed:
            problems[g] = "AttributeError: a counted run has a NULL start or finish time"
    agg.legacy_time_problem = problems
    if plan.decayed:
        agg.weight_sum = [w or 0.0 for w in col["weight_sum"]]
        agg.weighted_successes = [w or 0.0 for w in col["weighted_successes"]]
    else:  # not read by the legacy formula
        agg.weight_sum = [0.0] * n
        agg.weighted_successes = [0.0] * n
    if plan.median:
        _fill_medians(agg, groups)
    else:
        agg.median_us, agg.median_n = [None] * n, [0] * n
        _fill_averages(agg, groups)


def _fill_averages(agg: Aggregates, groups: _Groups) -> None:
    """PostgreSQL's ``AVG(finish_time - start_time)`` per codebase and per campaign.

    The groups partition each codebase's (and each campaign's) runs, and AVG
    sums the interval's fields exactly before dividing once: adding up the
    groups' field sums gives the server's own sums.
    """
    col = groups.columns
    by_codebase: dict[str, list[int]] = {}
    by_campaign: dict[str, list[int]] = {}
    for (codebase, campaign), count, span_sum, days in zip(
        groups.keys, col["all_timed"], col["all_span_sum"], col["all_days"], strict=True
    ):
        span = 0 if span_sum is None else int(span_sum)
        day = 0 if days is None else int(days)
        for table, name in ((by_codebase, codebase), (by_campaign, campaign)):
            sums = table.get(name)
            if sums is None:
                table[name] = [count, span, day]
            else:
                sums[0] += count
                sums[1] += span
                sums[2] += day
    agg.codebase_avg_us = _averages(by_codebase)
    agg.campaign_avg_us = _averages(by_campaign)


def _averages(sums: dict[str, list[int]]) -> LazyAverages:
    def fields(name: str) -> tuple[int, int, int]:
        count, span, days = sums[name]  # KeyError: no runs at all
        return days, span - days * US_PER_DAY, count

    return LazyAverages(sums, fields)


def _fill_medians(agg: Aggregates, groups: _Groups) -> None:
    """sorted(spans)[n // 2] per group and per codebase, from the groups' packed spans."""
    blobs = groups.columns["spans"]
    counts = np.fromiter((0 if b is None else len(b) // 8 for b in blobs), np.int64, len(blobs))
    values = np.frombuffer(b"".join(b for b in blobs if b is not None), dtype=">i8").astype(
        np.int64
    )
    n = len(blobs)
    gid = np.repeat(np.arange(n, dtype=np.int64), counts)
    agg.median_us, agg.median_n = grouped_medians(gid, values, counts)
    names: dict[str, int] = {}
    cb_of_group = np.fromiter(
        (names.setdefault(codebase, len(names)) for codebase, _ in groups.keys), np.int64, n
    )
    cb_counts = np.bincount(cb_of_group, weights=counts, minlength=len(names)).astype(np.int64)
    medians, cb_n = grouped_medians(cb_of_group[gid], values, cb_counts)
    agg.codebase_median_us = {name: medians[i] for name, i in names.items() if cb_n[i]}
    agg.codebase_median_n = {name: cb_n[i] for name, i in names.items() if cb_n[i]}


class PendingAggregates:
    """The aggregate queries under way; :meth:`result` waits for them and assembles.

    The scans run on two connections ``join`` opens on the command's
    snapshot; ``conn`` (the command's own) asks the last, small query (the
    ordered sums of the few means a float tie leaves open).
    """

    def __init__(
        self, conn: Any, config: EngineConfig, as_of: datetime, join: JoinConnection
    ) -> None:
        self.conn = conn
        self.plan = _Plan.of(config, as_of)
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[Any]] = []
        self._others: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        #: failure_details text → verdict, when worked out beside the queries.
        self.verdicts: dict[str, tuple[bool, str | None]] | None = None
        #: The install-deps failures walked with them, by (codebase, campaign).
        self.folded: dict[tuple[str, str], tuple[DepsOutcome, set[str | None]]] = {}
        self._count_satisfied = config.success_estimation.count_satisfied_dependencies_as_success
        conn.execute(WORK_MEM_SQL)
        conn.execute(EXACT_FLOATS_SQL)
        self._pool = ThreadPoolExecutor(3, thread_name_prefix="aggregates")
        plan = self.plan
        self._futures = [
            self._pool.submit(self._on_snapshot, join, plan.groups),
            self._pool.submit(self._on_snapshot, join, self._others_and_verdicts),
        ]

    def _others_and_verdicts(self, c: Any) -> tuple[list[Any], Any, Any]:
        """The other queries, and the install-deps verdicts the engine would
        otherwise work out as it decides, with each group's failures walked
        with them: those are Python's work, done in a third thread while the
        server answers the context query (and the groups query)."""
        deps = self.plan.deps(c)
        debian = fetch_debian_versions(c, _relation_names(deps))
        assert self._pool is not None
        walking = self._pool.submit(self._walk_deps, deps, debian)
        contexts = self.plan.contexts(c)
        walking.result()
        return contexts, deps, debian

    def _walk_deps(self, deps: dict[tuple[str, str], list[DepsRun]], debian: Any) -> None:
        self.verdicts = text_verdicts(
            (run.text for runs in deps.values() for run in runs if run.text is not None), debian
        )
        self.folded = fold_deps(deps, self.verdicts, self._count_satisfied)

    def _on_snapshot(self, join: JoinConnection, work: Callable[[Any], Any]) -> Any:
        """Run ``work`` on another connection of the command's snapshot (same data as ``conn``)."""
        with join() as other:
            with self._lock:
                self._others.append(other)
                closed = self._closed
            if closed:
                raise RuntimeError("the aggregate queries were stopped")
            for setting in SCAN_SETTINGS_SQL:
                other.execute(setting)
            return work(other)

    def result(self, contexts: Collection[str] | None = None) -> Aggregates:
        """Wait for the queries and turn their rows into :class:`Aggregates`.

        ``contexts``: the candidates' contexts, if known; only those of the
        walked install-deps failures are then kept as context hits.
        """
        plan, pool = self.plan, self._pool
        if pool is None:
            raise RuntimeError("the aggregate queries were stopped")
        groups = self._futures[0].result()
        context_rows, deps, debian = self._futures[1].result()
        agg = Aggregates(origin="database")
        ambiguous = _fill_means(agg, groups, plan)
        ordered: Future[None] | None = None
        if ambiguous:  # on the server while the rest is copied
            ordered = pool.submit(_ordered_means, self.conn, agg, ambiguous, plan.params)
        _fill(agg, groups, plan)
        index = agg.group_index
        walked: list[tuple[int, str]] = []
        for key, runs in deps.items():
            found = index.get(key)
            if found is None:
                continue
            folded = self.folded.get(key)
            if folded is None:
                agg.deps_runs[found] = runs
                continue
            agg.deps_outcomes[found], seen = folded
            walked.extend(
                (found, ctx) for ctx in seen if ctx and (contexts is None or ctx in contexts)
            )
        agg.set_context_hits(
            chain(
                (
                    (g, ctx)
                    for codebase, suite, ctx in context_rows
                    if (g := index.get((codebase, suite))) is not None
                ),
                walked,
            )
        )
        agg.debian_versions = debian
        if ordered is not None:
            ordered.result()
        self.close()
        return agg

    def close(self) -> None:
        """Stop the queries still running (after an error) and wait for the threads."""
        if self._pool is None:
            return
        with self._lock:
            self._closed = True
            others = list(self._others)
        if not all(f.done() for f in self._futures):
            for other in others:
                with contextlib.suppress(Exception):  # best effort: the thread ends anyway
                    other.cancel_safe()
        self._pool.shutdown(wait=True)
        self._pool = None


def _ordered_means(
    conn: Any, agg: Aggregates, ambiguous: list[tuple[str, str]], params: dict[str, Any]
) -> None:
    """The exact sum sits (almost) on a half microsecond: only the legacy's own

    float summation, newest first, says which way it rounds.
    """
    rows = conn.execute(
        _ORDERED_SECONDS_SQL,
        {
            **params,
            "codebases": [k[0] for k in ambiguous],
            "suites": [k[1] for k in ambiguous],
        },
    )
    for codebase, suite, seconds, count in rows:
        if count:
            agg._means[agg.group_index[(codebase, suite)]] = legacy_mean_us(seconds, count)


def start_aggregates(
    conn: Any, config: EngineConfig, as_of: datetime, join: JoinConnection
) -> PendingAggregates:
    """Start the aggregate queries, which run while the caller goes on.

    ``conn`` is a psycopg connection inside the command's READ ONLY
    REPEATABLE READ transaction (:mod:`harness.data.janitor_db`); ``join`` opens
    the other connections on its snapshot (``session.joined``), so every
    query sees the same data. The caller may use ``conn`` until it calls
    :meth:`PendingAggregates.result` (and must call
    :meth:`PendingAggregates.close` if it gives up before).
    """
    return PendingAggregates(conn, config, as_of, join)


#: A ``"name": "…"`` member in JSON text without any backslash escape.
_NAME_MEMBER = re.compile(r'"name"\s*:\s*"([^"]*)"')


def _relation_names(deps_runs: Mapping[Any, list[DepsRun]]) -> set[str]:
    """The package names the runs' relations may ask about (a superset is fine).

    They only select the ``all_debian_versions`` rows to read. JSON text
    without backslashes cannot hide a ``"name"`` key or a quote in a string,
    so one regular expression over all of it finds every relation's name
    (and maybe a few other names); anything else is decoded and walked.
    """
    names: set[str] = set()
    plain: set[str] = set()
    for runs in deps_runs.values():
        for run in runs:
            text = run.text
            if text is not None and "\\" not in text:
                plain.add(text)
            else:
                _add_names(run.failure_details, names)
    names.update(_NAME_MEMBER.findall("\n".join(plain)))
    return names


def _add_names(details: Any, names: set[str]) -> None:
    if not isinstance(details, dict):
        return
    relations = details.get("relations")
    if not isinstance(relations, list):
        return
    for alternatives in relations:
        if isinstance(alternatives, list):
            for entry in alternatives:
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    names.add(entry["name"])


def fetch_debian_versions(conn: Any, names: Iterable[str]) -> dict[str, tuple[str, ...]] | None:
    """``all_debian_versions`` rows for ``names``; ``None`` when the table does not exist."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('all_debian_versions') IS NOT NULL")
        row = cur.fetchone()
        if not row or not row[0]:
            return None
        cur.execute(
            "SELECT source, version::text FROM all_debian_versions WHERE source = ANY(%s)",
            (sorted(names),),
        )
        versions: dict[str, list[str]] = defaultdict(list)
        for source, version in cur:
            versions[source].append(version)
    return {source: tuple(v) for source, v in versions.items()}
