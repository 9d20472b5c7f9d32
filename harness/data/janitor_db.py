"""The Janitor's database, written once: sessions, queries, row → model converters.

Production never stops writing while we read. A command therefore reads a
live database through one :class:`JanitorSession`: its first connection
opens a ``READ ONLY, REPEATABLE READ`` transaction and exports its snapshot
(``pg_export_snapshot()``), and every other connection of the command (the
new engine's aggregate scans, ``legacy:sql``'s per-candidate queries, the
noise reruns, the second engine of a comparison) joins that snapshot with
``SET TRANSACTION SNAPSHOT`` before its first query. An exported snapshot
lives only as long as the exporting transaction, so the session holds it
open until the command is done. Every engine thus sees exactly the same rows.

The Dataset reader (:meth:`JanitorSession.dataset`) uses a handful of
set-based queries (the run table through a server-side cursor), never one
query per row, and never a lock that would hold up the Janitor's writers.
Timestamps are fetched as timestamps and converted to microseconds in
Python: exact, unlike ``EXTRACT(EPOCH …)``.

Filters: a campaign and/or a list of codebases, as the legacy's own filters
(they also go into the Dataset's provenance, where ``legacy:sql`` finds them).
What each filter keeps is chosen so that the legacy's answers for the kept
candidates do not change, with one exception, said in the provenance: with
a codebase list (or a sample), the per-campaign duration average, the
legacy's fallback for candidates without runs, is over those codebases only.
Every codebase row is kept whatever the filter: the normalized value is
relative to the maximum over all of them.

A DSN's password never appears in a provenance or an error message
(:func:`redact_dsn`).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.composite import CompositeInfo, register_composite

from engines.bulk import bulk_allocation
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
    timedelta_to_us,
)
from harness.errors import SourceError

#: Rows per round trip of the run table's server-side cursor.
RUN_BATCH = 20_000
#: The transaction every connection of a command runs in.
TRANSACTION = "READ ONLY, REPEATABLE READ"
BEGIN_SQL = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
#: The tables a Janitor database must have.
JANITOR_TABLES = ("codebase", "candidate", "named_publish_policy", "run", "queue")

# ------------------------------------------------------------------ queries

#: The legacy's candidate query (spec §1), plus ``candidate.change_set``: the key
#: it does not select. No ORDER BY, as in the legacy: the row order it returns
#: is recorded (``Dataset.candidate_row_order``) because the legacy's results
#: depend on it.
CANDIDATE_QUERY = """
SELECT
  candidate.codebase AS codebase,
  codebase.branch_url AS branch_url,
  candidate.suite AS campaign,
  candidate.context AS context,
  candidate.value AS value,
  candidate.success_chance AS success_chance,
  named_publish_policy.per_branch_policy AS publish,
  candidate.command AS command,
  candidate.change_set AS change_set
FROM candidate
INNER JOIN codebase ON codebase.name = candidate.codebase
INNER JOIN named_publish_policy ON named_publish_policy.name = candidate.publish_policy
"""

#: ``candidate`` columns in :class:`Candidate`'s field order (positional
#: construction builds 100,000s of them faster).
CANDIDATE_COLUMNS = (
    "id, codebase, suite, command, change_set, context, value, success_chance, publish_policy"
)


def epoch_us_sql(column: str) -> str:
    """A ``timestamp`` column as microseconds since the epoch, computed by the
    server: two million rows arrive as integers instead of datetimes that
    Python would convert one by one. Split into whole days and the time of
    day, it is exact whatever type EXTRACT returns (numeric since
    PostgreSQL 14, double before)."""
    return (
        f"(({column}::date - DATE '1970-01-01')::int8 * 86400000000"
        f" + round(EXTRACT(EPOCH FROM {column}::time) * 1000000)::int8)"
    )


#: ``run`` columns in :class:`Run`'s field order, timestamps as microseconds:
#: a row is a Run as it comes (``Run._make``).
RUN_COLUMNS = (
    "id, codebase, suite, result_code, "
    f"{epoch_us_sql('start_time')}, {epoch_us_sql('finish_time')}, failure_transient, "
    "instigated_context, context, failure_details"
)
#: The ``queue`` columns :func:`queue_item_from_row` expects, in its order.
QUEUE_COLUMNS = (
    "id, codebase, suite, command, bucket::text, priority, context, "
    "estimated_duration, refresh, requester, change_set, branch_url"
)
QUEUE_QUERY = f"SELECT {QUEUE_COLUMNS} FROM queue ORDER BY id"
CODEBASE_QUERY = "SELECT name, branch_url, value FROM codebase WHERE name IS NOT NULL ORDER BY name"
#: Every policy with its entries in order (one row per entry; one row with
#: NULL entry columns for a policy without entries).
POLICY_QUERY = """
SELECT p.name, p.rate_limit_bucket, p.per_branch_policy IS NULL,
       e.role, e.mode::text, e.frequency_days, e.ordinality
