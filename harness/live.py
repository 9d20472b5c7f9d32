"""The live reader: a production Janitor database → one consistent Dataset.

Everything is read in one ``READ ONLY, REPEATABLE READ`` transaction, so the
tables agree with each other, with a handful of set-based queries (the run
table streamed through a server-side cursor), never one query per row, and
never a lock that would hold up the Janitor's writers. ``as_of`` is the
transaction's start (naive UTC). Timestamps are fetched as timestamps and
converted to microseconds in Python: exact, unlike ``EXTRACT(EPOCH …)``.

Filters: a campaign and/or a list of codebases, as the legacy's own filters
(they also go into the Dataset's provenance, where ``legacy:sql`` finds them).
What each filter keeps is chosen so that the legacy's answers for the kept
candidates do not change — with one exception, said in the provenance: with
a codebase list (or a sample), the per-campaign duration average, the
legacy's fallback for candidates without runs, is over those codebases only.
Every codebase row is kept whatever the filter: the normalized value is
relative to the maximum over all of them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from engines.legacy.sql import candidate_query
from engines.model import (
    Candidate,
    CandidateKey,
    Codebase,
    Dataset,
    DebianVersion,
    NamedPublishPolicy,
    PolicyEntry,
    Provenance,
    QueueItem,
    Run,
    datetime_to_us,
    timedelta_to_us,
)
from harness.errors import SourceError

RUN_BATCH = 20_000

POLICY_QUERY = """
SELECT p.name, p.rate_limit_bucket, p.per_branch_policy IS NULL,
       e.role, e.mode::text, e.frequency_days, e.ordinality
