"""One snapshot per command, while another connection writes: no torn read.

A writer thread keeps inserting and deleting codebases, candidates and runs
(and runs of the restored candidates) in its own transactions, as fast as it
can, while the user's commands read the database. Each writer transaction
adds one candidate with exactly ``RUNS_PER_WRITER_CANDIDATE`` runs and
removes the oldest such candidate with all its runs, so in every consistent
state each writer candidate has exactly that many runs: a command whose
connections saw different states decides one with another count. And both
engines of a comparison must agree, as they do on a database at rest.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from paths import ROOT, VECTORS

from harness.cli import main
from harness.data.restore import restore_dataset
from harness.data.schedule_json import read_schedule
from harness.data.snapshot import load_snapshot

pytestmark = pytest.mark.postgres

RUNS_PER_WRITER_CANDIDATE = 3
#: Writer candidates alive at once.
ALIVE = 15
CAMPAIGN = "lintian-fixes"
WAIVERS = str(ROOT / "scenarios" / "waivers" / "legacy-errors.yaml")
AS_OF = "2025-06-01T00:00:00"


class Writer:
    """Inserts and deletes rows in a loop on its own connection until stopped."""

    def __init__(self, dsn: str, as_of: datetime, churn: str) -> None:
        self.dsn = dsn
        self.as_of = as_of
        self.churn = churn  # a restored codebase whose runs come and go
        self.commits = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="writer", daemon=True)

    def __enter__(self) -> Writer:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO named_publish_policy (name, per_branch_policy) VALUES "
                "('writer', ARRAY[ROW('main', 'propose', NULL)]::branch_publish_policy[])"
            )
            conn.execute("INSERT INTO change_set (id, campaign) VALUES ('writer', %s)", (CAMPAIGN,))
        self._thread.start()
        # Let it get going before the command starts.
        while self.commits < ALIVE and self.error is None:
            self._stop.wait(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.error is not None:
            raise AssertionError(f"the writer failed: {self.error!r}")
        assert self.commits > ALIVE, "the writer never got going"

    def _loop(self) -> None:
        try:
            with psycopg.connect(self.dsn) as conn:
                i = 0
                while not self._stop.is_set():
                    with conn.transaction():
                        self._step(conn, i)
                    self.commits += 1
                    i += 1
        except BaseException as exc:  # reported by __exit__
            self.error = exc

    def _step(self, conn: psycopg.Connection, i: int) -> None:
        name = f"w-{i}"
        conn.execute("INSERT INTO codebase (name, value) VALUES (%s, %s)", (name, 1 + i % 7))
        conn.execute(
            "INSERT INTO candidate (codebase, suite, value, success_chance, command, "
            "publish_policy) VALUES (%s, %s, %s, 0.5, 'lintian-brush', 'writer')",
            (name, CAMPAIGN, 10 + i % 50),
        )
        for k in range(RUNS_PER_WRITER_CANDIDATE):
            start = self.as_of - timedelta(hours=k + 1, minutes=i % 60)
            conn.execute(
                "INSERT INTO run (id, command, start_time, finish_time, result_code, suite, "
                "change_set, codebase, logfilenames) "
                "VALUES (%s, 'lintian-brush', %s, %s, %s, %s, 'writer', %s, '{}')",
                (
                    f"{name}-{k}",
                    start,
                    start + timedelta(minutes=5 + (i + k) % 17),
                    "success" if (i + k) % 3 else "build-failed",
                    CAMPAIGN,
                    name,
                ),
            )
        gone = f"w-{i - ALIVE}"
        conn.execute("DELETE FROM run WHERE codebase = %s", (gone,))
        conn.execute("DELETE FROM codebase WHERE name = %s", (gone,))  # cascades to candidate
        # A restored candidate's run history changes too.
        if i % 2:
            conn.execute("DELETE FROM run WHERE id = %s", (f"churn-{i - 1}",))
        else:
            start = self.as_of - timedelta(minutes=30 + i % 90)
            conn.execute(
                "INSERT INTO run (id, command, start_time, finish_time, result_code, suite, "
                "change_set, codebase, logfilenames) "
                "VALUES (%s, 'x', %s, %s, 'success', %s, 'writer', %s, '{}')",
                (f"churn-{i}", start, start + timedelta(minutes=3), CAMPAIGN, self.churn),
            )


@pytest.fixture
def busy_db(janitor_db: str) -> Iterator[str]:
    """The small golden vector restored, with the writer running all along."""
    dataset = load_snapshot(VECTORS / "small")
    restore_dataset(dataset, janitor_db)
    churn = next(c.codebase for c in dataset.joined_candidates if c.suite == CAMPAIGN)
    with Writer(janitor_db, dataset.as_of, churn):
        yield janitor_db


def _writer_counts(decisions: Any) -> dict[str, int | None]:
    return {d.codebase: d.total_previous_runs for d in decisions if d.codebase.startswith("w-")}


def _assert_consistent(decisions: Any) -> None:
    """Every writer candidate decided with exactly its runs, and some were decided."""
    counts = _writer_counts(decisions)
    assert len(counts) == ALIVE
    assert set(counts.values()) == {RUNS_PER_WRITER_CANDIDATE}, counts


def test_schedule_new_engine_reads_one_snapshot(busy_db: str, tmp_path: Path) -> None:
    for attempt in range(3):
        out = tmp_path / f"s{attempt}.json"
        assert main(["schedule", busy_db, "--engine", "new:parity", "--json", str(out)]) == 0
        schedule = read_schedule(out)
        _assert_consistent(schedule.decisions)
        details = schedule.provenance.details if schedule.provenance else {}
        assert details["snapshot"] and details["read_at"]


def test_schedule_legacy_sql_reads_one_snapshot(busy_db: str, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    assert main(["schedule", busy_db, "--engine", "legacy:sql", "--json", str(out)]) == 0
    _assert_consistent(read_schedule(out).decisions)


@pytest.mark.parametrize("reference", ["legacy", "legacy:sql"])
def test_compare_engines_agree_while_the_database_changes(
    busy_db: str, reference: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for attempt in range(2):
        summary = tmp_path / f"c{attempt}.json"
        code = main(
            [
                "compare",
                busy_db,
                "--a",
                reference,
                "--b",
                "new:parity",
                "--waivers",
                WAIVERS,
                "--as-of",
                AS_OF,
                "--json",
                str(summary),
            ]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        counts = json.loads(summary.read_text())["counts"]
        assert counts["missing"] == counts["extra"] == 0, counts


def test_gate_accept_and_check_read_one_snapshot(busy_db: str, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    args = ["--engine", "new:parity", "--baseline", str(baseline), "--as-of", AS_OF]
    assert main(["gate", "accept", busy_db, *args]) == 0
    _assert_consistent(read_schedule(baseline).decisions)
    # the database moved on: the gate may diverge from the baseline, but never crash
    assert main(["gate", busy_db, *args, "--budget", "1000000"]) == 0


@pytest.mark.parametrize("mode", ["new", "shadow"])
def test_run_reads_one_snapshot(busy_db: str, mode: str, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    args = ["--mode", mode, "--engine", "new:parity", "--as-of", AS_OF, "--json", str(out)]
    code = main(["run", busy_db, *args])
    assert code == 0
    schedule = read_schedule(out)
    _assert_consistent(schedule.decisions)
    assert schedule.as_of == datetime.fromisoformat(AS_OF)


def test_record_reads_one_snapshot(busy_db: str, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    assert main(["record", busy_db, str(out)]) == 0
    dataset = load_snapshot(out)
    writer = {c.codebase for c in dataset.candidates if c.codebase.startswith("w-")}
    assert len(writer) == ALIVE
    runs = [r for r in dataset.runs if r.codebase in writer]
    assert len(runs) == ALIVE * RUNS_PER_WRITER_CANDIDATE
    assert dataset.provenance.details["snapshot"]
    assert "read_at" in dataset.provenance.details


# ----------------------------------------------- every connection, one snapshot


@contextmanager
def _snapshots_seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The ``txid_current_snapshot()`` of every transaction the readers begin."""
    from harness.data import janitor_db

    seen: list[str] = []
    lock = threading.Lock()
    original: Callable[..., None] = janitor_db.begin_read_only

    def recording(conn: psycopg.Connection, snapshot: str | None = None) -> None:
        original(conn, snapshot)
        row = conn.execute("SELECT txid_current_snapshot()::text").fetchone()
        assert row is not None
        with lock:
            seen.append(row[0])

    monkeypatch.setattr(janitor_db, "begin_read_only", recording)
    yield seen