FROM named_publish_policy p
LEFT JOIN LATERAL unnest(p.per_branch_policy) WITH ORDINALITY AS e ON true
ORDER BY p.name, e.ordinality
"""
DEBIAN_VERSIONS_QUERY = (
    "SELECT source, version::text, distribution FROM all_debian_versions "
    "ORDER BY source, version::text, distribution"
)


def _where(conditions: list[sql.Composable]) -> sql.Composable:
    if not conditions:
        return sql.SQL("")
    return sql.Composed([sql.SQL(" WHERE "), sql.SQL(" AND ").join(conditions)])


def _filters(
    campaign: str | None,
    codebases: Sequence[str] | None,
    suite: str = "suite",
    codebase: str = "codebase",
) -> tuple[list[sql.Composable], list[Any]]:
    """The campaign and codebase filters on the given columns, and their parameters."""
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    if campaign is not None:
        conditions.append(sql.SQL("{} = %s").format(sql.SQL(suite)))
        params.append(campaign)
    if codebases is not None:
        conditions.append(sql.SQL("{} = ANY(%s::text[])").format(sql.SQL(codebase)))
        params.append(list(codebases))
    return conditions, params


def candidate_query(
    campaign: str | None = None, codebases: Sequence[str] | None = None
) -> tuple[sql.SQL | sql.Composed, list[Any]]:
    """The candidate query with the legacy's optional filters, and its parameters."""
    conditions, params = _filters(campaign, codebases, "candidate.suite", "codebase.name")
    if not conditions:
        return sql.SQL(CANDIDATE_QUERY), params
    return sql.Composed([sql.SQL(CANDIDATE_QUERY), _where(conditions)]), params


# --------------------------------------------------------------- converters


def candidate_from_row(r: Sequence[Any]) -> Candidate:
    """A ``candidate`` row selected as :data:`CANDIDATE_COLUMNS`."""
    return Candidate(*r)


def codebase_from_row(r: Sequence[Any]) -> Codebase:
    """A ``codebase`` row selected as ``name, branch_url, value``."""
    return Codebase(name=r[0], branch_url=r[1], value=r[2])


#: A ``run`` row selected as :data:`RUN_COLUMNS` is a Run's fields in order:
#: ``Run._make`` builds it in C, which two million rows notice.
run_from_row: Callable[[Sequence[Any]], Run] = Run._make


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


def policies_from_rows(rows: Iterator[Sequence[Any]]) -> list[NamedPublishPolicy]:
    """:data:`POLICY_QUERY`'s rows → one policy per name, entries in order."""
    grouped: dict[str, tuple[str | None, bool, list[PolicyEntry]]] = {}
    for name, bucket, is_null, role, mode, freq, ordinality in rows:
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


def policy_entries(value: Any) -> tuple[PolicyEntry, ...] | None:
    """A loaded ``branch_publish_policy[]`` (composites as named tuples) → model entries."""
    if value is None:
        return None
    return tuple(
        PolicyEntry(
            role=e.role,
            mode=None if e.mode is None else str(e.mode),
            frequency_days=e.frequency_days,
        )
        for e in value
    )


