"""Restore into the production schema: the bundled DDL holds every constraint the
spec lists (``shared/spec/janitor-schema.md``), a restore writes rows that
satisfy them, and a restored database schedules as the snapshot did.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from paths import VECTORS

from harness.cli import main
from harness.data.restore import restore_dataset
from harness.data.snapshot import load_snapshot
from harness.errors import InputError

pytestmark = pytest.mark.postgres

#: The bundled scenario and the golden vector sets (the rule scenarios, whose
#: one-letter codebase names the schema's domain refuses, are restored with a
#: prefix by tests/test_legacy_rules_sql.py).
SOURCES = ["default", str(VECTORS / "small"), str(VECTORS / "quirks")]

#: Every column the spec lists, table by table, in its order.
SPEC_COLUMNS = {
    "codebase": "name branch_url url branch subpath vcs_last_revision last_scanned web_url "
    "vcs_type value inactive hostname",
    "change_set": "id campaign state",
    "branch_publish_policy": "role mode frequency_days",
    "named_publish_policy": "name per_branch_policy rate_limit_bucket",
    "candidate": "id codebase suite context value success_chance command publish_policy change_set",
    "run": "id command description start_time finish_time duration result_code "
    "instigated_context context suite failure_details failure_transient failure_stage "
    "resume_from change_set codebase logfilenames publish_status value worker",
    "queue": "id bucket codebase branch_url suite command priority context estimated_duration "
    "refresh requester change_set",
    "all_debian_versions": "source version",
}


def test_bundled_schema_has_every_column_of_the_spec(janitor_db: str) -> None:
    with psycopg.connect(janitor_db) as conn:
        for table, listed in SPEC_COLUMNS.items():
            expected = listed.split()
            got = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                    (table,),
                )
            ]
            if table == "all_debian_versions":
                # optional in production; the live reader also reads its distribution
                assert set(expected) <= set(got), table
            else:
                assert got == expected, table


def _codebase(conn: psycopg.Connection, **values: Any) -> None:
    columns = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    conn.execute(f"INSERT INTO codebase ({columns}) VALUES ({marks})", tuple(values.values()))


def test_bundled_schema_enforces_the_codebase_constraints(janitor_db: str) -> None:
    url = "https://salsa.debian.org/foo.git"
    with psycopg.connect(janitor_db) as conn:
        _codebase(conn, name="foo", branch_url=url, url=url)
        _codebase(conn, name="bar")  # neither URL: allowed
        refused = [
            (psycopg.errors.CheckViolation, {"name": "one", "branch_url": url + "x"}),
            (psycopg.errors.CheckViolation, {"name": "two", "url": url + "y"}),
            (psycopg.errors.CheckViolation, {"value": 3}),  # no name, no branch_url
            (psycopg.errors.UniqueViolation, {"name": "foo", "branch_url": None}),
            (
                psycopg.errors.UniqueViolation,
                {"name": "foo-again", "branch_url": url, "url": url, "subpath": ""},
            ),
        ]
        _codebase(conn, name="sub", branch_url=url, url=url, subpath="")
        for error, values in refused:
            with pytest.raises(error), conn.transaction():
                _codebase(conn, **values)


def _schedule_json(source: str, tmp_path: Path, name: str, *engine: str) -> dict[str, Any]:
    out = tmp_path / f"{name}.json"
    assert main(["schedule", source, "--engine", *engine, "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    return {k: data[k] for k in ("decisions", "queue")}


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: Path(s).name)
def test_restored_database_schedules_as_the_snapshot(
    source: str, janitor_databases: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    as_of = load_snapshot(source if "/" in source else f"scenarios/{source}").as_of.isoformat()
    on_snapshot = _schedule_json(source, tmp_path, "snapshot", "legacy")
    with janitor_databases.fresh() as dsn:
        assert main(["restore", source, dsn]) == 0, capsys.readouterr().err
        with psycopg.connect(dsn) as conn:
            # every codebase row sets both URLs or neither, to the same repository
            mismatched = conn.execute(
                "SELECT count(*) FROM codebase WHERE url IS DISTINCT FROM branch_url"
            ).fetchone()
            assert mismatched == (0,)
        for engine in ("legacy", "legacy:sql"):
            on_database = _schedule_json(dsn, tmp_path, "db", engine, "--as-of", as_of)
            assert on_database == on_snapshot, engine


def test_restore_error_names_the_target_and_the_snapshot_path(
    janitor_databases: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not the source the snapshot was recorded from: that may be another database."""
    recorded = tmp_path / "recorded"
    with janitor_databases.fresh() as source, janitor_databases.fresh() as target:
        restore_dataset(load_snapshot(VECTORS / "small"), source)
        assert main(["record", source, str(recorded)]) == 0
        capsys.readouterr()
        dataset = load_snapshot(recorded)
        assert dataset.provenance.source == source
        secret = target.replace("postgres@", "postgres:hunter2@")
        bad = replace(dataset.candidates[0], suite="Bad Suite")
        with pytest.raises(InputError, match="the database refused") as caught:
            restore_dataset(
                replace(dataset, candidates=(bad,), candidate_row_order=None),
                secret,
                snapshot=str(recorded),
            )
        message = str(caught.value)
        assert message.startswith(f"{recorded}: restoring into {target}: ")
        assert "hunter2" not in message and source not in message
        # through the command, the non-empty database is refused with the same two names
        restore_dataset(load_snapshot(VECTORS / "small"), target)
        assert main(["restore", str(recorded), secret]) == 2
        err = capsys.readouterr().err
        assert f"{recorded} into {target}" in err
        assert "hunter2" not in err and len(err.strip().splitlines()) == 1