@pytest.mark.parametrize(
    ("argv", "connections"),
    [
        # the session + two aggregate scans
        (["schedule", "{dsn}", "--engine", "new:parity"], 3),
        # session + legacy:sql, new's two scans, two legacy:sql noise reruns
        (["compare", "{dsn}", "--a", "legacy:sql", "--b", "new:parity"], 6),
        # session + the new engine's scans, three times (fresh and two noise reruns)
        (["gate", "{dsn}", "--engine", "new:parity", "--baseline", "{baseline}"], 7),
        (["run", "{dsn}", "--mode", "shadow", "--engine", "new:parity"], 3),
    ],
)
def test_every_connection_of_a_command_shares_its_snapshot(
    busy_db: str,
    argv: list[str],
    connections: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    baseline = tmp_path / "baseline.json"
    assert main(["schedule", busy_db, "--engine", "new:parity", "--json", str(baseline)]) == 0
    with _snapshots_seen(monkeypatch) as seen:
        args = [a.format(dsn=busy_db, baseline=baseline) for a in argv]
        assert main([*args, "--budget", "1000000"] if args[0] == "gate" else args) in (0, 1)
    assert len(seen) >= connections, seen
    assert len(set(seen)) == 1, seen


def test_a_joined_connection_does_not_see_later_commits(janitor_db: str) -> None:
    from harness.data.janitor_db import open_session

    with open_session(janitor_db) as session:
        before = session.connection.execute("SELECT count(*) FROM codebase").fetchone()
        with psycopg.connect(janitor_db, autocommit=True) as writer:
            writer.execute("INSERT INTO codebase (name) VALUES ('late')")
        with session.joined() as other:
            assert other.execute("SELECT count(*) FROM codebase").fetchone() == before
            assert other.execute("SHOW transaction_read_only").fetchone() == ("on",)
            assert other.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)


