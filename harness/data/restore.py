"""Restore a snapshot into an empty database with the production schema.

The tests run ``legacy:sql`` on restored snapshots, and a production bug is
reproduced by restoring its recording. Rows go in with ``COPY``; candidates
in the snapshot's candidate-query row order (then the rest by id), so that a
plain scan returns them in that order again.

The snapshot model holds what the scheduler reads, not every column, so a
restore fills the rest with valid values:

* ``change_set``: a row for every change set candidates or queue entries
  name; and, since ``run.change_set`` is NOT NULL and snapshots do not
  record it, one invented change set per run, ``restored:<run id>``;
* ``run``: ``logfilenames`` empty, ``command`` the candidate's command
  where there is one, ``resume_from`` the run itself for
  ``nothing-new-to-do`` (the schema requires one; the model does not say
  which run it resumed), the rest NULL or the column default;
* ``codebase``: ``url`` the same repository URL as ``branch_url`` (the
  schema requires both or neither, and production rows set both to the
  same URL), ``branch``, ``subpath``, ``vcs_type`` NULL.

Every error names the snapshot (its path, not the source it was recorded
from) and the target database (without its password).

A recording made from the restored database reads back the same snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Json

from engines.model import Candidate, CandidateKey, Dataset, us_to_datetime
from harness.data.janitor_db import candidate_query, connect, redact_dsn, register_policy_type
from harness.data.pgschema import (
    ALL_DEBIAN_VERSIONS_DDL,
    create_janitor_schema,
    install_debversion,
    is_empty,
)
from harness.errors import InputError, SourceError

log = logging.getLogger(__name__)

RUN_CHANGE_SET_PREFIX = "restored:"


@dataclass(frozen=True)
class RestoreReport:
    counts: dict[str, int]
    created_schema: bool
    notes: list[str] = field(default_factory=list)
    #: Whether the candidate query returns the snapshot's recorded row order
    #: (``None``: the snapshot recorded none).
    row_order_kept: bool | None = None


def _check_references(dataset: Dataset, origin: str, target: str) -> None:
    """The database's foreign keys would refuse these rows: say which, before trying."""
    names = {c.name for c in dataset.codebases}
    policies = {p.name for p in dataset.policies}

    def refused(message: str, record: str, field: str) -> InputError:
        return InputError(
            f"restoring into {target}: {message}", file=origin, record=record, field=field
        )

    for c in dataset.candidates:
        if c.codebase not in names:
            raise refused(
                f"candidate {c.key.label()}: codebase {c.codebase!r} has no codebase row "
                "(the database's foreign key requires one)",
                f"candidate id {c.id}",
                "codebase",
            )
        if c.publish_policy is not None and c.publish_policy not in policies:
            raise refused(
                f"candidate {c.key.label()}: no publish policy named {c.publish_policy!r}",
                f"candidate id {c.id}",
                "publish_policy",
            )
    for r in dataset.runs:
        if r.codebase not in names:
            raise refused(
                f"run {r.id}: codebase {r.codebase!r} has no codebase row",
                f"run {r.id}",
                "codebase",
            )
    for q in dataset.queue:
        if q.codebase not in names:
            raise refused(
                f"queue entry {q.id}: codebase {q.codebase!r} has no codebase row",
                f"queue id {q.id}",
                "codebase",
            )


def _insert_order(dataset: Dataset) -> list[Candidate]:
    first = list(dataset.joined_candidates)
    seen = {c.key for c in first}
    rest = sorted((c for c in dataset.candidates if c.key not in seen), key=lambda c: c.id)
    return first + rest


def _copy(
    conn: psycopg.Connection,
    table: str,
    columns: list[str],
    types: list[str],
    rows: Iterable[tuple[Any, ...]],
) -> int:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    count = 0
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _set_sequence(conn: psycopg.Connection, table: str) -> None:
    conn.execute(
        sql.SQL(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), max(id)) FROM {} HAVING count(*) > 0"
        ).format(sql.Identifier(table)),
        (table,),
    )


def _fresh_storage(conn: psycopg.Connection, table: str, notes: list[str]) -> None:
    """Give an empty table new storage in this transaction, so that COPY fills its pages
    strictly in order (PostgreSQL then skips the free-space map): a scan returns
    the rows in the order written, which is how the candidate query's order survives."""
    try:
        with conn.transaction():
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
    except psycopg.Error as exc:
        notes.append(f"could not give {table} fresh storage ({exc.sqlstate}): row order may differ")


