"""The test databases carry the production schema, debversion included."""

from __future__ import annotations

import psycopg
import pytest

from harness.data.pgschema import (
    corrected_debversion_sql,
    create_janitor_schema,
    debversion_script,
    install_debversion,
)

pytestmark = pytest.mark.postgres


def test_schema_has_the_spec_types_and_tables(janitor_db: str) -> None:
    with psycopg.connect(janitor_db) as conn:
        buckets = conn.execute("SELECT enum_range(NULL::queue_bucket)::text[]").fetchone()
        assert buckets is not None
        assert buckets[0] == [
            "update-existing-mp",
            "manual",
            "control",
            "hook",
            "reschedule",
            "update-new-mp",
            "missing-deps",
            "default",
        ]
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
        assert tables == {
            "codebase",
            "change_set",
            "branch_publish_policy",
            "named_publish_policy",
            "candidate",
            "run",
            "queue",
            "all_debian_versions",
        }
        indexes = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes")}
        assert "queue_codebase_suite_set" in indexes


def test_schema_constraints_hold(janitor_db: str) -> None:
    with psycopg.connect(janitor_db) as conn:
        conn.execute(
            "INSERT INTO codebase (name, branch_url, url, value) VALUES "
            "('foo', 'https://user@salsa.debian.org/foo.git', 'https://salsa.debian.org/foo.git', 3)"
        )
        host = conn.execute("SELECT hostname FROM codebase").fetchone()
        assert host == ("salsa.debian.org",)
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute("INSERT INTO codebase (name) VALUES ('Bad_Name')")
        conn.execute("INSERT INTO change_set (id, campaign) VALUES ('cs1', 'lintian-fixes')")
        conn.execute(
            "INSERT INTO run (id, start_time, finish_time, result_code, suite, change_set, "
            "codebase, logfilenames) VALUES ('r1', '2025-01-01 00:00', '2025-01-02 01:00:00.5', "
            "'success', 'lintian-fixes', 'cs1', 'foo', '{}')"
        )
        duration = conn.execute("SELECT duration::text FROM run").fetchone()
        assert duration == ("1 day 01:00:00.5",)
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute(
                "INSERT INTO run (id, start_time, finish_time, result_code, suite, change_set, "
                "codebase, logfilenames) VALUES ('r2', '2025-01-02', '2025-01-01', "
                "'success', 'lintian-fixes', 'cs1', 'foo', '{}')"
            )
        conn.execute(
            "INSERT INTO named_publish_policy VALUES "
            "('p', ARRAY[ROW('main', 'propose', NULL)::branch_publish_policy], NULL)"
        )
        conn.execute(
            "INSERT INTO candidate (codebase, suite, command, publish_policy) "
            "VALUES ('foo', 'lintian-fixes', 'lintian-brush', 'p')"
        )
        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            conn.execute(
                "INSERT INTO candidate (codebase, suite, command) "
                "VALUES ('foo', 'lintian-fixes', 'other')"
            )


def test_debversion_orders_as_debian(janitor_db: str) -> None:
    with psycopg.connect(janitor_db) as conn:
        row = conn.execute(
            "SELECT '1.0~rc1'::debversion < '1.0'::debversion, "
            "'1.0'::debversion > '1.0~rc1'::debversion, "
            "'2:1.0'::debversion > '10.0'::debversion, "
            "'1.0-1'::debversion = '1.0-1'::debversion, "
            "'1.0'::debversion <> '1.0+b1'::debversion"
        ).fetchone()
        assert row == (True, True, True, True, True)


def test_debversion_fallback_script_works(janitor_db_without_versions: str) -> None:
    """The plain-SQL fallback, run on a database that has no debversion yet."""
    with psycopg.connect(janitor_db_without_versions) as conn:
        assert conn.execute("SELECT to_regtype('debversion')").fetchone() == (None,)
        script = debversion_script(conn)
        conn.execute(corrected_debversion_sql(script.read_text()).encode())
        row = conn.execute(
            "SELECT '1.0~rc1'::debversion < '1.0'::debversion, "
            "'1.0~rc1'::debversion > '1.0'::debversion, "
            "'1.0'::debversion >= '1.0~~'::debversion, "
            "'1.0a'::debversion <= '1.0'::debversion, "
            "NOT ('1.0~rc1'::debversion > '1.0'::debversion)"
        ).fetchone()
        assert row == (True, False, True, False, True)
        negator = conn.execute(
            "SELECT oprnegate::regoperator::text FROM pg_operator "
            "WHERE oprname = '>' AND oprleft = 'debversion'::regtype"
        ).fetchone()
        assert negator == ("<=(debversion,debversion)",)
        # Installed now: a second call notices.
        assert install_debversion(conn) == "present"


def test_install_debversion_then_schema(janitor_db_without_versions: str) -> None:
    with psycopg.connect(janitor_db_without_versions) as conn:
        how = install_debversion(conn)
        assert how in ("extension", "script")
        conn.execute(
            "CREATE TABLE all_debian_versions (source text, distribution text, version debversion)"
        )
        conn.execute(
            "INSERT INTO all_debian_versions VALUES ('a', 'sid', '1.0~rc1'), ('a', 'sid', '1.0')"
        )
        found = conn.execute(
            "SELECT version::text FROM all_debian_versions WHERE version < '1.0'::debversion"
        ).fetchall()
        assert found == [("1.0~rc1",)]


def test_create_janitor_schema_twice_fails_cleanly(janitor_db: str) -> None:
    with psycopg.connect(janitor_db) as conn, pytest.raises(psycopg.errors.DuplicateObject):
        create_janitor_schema(conn)
