"""Set-based aggregates from a live PostgreSQL database: a few queries over the whole run table.

The same :class:`~engines.new.aggregates.Aggregates` as the snapshot path,
asked of the server in one READ ONLY REPEATABLE READ transaction (optionally
shared by a second connection through an exported snapshot), never a query
per candidate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from engines.model import timedelta_to_us
from engines.new.aggregates import (
    Aggregates,
    DepsRun,
    legacy_mean_us,
    mean_if_unambiguous,
)
from engines.new.config import EngineConfig

#: With the default 4 MB, grouping 2,000,000 runs into 100,000 groups spills to
#: disk (or is planned as a sort); for this read-only transaction only.
WORK_MEM_SQL = "SET LOCAL work_mem = '256MB'"

_GROUPS_SQL = """
WITH r AS (
    SELECT codebase, suite, result_code, start_time, finish_time,
           NOT (result_code = 'worker-failure'
                AND (start_time IS NULL OR start_time <= %(cutoff)s)) AS counted,
           (finish_time IS NOT NULL AND start_time IS NOT NULL) AS has_times,
           (EXTRACT(EPOCH FROM finish_time - start_time) * 1000000)::bigint AS span_us,
           result_code = 'worker-failure' AND start_time IS NULL AS wf_null,
           failure_details IS NOT NULL AS has_details
    FROM run
    WHERE failure_transient IS NOT TRUE {part}
), rel AS (
    SELECT *, counted AND start_time IS NOT NULL
              AND NOT (result_code = ANY(%(transient_codes)s))
              AND (%(window_start)s::timestamp IS NULL OR start_time >= %(window_start)s)
              AS relevant,
              result_code = 'install-deps-unsatisfied-dependencies' AS deps
    FROM r
)
SELECT codebase, suite,
       count(*) FILTER (WHERE counted) AS total,
       count(*) FILTER (WHERE counted AND result_code = 'success') AS successes,
       count(*) FILTER (WHERE counted AND has_times) AS timed,
       sum(span_us) FILTER (WHERE counted AND has_times) AS span_sum,
       sum(abs(span_us)) FILTER (WHERE counted AND has_times) AS span_abs,
       bool_or(counted AND NOT has_times) AS untimed,
       bool_or(wf_null) AS wf_null,
       count(*) FILTER (WHERE relevant) AS relevant,
       sum(power(0.5::float8, (EXTRACT(EPOCH FROM %(as_of)s - start_time))::float8
                 / 86400.0 / %(half_life)s))
           FILTER (WHERE relevant AND NOT (deps AND has_details)) AS weight_sum,
       sum(power(0.5::float8, (EXTRACT(EPOCH FROM %(as_of)s - start_time))::float8
                 / 86400.0 / %(half_life)s))
           FILTER (WHERE relevant AND result_code = 'success') AS weighted_successes,
       {median}
FROM rel
GROUP BY codebase, suite
"""

_ORDERED_SPANS_SQL = """
SELECT r.codebase, r.suite, (EXTRACT(EPOCH FROM r.finish_time - r.start_time) * 1000000)::bigint
FROM run r
JOIN unnest(%(codebases)s::text[], %(suites)s::text[]) AS g (codebase, suite)
  ON r.codebase = g.codebase AND r.suite = g.suite
WHERE r.failure_transient IS NOT TRUE
  AND r.start_time IS NOT NULL AND r.finish_time IS NOT NULL
  AND NOT (r.result_code = 'worker-failure' AND r.start_time <= %(cutoff)s)
ORDER BY r.codebase, r.suite, r.start_time DESC
"""

_MEDIAN_SQL = """(array_agg(span_us ORDER BY span_us) FILTER (WHERE relevant AND has_times))
           [count(*) FILTER (WHERE relevant AND has_times) / 2 + 1] AS median_us,
       count(*) FILTER (WHERE relevant AND has_times) AS median_n"""

_NO_MEDIAN_SQL = "NULL::bigint AS median_us, 0::bigint AS median_n"

_DEPS_SQL = """
SELECT codebase, suite, instigated_context, context, failure_details::text,
       CASE WHEN start_time IS NOT NULL
                 AND NOT (result_code = ANY(%(transient_codes)s))
                 AND (%(window_start)s::timestamp IS NULL OR start_time >= %(window_start)s)
            THEN power(0.5::float8, (EXTRACT(EPOCH FROM %(as_of)s - start_time))::float8
                       / 86400.0 / %(half_life)s)
            ELSE 0.0 END
FROM run
WHERE failure_transient IS NOT TRUE
  AND result_code = 'install-deps-unsatisfied-dependencies'
  AND failure_details IS NOT NULL
