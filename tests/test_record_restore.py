"""``janitor-shadow record`` and ``restore``: snapshots in and out of PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from paths import VECTORS

from engines.model import Dataset
from harness.cli import main
from harness.data.restore import restore_dataset
from harness.data.snapshot import load_snapshot, table_rows
from harness.errors import InputError, SourceError

pytestmark = pytest.mark.postgres


def _tables(dataset: Dataset) -> dict[str, Any]:
    return {
        table: None if rows is None else list(rows) for table, rows in table_rows(dataset).items()
    }


@pytest.mark.parametrize(
    ("fmt", "sample"),
    [("dir", None), ("yaml", 12)],
    ids=["dir-whole", "yaml-sampled"],
)
def test_record_restore_record_is_lossless(
    fmt: str,
    sample: int | None,
    janitor_databases: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The YAML variant records a codebase sample first (PyYAML is slow on 11,000 runs);
    the second recording, unfiltered, must read back exactly the sample."""
    as_of = "2025-06-01T00:00:00"
    sampling = [] if sample is None else ["--sample-codebases", str(sample), "--seed", "1"]
    with janitor_databases.fresh() as first, janitor_databases.fresh() as second:
        assert main(["restore", str(VECTORS / "quirks"), first]) == 0
        out1 = tmp_path / ("one.yaml" if fmt == "yaml" else "one")
        out2 = tmp_path / ("two.yaml" if fmt == "yaml" else "two")
        code = main(["record", first, str(out1), "--format", fmt, "--as-of", as_of, *sampling])
        assert code == 0
        assert main(["restore", str(out1), second]) == 0
        assert main(["record", second, str(out2), "--format", fmt, "--as-of", as_of]) == 0
    one, two = load_snapshot(out1), load_snapshot(out2)
    tables_one, tables_two = _tables(one), _tables(two)
    assert one.as_of == two.as_of
    assert len(one.runs) > 0 and len(one.candidates) > 0
    if sample is not None:
        # A dozen candidates against 300 codebases: the planner hashes the candidates
        # instead, and the database's row order is its own (restore says so).
        assert "another order" in capsys.readouterr().out
        order_one = tables_one.pop("candidate_row_order")
        order_two = tables_two.pop("candidate_row_order")
        assert sorted(order_one, key=str) == sorted(order_two, key=str)
        assert tables_one == tables_two
        return
    assert tables_one == tables_two
    # And nothing the scheduler reads was lost on the way from the vectors.
    original = load_snapshot(VECTORS / "quirks")
    assert one.candidate_row_order == original.candidate_row_order
    assert sorted(one.runs) == sorted(original.runs)
    assert set(one.candidates) == set(original.candidates)
    assert set(one.codebases) == set(original.codebases)
    assert set(one.policies) == set(original.policies)
    assert original.debian_versions is not None and one.debian_versions is not None
    assert sorted(one.debian_versions, key=repr) == sorted(original.debian_versions, key=repr)