def register_policy_type(conn: psycopg.Connection) -> CompositeInfo:
    """Load ``branch_publish_policy`` composites as named tuples (extra columns are fine)."""
    info = CompositeInfo.fetch(conn, "branch_publish_policy")
    if info is None:
        raise SourceError("the database has no type branch_publish_policy: not a Janitor schema")
    register_composite(info, conn)
    return info


# -------------------------------------------------------------- connections


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


def _password(dsn: str) -> str | None:
    try:
        value = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        return None
    return None if value is None else str(value)


def error_reason(exc: BaseException, dsn: str | None = None) -> str:
    """The first line of a database error, with the DSN's password blanked out."""
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    password = None if dsn is None else _password(dsn)
    if password:
        reason = reason.replace(password, "********")
    return reason


def connect(dsn: str) -> psycopg.Connection:
    """An autocommit connection (transactions are begun explicitly); one-line errors."""
    try:
        return psycopg.connect(dsn, autocommit=True)
    except psycopg.Error as exc:
        raise SourceError(
            f"cannot connect to {redact_dsn(dsn)}: {error_reason(exc, dsn)}"
        ) from None


def connect_read_only(dsn: str) -> psycopg.Connection:
    """A connection whose ``conn.transaction()`` blocks are READ ONLY, REPEATABLE READ."""
    conn = connect(dsn)
    conn.read_only = True
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return conn


def begin_read_only(conn: psycopg.Connection, snapshot: str | None = None) -> None:
    """Begin the read-only transaction; join ``snapshot`` before any query when given."""
    conn.execute(BEGIN_SQL)
    if snapshot is not None:
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))


@contextmanager
def joined_connection(dsn: str, snapshot: str | None) -> Iterator[psycopg.Connection]:
    """A connection in a read-only transaction on ``snapshot`` (its own one when ``None``).

    Rolled back and closed on exit: there is never anything to commit.
    """
    conn = connect(dsn)
    try:
        try:
            begin_read_only(conn, snapshot)
        except psycopg.Error as exc:
            raise SourceError(
                f"{redact_dsn(dsn)}: cannot join the command's snapshot {snapshot}: "
                f"{error_reason(exc, dsn)}"
            ) from None
        yield conn
    finally:
        _end(conn)


def _end(conn: psycopg.Connection) -> None:
    try:
        if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
    except psycopg.Error:
        pass  # the connection is going away anyway
    finally:
        conn.close()