ORDER BY codebase, suite, start_time DESC NULLS FIRST
"""

_CONTEXT_SQL = """
SELECT DISTINCT r.codebase, r.suite, x.ctx
FROM run r
CROSS JOIN LATERAL (VALUES (r.instigated_context), (r.context)) AS x (ctx)
WHERE r.failure_transient IS NOT TRUE
  AND NOT (r.result_code = 'worker-failure'
           AND (r.start_time IS NULL OR r.start_time <= %(cutoff)s))
  AND NOT (r.result_code = 'install-deps-unsatisfied-dependencies'
           AND r.failure_details IS NOT NULL)
  AND x.ctx <> ''
  AND EXISTS (SELECT 1 FROM candidate c
              WHERE c.codebase = r.codebase AND c.suite = r.suite AND c.context = x.ctx)
"""

_AVG_SQL = """
SELECT {column}, AVG(finish_time - start_time)
FROM run
WHERE failure_transient IS NOT TRUE AND {column} = ANY(%(names)s)
GROUP BY {column}
"""

_CODEBASE_MEDIAN_SQL = """
WITH r AS (
    SELECT codebase, (EXTRACT(EPOCH FROM finish_time - start_time) * 1000000)::bigint AS span_us
    FROM run
    WHERE failure_transient IS NOT TRUE AND start_time IS NOT NULL AND finish_time IS NOT NULL
      AND NOT (result_code = 'worker-failure' AND start_time <= %(cutoff)s)
      AND NOT (result_code = ANY(%(transient_codes)s))
      AND (%(window_start)s::timestamp IS NULL OR start_time >= %(window_start)s)
      AND codebase = ANY(%(names)s)
)
SELECT codebase, (array_agg(span_us ORDER BY span_us))[count(*) / 2 + 1], count(*)
FROM r GROUP BY codebase
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


def aggregates_from_database(
    conn: Any,
    config: EngineConfig,
    as_of: datetime,
    candidate_groups: Iterable[tuple[str, str]],
    dsn: str | None = None,
) -> Aggregates:
    """The same figures as :func:`aggregates_from_runs`, from a few set-based queries.

    With ``dsn``, a second connection joins the transaction's snapshot
    (``pg_export_snapshot``) and the queries run on both at once.

    ``conn`` is a psycopg connection inside a READ ONLY REPEATABLE READ
    transaction (see :func:`engines.new.live.read_only_connection`), so every
    query sees the same snapshot. The fallbacks (AVG, codebase median) are
    asked only for the codebases and campaigns of ``candidate_groups``
    (codebase, campaign) that may need them.
    """
    params = _query_params(config, as_of)
    agg = Aggregates(origin="database")
    conn.execute(WORK_MEM_SQL)
    median = config.duration_estimation.method == "median"
    median_sql = _MEDIAN_SQL if median else _NO_MEDIAN_SQL

    def groups(part: str, extra: dict[str, Any]) -> Callable[[Any], list[tuple[Any, ...]]]:
        sql = _GROUPS_SQL.format(median=median_sql, part=part)
        return lambda c: c.execute(sql, {**params, **extra}).fetchall()

    def deps(c: Any) -> list[tuple[Any, ...]]:
        return c.execute(_DEPS_SQL, params).fetchall()

    def contexts(c: Any) -> list[tuple[Any, ...]]:
        return c.execute(_CONTEXT_SQL, params).fetchall()

    split = None
    if dsn is not None:
        row = conn.execute(
            "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY name) FROM codebase"
        ).fetchone()
        split = None if row is None else row[0]
    if split is None:
        group_rows = groups("", {})(conn)
        deps_rows, context_rows = deps(conn), contexts(conn)
    else:
        # Two connections on one exported snapshot: both halves of the run table
        # are aggregated at once (the server has more than one core).
        low, high = (
            groups("AND codebase < %(split)s", {"split": split}),
            groups("AND codebase >= %(split)s", {"split": split}),
        )
        results = run_on_shared_snapshot(conn, str(dsn), [[low, deps], [high, contexts]])
        group_rows = results[0][0] + results[1][0]
        deps_rows, context_rows = results[0][1], results[1][1]

    ambiguous: list[tuple[str, str]] = []
    for g, row in enumerate(group_rows):
        (codebase, suite, total, successes, timed, span_sum, span_abs, untimed, wf_null,
         relevant, weight_sum, weighted_successes, median_us, median_n) = row  # fmt: skip
        agg.group_index[(codebase, suite)] = g
        agg.total.append(int(total))
        agg.successes.append(int(successes))
        agg.timed.append(int(timed))
        agg.seconds_sum.append(0.0)
        if timed:
            mean = mean_if_unambiguous(int(span_sum), int(span_abs), int(timed))
            if mean is None:
                ambiguous.append((codebase, suite))
            else:
                agg._means[g] = mean
        problem = None
        if untimed:
            problem = "AttributeError: a counted run has a NULL start or finish time"
        if wf_null:
            problem = "TypeError: a worker failure has a NULL start time"
        agg.legacy_time_problem.append(problem)
        agg.relevant.append(int(relevant))
        agg.weight_sum.append(float(weight_sum or 0.0))
        agg.weighted_successes.append(float(weighted_successes or 0.0))
        agg.median_us.append(None if median_us is None else int(median_us))
        agg.median_n.append(int(median_n))

    if ambiguous:
        # The exact sum sits (almost) on a half microsecond: only the legacy's own
        # float summation, newest first, says which way it rounds.
        spans: dict[tuple[str, str], list[int]] = defaultdict(list)
        for codebase, suite, span in conn.execute(
            _ORDERED_SPANS_SQL,
            {
                **params,
                "codebases": [k[0] for k in ambiguous],
                "suites": [k[1] for k in ambiguous],
            },
        ):
            spans[(codebase, suite)].append(span)
        for key, values in spans.items():
            seconds = 0.0
            for span in values:
                seconds += span / 1_000_000
            agg._means[agg.group_index[key]] = legacy_mean_us(seconds, len(values))

    for codebase, suite, ictx, ctx, details_text, weight in deps_rows:
        found = agg.group_index.get((codebase, suite))
        if found is not None:
            agg.deps_runs.setdefault(found, []).append(
                DepsRun(ictx, ctx, None, float(weight), details_text)
            )
    pairs: list[tuple[int, str]] = []
    for codebase, suite, ctx in context_rows:
        hit = agg.group_index.get((codebase, suite))
        if hit is not None:
            pairs.append((hit, ctx))
    agg.set_context_hits(pairs)

    # Fallbacks: only for the codebases/campaigns that may need them.
    needy_codebases: set[str] = set()
    needy_campaigns: set[str] = set()
    for codebase, suite in set(candidate_groups):
        known = agg.group_index.get((codebase, suite))
        if (
            known is None
            or agg.total[known] == 0
            or agg.mean_us(known) is None
            or (median and agg.median_n[known] < _min_points(config))
        ):
            needy_codebases.add(codebase)
            needy_campaigns.add(suite)
    agg.codebase_avg_us = _fetch_avg(conn, "codebase", sorted(needy_codebases))
    agg.campaign_avg_us = _fetch_avg(conn, "suite", sorted(needy_campaigns))
    if median and needy_codebases:
        with conn.cursor() as cur:
            cur.execute(_CODEBASE_MEDIAN_SQL, {**params, "names": sorted(needy_codebases)})
            cb_median: dict[str, int | None] = {}
            cb_n: dict[str, int] = {}
            for codebase, value, count in cur:
                cb_median[codebase] = int(value)
                cb_n[codebase] = int(count)
        agg.codebase_median_us, agg.codebase_median_n = cb_median, cb_n
    agg.debian_versions = fetch_debian_versions(conn, _relation_names(agg.deps_runs))
    return agg