FROM named_publish_policy p
LEFT JOIN LATERAL unnest(p.per_branch_policy) WITH ORDINALITY AS e ON true
ORDER BY p.name, e.ordinality
"""


#: The ``queue`` columns :func:`queue_item_from_row` expects, in its order.
QUEUE_COLUMNS = (
    "id, codebase, suite, command, bucket::text, priority, context, "
    "estimated_duration, refresh, requester, change_set, branch_url"
)


def queue_item_from_row(r: Sequence[Any]) -> QueueItem:
    """A ``queue`` row selected as :data:`QUEUE_COLUMNS`, as the model holds it."""
    return QueueItem(
        id=r[0],
        codebase=r[1],
        suite=r[2],
        command=r[3],
        bucket=r[4],
        priority=r[5],
        context=r[6],
        estimated_duration_us=None if r[7] is None else timedelta_to_us(r[7]),
        refresh=bool(r[8]),
        requester=r[9],
        change_set=r[10],
        branch_url=r[11],
    )


def redact_dsn(dsn: str) -> str:
    """The DSN without its password (URL or ``key=value`` form)."""
    if dsn.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, hostinfo = netloc.rsplit("@", 1)
            netloc = f"{userinfo.split(':', 1)[0]}@{hostinfo}"
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<unparseable connection string>"
    params.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in params.items()})


def connect_read_only(dsn: str) -> psycopg.Connection:
    """A connection whose transactions are READ ONLY, REPEATABLE READ; one-line errors."""
    try:
        conn = psycopg.connect(dsn, autocommit=True)
    except psycopg.Error as exc:
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        raise SourceError(f"cannot connect to {redact_dsn(dsn)}: {reason}") from None
    conn.read_only = True
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return conn


def _exists(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def _where(conditions: list[sql.Composable]) -> sql.Composable:
    if not conditions:
        return sql.SQL("")
    return sql.Composed([sql.SQL(" WHERE "), sql.SQL(" AND ").join(conditions)])


def _sample(
    conn: psycopg.Connection,
    campaign: str | None,
    codebases: Sequence[str] | None,
    size: int,
    seed: int,
) -> list[str]:
    """``size`` candidate codebases drawn with ``seed`` (sorted: reproducible)."""
    query = sql.SQL("SELECT DISTINCT codebase FROM candidate")
    params: list[Any] = []
    conditions: list[sql.Composable] = []
    if campaign is not None:
        conditions.append(sql.SQL("suite = %s"))
        params.append(campaign)
    if codebases is not None:
        conditions.append(sql.SQL("codebase = ANY(%s::text[])"))
        params.append(list(codebases))
    names = sorted(r[0] for r in conn.execute(sql.Composed([query, _where(conditions)]), params))
    chosen = random.Random(seed).sample(names, min(size, len(names)))
    return sorted(chosen)


def _read_policies(conn: psycopg.Connection) -> list[NamedPublishPolicy]:
    grouped: dict[str, tuple[str | None, bool, list[PolicyEntry]]] = {}
    for name, bucket, is_null, role, mode, freq, ordinality in conn.execute(POLICY_QUERY):
        _, _, entries = grouped.setdefault(name, (bucket, is_null, []))
        if ordinality is not None:
            entries.append(PolicyEntry(role=role, mode=mode, frequency_days=freq))
    return [
        NamedPublishPolicy(
            name=name,
            per_branch_policy=None if is_null else tuple(entries),
            rate_limit_bucket=bucket,
        )
        for name, (bucket, is_null, entries) in grouped.items()
    ]


def _read_runs(
    conn: psycopg.Connection, campaign: str | None, codebases: Sequence[str] | None
) -> list[Run]:
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    if codebases is not None:
        conditions.append(sql.SQL("codebase = ANY(%s::text[])"))
        params.append(list(codebases))
    elif campaign is not None:
        # The campaign's runs (its average) and every run of its candidates'
        # codebases (their per-codebase average spans all campaigns).
        conditions.append(
            sql.SQL("(suite = %s OR codebase IN (SELECT codebase FROM candidate WHERE suite = %s))")
        )
        params += [campaign, campaign]
    query = sql.Composed(
        [
            sql.SQL(
                "SELECT id, codebase, suite, result_code, start_time, finish_time, "
                "failure_transient, instigated_context, context, failure_details FROM run"
            ),
            _where(conditions),
        ]
    )
    # Physical order, which a restore reproduces; a synchronized scan could start mid-table.
    conn.execute("SET LOCAL synchronize_seqscans = off")
    to_us = datetime_to_us
    runs: list[Run] = []
    with conn.cursor(name="janitor_shadow_runs", binary=True) as cur:
        cur.itersize = RUN_BATCH
        cur.execute(query, params)
        for r in cur:
            start, finish = r[4], r[5]
            runs.append(
                Run(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    None if start is None else to_us(start),
                    None if finish is None else to_us(finish),
                    r[6],
                    r[7],
                    r[8],
                    r[9],
                )
            )
    return runs


def read_dataset(
    dsn: str,
    *,
    campaign: str | None = None,
    codebases: Sequence[str] | None = None,
    sample_codebases: int | None = None,
    seed: int = 0,
    as_of: datetime | None = None,
) -> Dataset:
    """Read everything the scheduler reads from the database at ``dsn``.

    ``sample_codebases`` draws that many of the candidates' codebases (after
    the other filters) with ``seed``. ``as_of`` replaces the transaction
    time as the run's "now" (to replay a recorded moment).
    """
    source = redact_dsn(dsn)
    conn = connect_read_only(dsn)
    try:
        with conn.transaction():
            return _read(conn, dsn, source, campaign, codebases, sample_codebases, seed, as_of)
    except psycopg.Error as exc:
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        raise SourceError(f"reading {source} failed: {reason}") from None
    finally:
        conn.close()


def _read(
    conn: psycopg.Connection,
    dsn: str,
    source: str,
    campaign: str | None,
    codebases: Sequence[str] | None,
    sample_codebases: int | None,
    seed: int,
    as_of: datetime | None,
) -> Dataset:
    row = conn.execute("SELECT now() AT TIME ZONE 'UTC'").fetchone()
    assert row is not None
    read_at: datetime = row[0]
    for table in ("codebase", "candidate", "named_publish_policy", "run", "queue"):
        if not _exists(conn, table):
            raise SourceError(f"{source}: no table {table!r}: not a Janitor database")
    notes: list[str] = []
    if sample_codebases is not None:
        codebases = _sample(conn, campaign, codebases, sample_codebases, seed)
        notes.append(
            f"codebase sample of {len(codebases)} (seed {seed}): every codebase row is kept, "
            "runs and candidates of the sampled codebases only, so per-campaign duration "
            "averages are over the sample"
        )
    elif codebases is not None:
        codebases = sorted(set(codebases))
        notes.append("per-campaign duration averages are over the listed codebases only")
    if campaign is not None and codebases is None:
        notes.append("runs: the campaign's and every run of its candidates' codebases")

    codebase_rows = [
        Codebase(name=r[0], branch_url=r[1], value=r[2])
        for r in conn.execute(
            "SELECT name, branch_url, value FROM codebase WHERE name IS NOT NULL ORDER BY name"
        )
    ]
    policies = _read_policies(conn)

    conditions: list[sql.Composable] = []
    params: list[Any] = []
    if campaign is not None:
        conditions.append(sql.SQL("suite = %s"))
        params.append(campaign)
    if codebases is not None:
        conditions.append(sql.SQL("codebase = ANY(%s::text[])"))
        params.append(list(codebases))
    candidates = [
        Candidate(
            id=r[0],
            codebase=r[1],
            suite=r[2],
            command=r[3],
            change_set=r[4],
            context=r[5],
            value=r[6],
            success_chance=r[7],
            publish_policy=r[8],
        )
        for r in conn.execute(
            sql.Composed(
                [
                    sql.SQL(
                        "SELECT id, codebase, suite, command, change_set, context, value, "
                        "success_chance, publish_policy FROM candidate"
                    ),
                    _where(conditions),
                    sql.SQL(" ORDER BY id"),
                ]
            ),
            params,
        )
    ]

    query, query_params = candidate_query(campaign, codebases)
    row_order = tuple(CandidateKey(r[0], r[2], r[8]) for r in conn.execute(query, query_params))

    runs = _read_runs(conn, campaign, codebases)

    versions: list[DebianVersion] | None = None
    if _exists(conn, "all_debian_versions"):
        versions = [
            DebianVersion(source=r[0], version=r[1], distribution=r[2])
            for r in conn.execute(
                "SELECT source, version::text, distribution FROM all_debian_versions "
                "ORDER BY source, version::text, distribution"
            )
        ]
    else:
        notes.append("no all_debian_versions table: dependency checks cannot be answered")

    queue = [
        queue_item_from_row(r)
        for r in conn.execute(f"SELECT {QUEUE_COLUMNS} FROM queue ORDER BY id")
    ]

    filters: dict[str, Any] = {}
    if campaign is not None:
        filters["campaign"] = campaign
    if codebases is not None:
        filters["codebases"] = list(codebases)
    if sample_codebases is not None:
        filters["sample_codebases"] = sample_codebases
        filters["seed"] = seed
    details: dict[str, Any] = {
        "reader": "harness.live",
        "transaction": "READ ONLY, REPEATABLE READ",
        "read_at": read_at.isoformat(),
        "server_version": conn.info.server_version,
    }
    if as_of is not None:
        details["as_of_given"] = True
    if notes:
        details["notes"] = notes
    return Dataset(
        as_of=read_at if as_of is None else as_of,
        codebases=tuple(codebase_rows),
        candidates=tuple(candidates),
        policies=tuple(policies),
        runs=tuple(runs),
        debian_versions=None if versions is None else tuple(versions),
        queue=tuple(queue),
        candidate_row_order=row_order,
        provenance=Provenance(
            source=source,
            recorded_at=read_at.isoformat(),
            filters=filters,
            details=details,
        ),
        live_dsn=dsn,
    )