def table_exists(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


# ------------------------------------------------------------------ reading


def read_codebases(conn: psycopg.Connection) -> list[Codebase]:
    return [codebase_from_row(r) for r in conn.execute(CODEBASE_QUERY)]


def read_policies(conn: psycopg.Connection) -> list[NamedPublishPolicy]:
    return policies_from_rows(iter(conn.execute(POLICY_QUERY)))


def read_candidates(
    conn: psycopg.Connection,
    campaign: str | None = None,
    codebases: Sequence[str] | None = None,
) -> list[Candidate]:
    conditions, params = _filters(campaign, codebases)
    query = sql.Composed(
        [
            sql.SQL(f"SELECT {CANDIDATE_COLUMNS} FROM candidate"),
            _where(conditions),
            sql.SQL(" ORDER BY id"),
        ]
    )
    return [candidate_from_row(r) for r in conn.execute(query, params).fetchall()]


def read_row_order(
    conn: psycopg.Connection,
    campaign: str | None = None,
    codebases: Sequence[str] | None = None,
) -> tuple[CandidateKey, ...]:
    """The keys in the order the legacy's candidate query returns its rows."""
    query, params = candidate_query(campaign, codebases)
    return tuple(CandidateKey(r[0], r[2], r[8]) for r in conn.execute(query, params))


def read_runs(
    conn: psycopg.Connection, campaign: str | None, codebases: Sequence[str] | None
) -> list[Run]:
    """The runs the filters keep, in physical order (which a restore reproduces)."""
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
    query = sql.Composed([sql.SQL(f"SELECT {RUN_COLUMNS} FROM run"), _where(conditions)])
    # A synchronized scan could start mid-table.
    conn.execute("SET LOCAL synchronize_seqscans = off")
    copied = _copied_runs(conn, query, params)
    return read_runs_by_cursor(conn, query, params) if copied is None else copied


def read_runs_by_cursor(
    conn: psycopg.Connection, query: sql.Composed, params: Sequence[Any]
) -> list[Run]:
    """The runs row by row, psycopg decoding each value: what the copy must equal."""
    with conn.cursor(name="janitor_shadow_runs", binary=True) as cur:
        cur.itersize = RUN_BATCH
        cur.execute(query, params)
        return list(map(run_from_row, cur))


#: 19 digits in a row: maybe an integer beyond int64, which orjson reads as a
#: float (or refuses) where ``json.loads`` keeps it exact.
_LONG_DIGITS = re.compile(r"[0-9]{19}")


def json_value(text: str) -> Any:
    """A ``json`` column's text as psycopg's loader decodes it (``json.loads``):
    by orjson, faster, unless the text holds a long run of digits or orjson
    refuses it (a lone surrogate)."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _copied_runs(
    conn: psycopg.Connection, query: sql.Composed, params: Sequence[Any]
) -> list[Run] | None:
    """The runs through ``COPY … TO STDOUT (FORMAT csv)``, parsed by pyarrow.

    psycopg decoding two million rows value by value took 16 s here, this
    way 12–13 s: the values arrive as columns, the repeating strings shared;
    ``failure_details`` is decoded by :func:`json_value`. ``None`` when
    pyarrow cannot read what came (the rows are then read again by cursor,
    in the same snapshot).
    """
    import io

    import pyarrow as pa
    import pyarrow.csv as pcsv

    from harness.data.run_table import runs_from_table

    buffer = io.BytesIO()
    with conn.cursor() as cur:
        statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)
        with cur.copy(statement, params) as copy:
            for block in copy:
                buffer.write(block)
    shared = pa.dictionary(pa.int32(), pa.string())
    types = {
        "id": pa.string(),
        "codebase": shared,
        "suite": shared,
        "result_code": shared,
        "start_us": pa.int64(),
        "finish_us": pa.int64(),
        "failure_transient": pa.bool_(),
        "instigated_context": shared,
        "context": shared,
        "failure_details": pa.string(),
    }
    data = pa.py_buffer(buffer.getbuffer())  # no copy: the view keeps the bytes alive
    del buffer
    try:
        table = pcsv.read_csv(
            data,
            read_options=pcsv.ReadOptions(column_names=list(Run._fields), block_size=1 << 24),
            parse_options=pcsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            # COPY writes NULL as an unquoted empty field and '' quoted; nothing
            # else is NULL (pyarrow would also take "NULL", "NaN", "N/A", …)
            convert_options=pcsv.ConvertOptions(
                column_types=types,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                true_values=["t"],
                false_values=["f"],
            ),
        )
    except pa.ArrowException:
        return None
    del data
    return runs_from_table(table, Run._fields, lambda _row, text: json_value(text))


def read_debian_versions(conn: psycopg.Connection) -> list[DebianVersion] | None:
    """``None`` when the database has no ``all_debian_versions`` table."""
    if not table_exists(conn, "all_debian_versions"):
        return None
    return [
        DebianVersion(source=r[0], version=r[1], distribution=r[2])
        for r in conn.execute(DEBIAN_VERSIONS_QUERY)
    ]


def read_queue(conn: psycopg.Connection) -> list[QueueItem]:
    return [queue_item_from_row(r) for r in conn.execute(QUEUE_QUERY)]


def _sample(
    conn: psycopg.Connection,
    campaign: str | None,
    codebases: Sequence[str] | None,
    size: int,
    seed: int,
) -> list[str]:
    """``size`` candidate codebases drawn with ``seed`` (sorted: reproducible)."""
    conditions, params = _filters(campaign, codebases)
    query = sql.Composed([sql.SQL("SELECT DISTINCT codebase FROM candidate"), _where(conditions)])
    names = sorted(r[0] for r in conn.execute(query, params))
    return sorted(random.Random(seed).sample(names, min(size, len(names))))


# ------------------------------------------------------------------ session


class JanitorSession:
    """One command's view of a live Janitor database: one snapshot, held open.

    ``connection`` is the exporting (or, with ``snapshot`` given to
    :func:`open_session`, joining) connection; :meth:`joined` opens another
    one on the same snapshot. :meth:`dataset` and :meth:`rows` are read once
    and kept: a comparison's engines share them.
    """

    def __init__(
        self,
        dsn: str,
        connection: psycopg.Connection,
        snapshot: str,
        read_at: datetime,
        *,
        as_of: datetime | None = None,
        campaign: str | None = None,
        codebases: Sequence[str] | None = None,
        sample_codebases: int | None = None,
        seed: int = 0,
    ) -> None:
        self._dsn = dsn
        self.connection = connection
        self.snapshot = snapshot
        self.read_at = read_at
        self.as_of = as_of
        self.source = redact_dsn(dsn)
        self.campaign = campaign
        self.notes: list[str] = []
        self._checked = False
        self._dataset: Dataset | None = None
        self._rows: Dataset | None = None
        if sample_codebases is not None:
            codebases = _sample(connection, campaign, codebases, sample_codebases, seed)
            self.notes.append(
                f"codebase sample of {len(codebases)} (seed {seed}): every codebase row is kept, "
                "runs and candidates of the sampled codebases only, so per-campaign duration "
                "averages are over the sample"
            )
        elif codebases is not None:
            codebases = sorted(set(codebases))
            self.notes.append("per-campaign duration averages are over the listed codebases only")
        if campaign is not None and codebases is None:
            self.notes.append("runs: the campaign's and every run of its candidates' codebases")
        self.codebases: list[str] | None = None if codebases is None else list(codebases)
        self.filters: dict[str, Any] = {}
        if campaign is not None:
            self.filters["campaign"] = campaign
        if codebases is not None:
            self.filters["codebases"] = list(codebases)
        if sample_codebases is not None:
            self.filters["sample_codebases"] = sample_codebases
            self.filters["seed"] = seed

    @property
    def dsn(self) -> str:
        """The DSN as given (password included): for connections, never for printing."""
        return self._dsn

    @property
    def moment(self) -> datetime:
        """The command's "now": ``--as-of`` or the transaction's start (naive UTC)."""
        return self.read_at if self.as_of is None else self.as_of

    def joined(self) -> AbstractContextManager[psycopg.Connection]:
        """Another connection, in a read-only transaction on this session's snapshot."""
        return joined_connection(self._dsn, self.snapshot)

    def details(self) -> dict[str, Any]:
        """What a provenance says about the read: transaction, its time, its snapshot."""
        details: dict[str, Any] = {
            "reader": "harness.data.janitor_db",
            "transaction": TRANSACTION,
            "read_at": self.read_at.isoformat(),
            "snapshot": self.snapshot,
            "server_version": self.connection.info.server_version,
        }
        if self.as_of is not None:
            details["as_of_given"] = True
        return details

    def dataset(self) -> Dataset:
        """Everything the scheduler reads, the runs included (read once)."""
        if self._dataset is None:
            self._dataset = self._read(runs=True)
        return self._dataset

    def rows(self) -> Dataset:
        """Everything but the runs and the Debian versions, for engines that ask the
        database for what they need of those (read once)."""
        if self._rows is None:
            if self._dataset is not None:
                self._rows = replace(self._dataset, runs=(), debian_versions=None)
            else:
                self._rows = self._read(runs=False)
        return self._rows

    def _read(self, *, runs: bool) -> Dataset:
        # Millions of acyclic rows: the cyclic collector would rescan them as they
        # grow (half the read's time), and again whenever an engine allocates.
        with bulk_allocation(freeze=True):
            return self._read_tables(runs=runs)

    def _read_tables(self, *, runs: bool) -> Dataset:
        conn = self.connection
        if not self._checked:
            for table in JANITOR_TABLES:
                if not table_exists(conn, table):
                    raise SourceError(f"{self.source}: no table {table!r}: not a Janitor database")
            self._checked = True
        campaign, codebases = self.campaign, self.codebases
        notes = list(self.notes)
        # The engines that read the database ask it for the versions they need.
        versions = read_debian_versions(conn) if runs else None
        if not table_exists(conn, "all_debian_versions"):
            notes.append("no all_debian_versions table: dependency checks cannot be answered")
        details = self.details()
        if notes:
            details["notes"] = notes
        return Dataset(
            as_of=self.moment,
            codebases=tuple(read_codebases(conn)),
            candidates=tuple(read_candidates(conn, campaign, codebases)),
            policies=tuple(read_policies(conn)),
            runs=tuple(read_runs(conn, campaign, codebases)) if runs else (),
            debian_versions=None if versions is None else tuple(versions),
            queue=tuple(read_queue(conn)),
            candidate_row_order=read_row_order(conn, campaign, codebases),
            provenance=Provenance(
                source=self.source,
                recorded_at=self.read_at.isoformat(),
                filters=dict(self.filters),
                details=details,
            ),
            live_dsn=self._dsn,
            live_snapshot=self.snapshot,
        )


@contextmanager
def open_session(
    dsn: str,
    *,
    snapshot: str | None = None,
    as_of: datetime | None = None,
    campaign: str | None = None,
    codebases: Sequence[str] | None = None,
    sample_codebases: int | None = None,
    seed: int = 0,
) -> Iterator[JanitorSession]:
    """The read-only session of one command; its snapshot lives until the block ends.

    With ``snapshot`` (an exported id of a transaction still open) the session
    joins it instead of exporting its own. A database error inside the block
    becomes one line naming the database (never its password).
    """
    source = redact_dsn(dsn)
    conn = connect(dsn)
    try:
        try:
            begin_read_only(conn, snapshot)
            row = conn.execute(
                "SELECT now() AT TIME ZONE 'UTC', "
                + ("pg_export_snapshot()" if snapshot is None else "NULL")
            ).fetchone()
        except psycopg.Error as exc:
            raise SourceError(f"reading {source} failed: {error_reason(exc, dsn)}") from None
        assert row is not None
        session = JanitorSession(
            dsn,
            conn,
            snapshot or row[1],
            row[0],
            as_of=as_of,
            campaign=campaign,
            codebases=codebases,
            sample_codebases=sample_codebases,
            seed=seed,
        )
        try:
            yield session
        except psycopg.Error as exc:
            raise SourceError(f"reading {source} failed: {error_reason(exc, dsn)}") from None
    finally:
        _end(conn)


def read_dataset(
    dsn: str,
    *,
    campaign: str | None = None,
    codebases: Sequence[str] | None = None,
    sample_codebases: int | None = None,
    seed: int = 0,
    as_of: datetime | None = None,
) -> Dataset:
    """Read everything the scheduler reads from ``dsn`` in one transaction.

    ``sample_codebases`` draws that many of the candidates' codebases (after
    the other filters) with ``seed``. ``as_of`` replaces the transaction
    time as the run's "now" (to replay a recorded moment). The snapshot ends
    with the read: engines that query the database later open their own.
    """
    with open_session(
        dsn,
        as_of=as_of,
        campaign=campaign,
        codebases=codebases,
        sample_codebases=sample_codebases,
        seed=seed,
    ) as session:
        dataset = session.dataset()
    return replace(dataset, live_snapshot=None)


def dataset_session(dataset: Dataset) -> AbstractContextManager[JanitorSession]:
    """A session on the snapshot ``dataset`` was read in (a fresh one if it has ended).

    For engines handed a live Dataset rather than a session.
    """
    if dataset.live_dsn is None:
        raise SourceError("the dataset was not read from a live database")
    return open_session(
        dataset.live_dsn,
        snapshot=dataset.live_snapshot,
        as_of=dataset.as_of,
        campaign=dataset.provenance.filters.get("campaign"),
        codebases=dataset.provenance.filters.get("codebases"),
    )


JoinConnection = Callable[[], AbstractContextManager[psycopg.Connection]]