def run_on_shared_snapshot(
    conn: Any, dsn: str, work: list[list[Callable[[Any], Any]]]
) -> list[list[Any]]:
    """Run ``work[i]`` (query functions) on connection i, all on ``conn``'s snapshot.

    ``work[0]`` runs on ``conn`` itself; every other list gets a new READ ONLY
    REPEATABLE READ connection that imports ``conn``'s exported snapshot, so
    all queries see exactly the same data.
    """
    from concurrent.futures import ThreadPoolExecutor

    import psycopg
    from psycopg import sql

    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    snapshot = row[0]
    others = []
    try:
        for _ in work[1:]:
            other = psycopg.connect(dsn, autocommit=True)
            other.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            other.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            other.execute(WORK_MEM_SQL)
            others.append(other)

        def run(index: int) -> list[Any]:
            c = conn if index == 0 else others[index - 1]
            return [query(c) for query in work[index]]

        with ThreadPoolExecutor(len(work)) as pool:
            return list(pool.map(run, range(len(work))))
    finally:
        for other in others:
            try:
                other.execute("ROLLBACK")
            finally:
                other.close()


def _min_points(config: EngineConfig) -> int:
    return config.success_estimation.minimum_data_points


def _fetch_avg(conn: Any, column: str, names: list[str]) -> dict[str, int | None]:
    """AVG over intervals asked of the server itself (no emulation needed)."""
    if not names:
        return {}
    out: dict[str, int | None] = {}
    with conn.cursor() as cur:
        cur.execute(_AVG_SQL.format(column=column), {"names": names})
        for name, avg in cur:
            out[name] = None if avg is None else timedelta_to_us(avg)
    return out


def _relation_names(deps_runs: Mapping[int, list[DepsRun]]) -> set[str]:
    names: set[str] = set()
    for runs in deps_runs.values():
        for run in runs:
            details = run.failure_details
            if not isinstance(details, dict):
                continue
            relations = details.get("relations")
            if not isinstance(relations, list):
                continue
            for alternatives in relations:
                if isinstance(alternatives, list):
                    for entry in alternatives:
                        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                            names.add(entry["name"])
    return names


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