def restore_dataset(
    dataset: Dataset, dsn: str, *, create_schema: bool = False, snapshot: str | None = None
) -> RestoreReport:
    """Load ``dataset`` into the empty Janitor database at ``dsn``.

    ``snapshot``: the path (or scenario name) the dataset was read from, for
    error messages; by default the dataset's provenance source.
    """
    origin = snapshot or dataset.provenance.source
    target = redact_dsn(dsn)
    _check_references(dataset, origin, target)
    try:
        conn = connect(dsn)
    except SourceError as exc:
        raise SourceError(f"restoring {origin}: {exc}") from None
    try:
        return _restore(conn, dataset, target, create_schema, origin)
    except psycopg.Error as exc:
        diag = exc.diag
        message = diag.message_primary or str(exc).strip()
        if diag.message_detail:
            message += f" ({diag.message_detail})"
        raise InputError(
            f"restoring into {target}: the database refused the snapshot's rows: {message}",
            file=origin,
        ) from None
    finally:
        conn.close()


def _restore(
    conn: psycopg.Connection, dataset: Dataset, target: str, create_schema: bool, origin: str
) -> RestoreReport:
    notes: list[str] = []
    created = False
    has_schema = conn.execute("SELECT to_regclass('candidate') IS NOT NULL").fetchone() == (True,)
    if not has_schema:
        if not create_schema:
            raise SourceError(
                f"restoring {origin}: {target} has no Janitor schema (no table 'candidate'): "
                "pass --create-schema to create it"
            )
        create_janitor_schema(conn, with_debian_versions=dataset.debian_versions is not None)
        created = True
    if not is_empty(conn):
        raise SourceError(
            f"refusing to restore {origin} into {target}: its Janitor tables already hold rows "
            "(restore needs an empty database)"
        )
    has_versions_table = conn.execute(
        "SELECT to_regclass('all_debian_versions') IS NOT NULL"
    ).fetchone() == (True,)
    counts: dict[str, int] = {}
    with conn.transaction():
        if dataset.debian_versions is not None and not has_versions_table:
            how = install_debversion(conn)
            conn.execute(ALL_DEBIAN_VERSIONS_DDL)
            notes.append(f"created all_debian_versions (debversion: {how})")
        elif dataset.debian_versions is None and has_versions_table:
            notes.append(
                "the snapshot has no all_debian_versions table but the database has one: "
                "it stays empty (and reads back as an empty table, not an absent one)"
            )
        counts["codebase"] = _copy(
            conn,
            "codebase",
            ["name", "branch_url", "url", "value"],
            ["text", "text", "text", "int4"],
            ((c.name, c.branch_url, c.branch_url, c.value) for c in dataset.codebases),
        )

        info = register_policy_type(conn)
        entry_type = info.python_type
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO named_publish_policy (name, per_branch_policy, rate_limit_bucket) "
                "VALUES (%s, %s::branch_publish_policy[], %s)",
                [
                    (
                        p.name,
                        None
                        if p.per_branch_policy is None
                        else [
                            entry_type(e.role, e.mode, e.frequency_days)  # type: ignore[misc]
                            for e in p.per_branch_policy
                        ],
                        p.rate_limit_bucket,
                    )
                    for p in dataset.policies
                ],
            )
        counts["named_publish_policy"] = len(dataset.policies)

        change_sets: dict[str, str] = {}
        for c in dataset.candidates:
            if c.change_set is not None:
                change_sets.setdefault(c.change_set, c.suite)
        for q in dataset.queue:
            if q.change_set is not None:
                change_sets.setdefault(q.change_set, q.suite)
        counts["change_set"] = _copy(
            conn,
            "change_set",
            ["id", "campaign"],
            ["text", "text"],
            [
                *change_sets.items(),
                *((RUN_CHANGE_SET_PREFIX + r.id, r.suite) for r in dataset.runs),
            ],
        )
        if dataset.runs:
            notes.append(
                f"runs carry no change set in a snapshot: invented one per run "
                f"({RUN_CHANGE_SET_PREFIX}<run id>)"
            )

        _fresh_storage(conn, "candidate", notes)
        counts["candidate"] = _copy(
            conn,
            "candidate",
            [
                "id",
                "codebase",
                "suite",
                "context",
                "value",
                "success_chance",
                "command",
                "publish_policy",
                "change_set",
            ],
            ["int4", "text", "text", "text", "int4", "float8", "text", "text", "text"],
            (
                (
                    c.id,
                    c.codebase,
                    c.suite,
                    c.context,
                    c.value,
                    c.success_chance,
                    c.command,
                    c.publish_policy,
                    c.change_set,
                )
                for c in _insert_order(dataset)
            ),
        )
        _set_sequence(conn, "candidate")

        commands = {
            (c.codebase, c.suite): c.command for c in dataset.candidates if not c.change_set
        }
        resumed = sum(1 for r in dataset.runs if r.result_code == "nothing-new-to-do")
        if resumed:
            notes.append(
                f"{resumed} nothing-new-to-do run(s) resume from themselves "
                "(the schema requires resume_from; the snapshot does not record it)"
            )
        _fresh_storage(conn, "run", notes)
        counts["run"] = _copy(
            conn,
            "run",
            [
                "id",
                "command",
                "start_time",
                "finish_time",
                "result_code",
                "instigated_context",
                "context",
                "suite",
                "failure_details",
                "failure_transient",
                "resume_from",
                "change_set",
                "codebase",
                "logfilenames",
            ],
            [
                "text",
                "text",
                "timestamp",
                "timestamp",
                "text",
                "text",
                "text",
                "text",
                "json",
                "bool",
                "text",
                "text",
                "text",
                "text[]",
            ],
            (
                (
                    r.id,
                    commands.get((r.codebase, r.suite)),
                    None if r.start_us is None else us_to_datetime(r.start_us),
                    None if r.finish_us is None else us_to_datetime(r.finish_us),
                    r.result_code,
                    r.instigated_context,
                    r.context,
                    r.suite,
                    None if r.failure_details is None else Json(r.failure_details),
                    r.failure_transient,
                    r.id if r.result_code == "nothing-new-to-do" else None,
                    RUN_CHANGE_SET_PREFIX + r.id,
                    r.codebase,
                    [],
                )
                for r in dataset.runs
            ),
        )

        if dataset.debian_versions is not None:
            counts["all_debian_versions"] = _copy(
                conn,
                "all_debian_versions",
                ["source", "distribution", "version"],
                ["text", "text", "text"],
                ((v.source, v.distribution, v.version) for v in dataset.debian_versions),
            )

        counts["queue"] = _copy(
            conn,
            "queue",
            [
                "id",
                "bucket",
                "codebase",
                "branch_url",
                "suite",
                "command",
                "priority",
                "context",
                "estimated_duration",
                "refresh",
                "requester",
                "change_set",
            ],
            [
                "int4",
                "text",
                "text",
                "text",
                "text",
                "text",
                "int8",
                "text",
                "interval",
                "bool",
                "text",
                "text",
            ],
            (
                (
                    q.id,
                    q.bucket,
                    q.codebase,
                    q.branch_url,
                    q.suite,
                    q.command,
                    q.priority,
                    q.context,
                    None
                    if q.estimated_duration_us is None
                    else timedelta(microseconds=q.estimated_duration_us),
                    q.refresh,
                    q.requester,
                    q.change_set,
                )
                for q in dataset.queue
            ),
        )
        _set_sequence(conn, "queue")
    conn.execute("ANALYZE")
    order_kept = _row_order_kept(conn, dataset)
    if order_kept is False:
        notes.append(
            "this database returns the candidate query's rows in another order than the "
            "snapshot recorded (the planner joins a table of this size differently); "
            "legacy:sql here follows the database, as the legacy would — for the recorded "
            "order, schedule the snapshot itself"
        )
    for note in notes:
        log.info("restore: %s", note)
    return RestoreReport(
        counts=counts, created_schema=created, notes=notes, row_order_kept=order_kept
    )


def _row_order_kept(conn: psycopg.Connection, dataset: Dataset) -> bool | None:
    """Whether the restored database returns the candidate query's rows in the recorded order."""
    if dataset.candidate_row_order is None:
        return None
    query, params = candidate_query()
    got = [CandidateKey(r[0], r[2], r[8]) for r in conn.execute(query, params)]
    return got == list(dataset.candidate_row_order)