def test_record_writes_provenance_without_password(
    janitor_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    restore_dataset(load_snapshot(VECTORS / "small"), janitor_db)
    with_password = janitor_db.replace("postgres@", "postgres:hunter2@")
    out = tmp_path / "rec"
    code = main(
        [
            "record",
            with_password,
            str(out),
            "--campaign",
            "lintian-fixes",
            "--sample-codebases",
            "10",
            "--seed",
            "4",
        ]
    )
    assert code == 0, capsys.readouterr().err
    manifest = (out / "snapshot.json").read_text()
    assert "hunter2" not in manifest
    provenance = json.loads(manifest)["provenance"]
    assert provenance["source"] == janitor_db
    assert provenance["filters"]["campaign"] == "lintian-fixes"
    assert provenance["filters"]["sample_codebases"] == 10
    assert provenance["filters"]["seed"] == 4
    assert len(provenance["filters"]["codebases"]) == 10
    assert provenance["recorded_at"]
    assert any("over the sample" in note for note in provenance["details"]["notes"])
    recorded = load_snapshot(out)
    assert len(recorded.codebases) == 150  # all rows: the normalized value needs the maximum
    sampled = set(provenance["filters"]["codebases"])
    assert {c.codebase for c in recorded.candidates} <= sampled
    assert {r.codebase for r in recorded.runs} <= sampled
    assert {c.suite for c in recorded.candidates} == {"lintian-fixes"}


def test_restore_refuses_a_non_empty_database(
    janitor_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["restore", str(VECTORS / "small"), janitor_db]) == 0
    capsys.readouterr()
    assert main(["restore", str(VECTORS / "small"), janitor_db]) == 2
    err = capsys.readouterr().err
    assert "refusing to restore" in err and "already hold rows" in err
    assert len(err.strip().splitlines()) == 1


def test_restore_creates_the_schema_only_when_asked(
    janitor_databases: Any, pg_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "bare_restore_target"
    with pg_server.admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    dsn = pg_server.dsn(name)
    try:
        assert main(["restore", str(VECTORS / "small"), dsn]) == 2
        assert "--create-schema" in capsys.readouterr().err
        assert main(["restore", str(VECTORS / "small"), dsn, "--create-schema"]) == 0
        assert "schema created" in capsys.readouterr().out
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM run").fetchone() == (5892,)
            assert conn.execute(
                "SELECT count(*) FROM all_debian_versions WHERE version < '1.0'::debversion"
            ).fetchone() != (0,)
    finally:
        janitor_databases.drop(dsn)


def test_restore_rejects_rows_the_foreign_keys_would_refuse(janitor_db: str) -> None:
    dataset = load_snapshot(VECTORS / "small")
    broken = Dataset(
        as_of=dataset.as_of,
        codebases=dataset.codebases[1:],
        candidates=dataset.candidates,
        policies=dataset.policies,
        runs=(),
        debian_versions=None,
    )
    missing = dataset.codebases[0].name
    with pytest.raises(InputError, match=f"codebase {missing!r} has no codebase row"):
        restore_dataset(broken, janitor_db)


def test_restore_reports_database_refusals_clearly(janitor_db: str) -> None:
    dataset = load_snapshot(VECTORS / "small")
    bad = Dataset(
        as_of=dataset.as_of,
        codebases=dataset.codebases,
        candidates=(
            dataset.candidates[0].__class__(1, dataset.codebases[0].name, "Bad Suite", "x"),
        ),
        policies=(),
        runs=(),
        debian_versions=None,
    )
    with pytest.raises(InputError, match="the database refused"):
        restore_dataset(bad, janitor_db)
    # Nothing half-restored: the load is one transaction.
    with psycopg.connect(janitor_db) as conn:
        assert conn.execute("SELECT count(*) FROM codebase").fetchone() == (0,)


def test_restore_to_an_unreachable_database_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="cannot connect"):
        restore_dataset(
            load_snapshot(VECTORS / "small"), "postgresql://x@127.0.0.1:1/none?connect_timeout=2"
        )


def test_restored_queue_and_sequences_continue(janitor_db: str) -> None:
    from engines.base import get_engine
    from harness.data.janitor_db import read_dataset

    dataset = load_snapshot(VECTORS / "small")
    first = get_engine("legacy:memory").schedule(dataset)
    with_queue = Dataset(
        as_of=dataset.as_of,
        codebases=dataset.codebases,
        candidates=dataset.candidates,
        policies=dataset.policies,
        runs=dataset.runs,
        debian_versions=dataset.debian_versions,
        queue=tuple(first.queue),
        candidate_row_order=dataset.candidate_row_order,
    )
    restore_dataset(with_queue, janitor_db)
    live = read_dataset(janitor_db, as_of=dataset.as_of)
    assert live.queue == tuple(sorted(first.queue, key=lambda q: q.id))
    with psycopg.connect(janitor_db) as conn:
        next_id = conn.execute("SELECT nextval('queue_id_seq')").fetchone()
        assert next_id == (max(q.id for q in first.queue) + 1,)
    # On a non-empty queue both backends continue from it identically.
    sql_run = get_engine("legacy:sql").schedule(live)
    memory_run = get_engine("legacy:memory").schedule(live)
    assert sql_run.queue == memory_run.queue