def test_no_password_in_provenance_or_errors(janitor_db: str) -> None:
    from harness.data.janitor_db import joined_connection, open_session
    from harness.errors import SourceError

    # the test server trusts local connections: any password is accepted
    secret = janitor_db.replace("postgres@", "postgres:s3cret-pw@")
    assert secret != janitor_db
    with open_session(secret) as session:
        rows = session.rows()
        assert "s3cret" not in json.dumps(rows.provenance.to_json()) + session.source
        assert rows.provenance.details["snapshot"] == session.snapshot
        with pytest.raises(SourceError) as caught, joined_connection(secret, "no-such-snapshot"):
            pass
    assert "s3cret" not in str(caught.value)
    assert "cannot join the command's snapshot" in str(caught.value)


def test_engines_declare_what_they_read() -> None:
    from engines.base import ReadsDatabase, ReadsSnapshot, get_engine

    new, memory, sql = (get_engine(n) for n in ("new:parity", "legacy", "legacy:sql"))
    assert isinstance(new, ReadsDatabase) and isinstance(new, ReadsSnapshot)
    assert not isinstance(memory, ReadsDatabase) and not isinstance(memory, ReadsSnapshot)
    assert isinstance(sql, ReadsDatabase) and not isinstance(sql, ReadsSnapshot)


@pytest.mark.parametrize(
    ("a", "b", "full_reads"),
    [("legacy", "new:parity", True), ("legacy:sql", "new:parity", False)],
)
def test_compare_reads_the_runs_only_for_an_engine_that_needs_them(
    janitor_db: str, a: str, b: str, full_reads: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.data.janitor_db import JanitorSession

    restore_dataset(load_snapshot(VECTORS / "small"), janitor_db)
    reads: list[bool] = []
    original = JanitorSession._read

    def counting(self: JanitorSession, *, runs: bool) -> Any:
        reads.append(runs)
        return original(self, runs=runs)

    monkeypatch.setattr(JanitorSession, "_read", counting)
    argv = ["compare", janitor_db, "--a", a, "--b", b, "--waivers", WAIVERS, "--as-of", AS_OF]
    assert main(argv) == 0
    # one read of the tables in all, with every run only when an engine needs them
    assert reads == ([True] if full_reads else [False])
