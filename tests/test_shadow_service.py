"""The shadow service against real PostgreSQL servers: cycles, history, report,
metrics, a database that goes away and comes back, SIGTERM mid-cycle."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from conftest import PG_CTL

from harness.cli import main
from harness.data import sources
from harness.data.pgschema import create_janitor_schema
from harness.data.restore import restore_dataset
from harness.data.sources import open_source
from harness.service.config import ServiceConfig, validate
from harness.service.history import read_history
from harness.service.runner import ShadowService

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent


def _populate(dsn: str) -> None:
    """The bundled default scenario, plus a queue production already holds."""
    restore_dataset(open_source("default"), dsn)
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO queue (bucket, codebase, suite, command, priority) "
            "SELECT 'default', codebase, suite, command, id * 10 FROM candidate "
            "WHERE id % 4 = 0 AND change_set IS NULL"
        )


def _change(dsn: str, step: int) -> None:
    """Production moves on: values change, candidates come and go."""
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE candidate SET value = value + %s WHERE id %% 3 = 0", (step * 7,))
        conn.execute(
            "DELETE FROM candidate WHERE id IN (SELECT id FROM candidate ORDER BY id LIMIT 5)"
        )


def _config(dsn: str, state: Path, **changes: Any) -> ServiceConfig:
    base = ServiceConfig(
        dsn=dsn,
        state_dir=state,
        interval_s=0.2,
        backoff_initial_s=0.1,
        backoff_max_s=0.4,
    )
    return validate(replace(base, **changes))


def _records(state: Path) -> list[dict[str, Any]]:
    return list(read_history(state / "history.jsonl").records)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# ---------------------------------------------------------------- cycles


def test_cycles_over_a_changing_database_grow_the_history_and_report(
    janitor_db: str, tmp_path: Path
) -> None:
    _populate(janitor_db)
    state = tmp_path / "state"
    counts = []
    for step in range(3):
        service = ShadowService(_config(janitor_db, state), once=True)
        assert service.run() == 0
        counts.append(len(_records(state)))
        _change(janitor_db, step + 1)
    assert counts == [1, 2, 3]
    records = _records(state)
    assert [r["cycle"] for r in records] == [1, 2, 3]
    assert all(r["status"] == "ok" for r in records)
    # the database changed between cycles, and each record saw its own snapshot
    assert [r["candidates"] for r in records] == [800, 795, 790]
    assert len({r["as_of"] for r in records}) == 3
    if hasattr(sources, "open_input"):  # command sessions: the exported snapshot is named
        assert all(isinstance(r["snapshot_id"], str) for r in records)
    first = records[0]
    # legacy vs new:default: the plan's engine diverges on purpose
    assert first["divergences"]["real"] > 0
    assert first["fields"]["offset"] > 0
    assert sum(c["divergent"] for c in first["campaigns"].values()) == (
        first["divergences"]["real"]
        + first["divergences"]["waived"]
        + first["divergences"]["noise"]
    )
    assert -1.0 <= first["rank"]["kendall_tau_b"] <= 1.0
    assert 0.0 <= first["rank"]["rbo"] <= 1.0
    production = first["production"]
    with psycopg.connect(janitor_db) as conn:
        held = conn.execute("SELECT count(*) FROM queue").fetchone()
    assert held is not None and production["production_queue"] == held[0] > 0
    # the new engine's queue keeps production's items (upserted) and adds its own
    assert production["common"] == held[0] and production["only_production"] == 0
    assert production["new_queue"] == production["common"] + production["only_new"]
    assert first["durations"]["total"] >= first["durations"]["read_s"] > 0
    report = (state / "report.html").read_text()
    assert report.count('class="mark"') > 0
    assert "Divergences per field" in report and "lintian-fixes" in report
    # the standalone command renders the same history
    out = tmp_path / "out.html"
    assert main(["shadow-report", str(state / "history.jsonl"), "--report", str(out)]) == 0
    assert "Rank agreement" in out.read_text()


def test_new_engine_failure_is_caught_and_the_legacy_kept(janitor_db: str, tmp_path: Path) -> None:
    _populate(janitor_db)
    state = tmp_path / "state"
    config = _config(janitor_db, state, new_engine="support_engines:simple:crash")
    assert ShadowService(config, once=True).run() == 0
    (record,) = _records(state)
    assert record["status"] == "ok"
    assert "RuntimeError" in record["new_error"]
    assert record["decision_errors"]["new"] is None
    assert record["decision_errors"]["legacy"] == 0
    assert "divergences" not in record and "production" not in record
    assert "new engine failed" in (state / "report.html").read_text()


def test_metrics_are_served_with_the_plans_names_and_no_password(
    janitor_db: str, tmp_path: Path
) -> None:
    _populate(janitor_db)
    with psycopg.connect(janitor_db, autocommit=True) as conn:
        conn.execute("ALTER USER postgres PASSWORD 'pw-s3cret'")
    try:
        port = _free_port()
        dsn = janitor_db.replace("postgres@", "postgres:pw-s3cret@")
        state = tmp_path / "state"
        service = ShadowService(_config(dsn, state, metrics_port=port, max_cycles=2), once=False)
        scraped: list[str] = []
        original = service._keep

        def keep_and_scrape(record: dict[str, Any]) -> None:
            original(record)
            url = f"http://127.0.0.1:{port}/metrics"
            scraped.append(urllib.request.urlopen(url, timeout=5).read().decode())

        service._keep = keep_and_scrape  # type: ignore[method-assign]
        assert service.run() == 0
    finally:
        with psycopg.connect(janitor_db, autocommit=True) as conn:
            conn.execute("ALTER USER postgres PASSWORD NULL")
    text = scraped[-1]
    for name in (
        "janitor_scheduler_candidates_processed_total{engine=",
        "janitor_scheduler_scheduling_duration_seconds_count",
        "janitor_scheduler_queue_items_added_total",
        'janitor_shadow_cycles_total{status="ok"} 2.0',
        "janitor_shadow_cycle_duration_seconds_count 2.0",
        'janitor_shadow_rank_agreement{against="legacy",measure="kendall_tau_b"}',
        'janitor_shadow_rank_agreement{against="production",measure="rbo"}',
        'janitor_shadow_field_divergences{field="offset"}',
        'janitor_shadow_campaign_divergences{campaign="lintian-fixes"}',
        'janitor_shadow_divergent_candidates{status="real"}',
        "janitor_shadow_failed_cycles_total 0.0",
    ):
        assert name in text, name
    assert 'engine="legacy:memory"' in text and 'engine="new:default"' in text
    for path in state.iterdir():
        if path.is_file():
            assert b"pw-s3cret" not in path.read_bytes(), path
    assert "pw-s3cret" not in text


def test_history_retention_and_cycle_numbers_carry_on(janitor_db: str, tmp_path: Path) -> None:
    _populate(janitor_db)
    state = tmp_path / "state"
    config = _config(janitor_db, state, max_cycles=4, retention_max_records=2)
    assert ShadowService(config).run() == 0
    assert [r["cycle"] for r in _records(state)] == [3, 4]
    assert ShadowService(replace(config, max_cycles=1)).run() == 0
    assert [r["cycle"] for r in _records(state)] == [4, 5]


def test_one_service_per_state_directory(janitor_db: str, tmp_path: Path) -> None:
    _populate(janitor_db)
    state = tmp_path / "state"
    state.mkdir()
    import fcntl

    with open(state / "lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code = main(["shadow", janitor_db, "--state-dir", str(state), "--once"])
    assert code == 2


# ---------------------------------------------------------------- configuration


def test_config_file_keys_and_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.service.config import load_config, override

    good = tmp_path / "good.yaml"
    good.write_text(
        "dsn: postgresql://u:topsecret@db/janitor\ninterval: 5m\n"
        "engines: {new: 'new:parity'}\nretention: {max_age: 30d, max_records: 10}\n"
        "backoff: {initial: 2s, max: 1m}\n"
    )
    config = load_config(good)
    assert config.interval_s == 300 and config.new_engine == "new:parity"
    assert config.retention_max_age_s == 30 * 86400 and config.retention_max_records == 10
    assert (config.backoff_initial_s, config.backoff_max_s) == (2, 60)
    assert override(config, interval_s=10.0, campaign=None).interval_s == 10.0
    sample = ROOT / "harness" / "service.sample.yaml"
    assert load_config(sample).interval_s > 0  # the documented sample is valid as it stands

    for text, needle in (
        ("intervall: 5m\n", "unknown key 'intervall'"),
        ("metrics: {prot: 9}\n", "unknown key 'metrics.prot'"),
        ("interval: soon\n", "key 'interval'"),
        ("metrics: {port: 70000}\n", "key 'metrics.port'"),
        ("report: {every_cycle: 'yes'}\n", "key 'report.every_cycle'"),
        ("dsn: 42\n", "key 'dsn'"),
        ("[1, 2]\n", "expected a mapping"),
        ("interval: 5m\ninterval: 6m\n", "duplicate key 'interval'"),
        ("interval: [5m\n", "invalid YAML: line"),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        assert main(["shadow", "--config", str(bad), "--once"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(bad) in err and needle in err, err
        assert "Traceback" not in err
    secret = tmp_path / "secret.yaml"
    secret.write_text("dsn: [postgresql://u:topsecret@db/x]\n")
    assert main(["shadow", "--config", str(secret), "--once"]) == 2
    assert "topsecret" not in capsys.readouterr().err


# ---------------------------------------------------------------- a restartable server


class RestartablePostgres:
    """A dedicated server the test may stop and start (same port, same data)."""

    def __init__(self) -> None:
        assert PG_CTL is not None
        self.pg_ctl = str(PG_CTL)
        self.root = Path(tempfile.mkdtemp(prefix="shadow-pg-"))
        self.data = self.root / "data"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()
        subprocess.run(
            [
                *self.prefix,
                str(PG_CTL.with_name("initdb")),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
            check=True,
            capture_output=True,
        )
        self.start()
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE janitor")
        with psycopg.connect(self.dsn("janitor")) as conn:
            create_janitor_schema(conn)

    def dsn(self, db: str = "janitor") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *self.prefix,
                self.pg_ctl,
                "-D",
                str(self.data),
                "-o",
                options,
                "-w",
                "-l",
                str(self.root / "log"),
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            check=True,
            capture_output=True,
        )

    def remove(self) -> None:
        subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def restartable_pg() -> Iterator[RestartablePostgres]:
    server = RestartablePostgres()
    try:
        _populate(server.dsn())
        yield server
    finally:
        server.remove()


def _service_thread(service: ShadowService) -> threading.Thread:
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    return thread


def _blocked_reader(dsn: str) -> bool:
    """True once the service's read waits on the lock the test holds."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'shadow-test' AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


def test_database_restarted_between_cycles(
    restartable_pg: RestartablePostgres, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    service = ShadowService(_config(restartable_pg.dsn(), state, interval_s=0.3))
    thread = _service_thread(service)
    try:
        _wait(lambda: (state / "history.jsonl").exists() and len(_records(state)) >= 1)
        restartable_pg.stop()
        _wait(lambda: any(r["status"] == "failed" for r in _records(state)), what="a failed cycle")
        _wait(lambda: sum(r["status"] == "failed" for r in _records(state)) >= 2)
        restartable_pg.start()
        _wait(
            lambda: (
                _records(state)[-1]["status"] == "ok"
                and any(r["status"] == "failed" for r in _records(state))
            ),
            what="recovery",
        )
        assert thread.is_alive()
    finally:
        service.stop.set()
        thread.join(30)
    records = _records(state)
    failed = [r for r in records if r["status"] == "failed"]
    assert failed and all(r["phase"] == "read" for r in failed)
    assert all("SourceError" in r["error"] for r in failed)
    assert records[0]["status"] == "ok" and records[-1]["status"] in ("ok", "abandoned")
    # backoff: failed attempts come at growing intervals, capped
    starts = [r["started_at"] for r in failed]
    assert len(starts) >= 2
    report = (state / "report.html").read_text()
    assert report.count('<path class="failed"') >= len(failed)


def test_database_restarted_inside_a_cycle(
    restartable_pg: RestartablePostgres, tmp_path: Path
) -> None:
    dsn = restartable_pg.dsn() + "?application_name=shadow-test"
    state = tmp_path / "state"
    service = ShadowService(_config(dsn, state, interval_s=0.3, max_cycles=6))
    locker = psycopg.connect(restartable_pg.dsn())
    locker.execute("LOCK TABLE run IN ACCESS EXCLUSIVE MODE")  # the cycle's read will wait here
    thread = _service_thread(service)
    try:
        _wait(lambda: _blocked_reader(restartable_pg.dsn()), what="the read to block")
        restartable_pg.stop()  # the server goes away in the middle of the cycle's read
        restartable_pg.start()
        thread.join(60)
        assert not thread.is_alive()
    finally:
        locker.close()
        service.stop.set()
        thread.join(30)
    records = _records(state)
    statuses = [r["status"] for r in records]
    # the cut cycle fails; attempts while the server starts again may fail too; then it recovers
    first_ok = statuses.index("ok")
    assert first_ok >= 1 and set(statuses[:first_ok]) == {"failed"}
    assert set(statuses[first_ok:]) == {"ok"}
    assert records[0]["phase"] == "read" and "candidates" not in records[0]
    assert "closed the connection" in records[0]["error"]
    assert records[first_ok]["candidates"] == 800


# ---------------------------------------------------------------- SIGTERM


def _spawn(dsn: str, state: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "shadow",
            dsn,
            "--state-dir",
            str(state),
            "--interval",
            "0.5",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("signals", [1, 2])
def test_sigterm_mid_cycle_stops_cleanly(janitor_db: str, tmp_path: Path, signals: int) -> None:
    _populate(janitor_db)
    dsn = janitor_db + "?application_name=shadow-test"
    state = tmp_path / "state"
    proc = _spawn(dsn, state)
    try:
        _wait(lambda: (state / "history.jsonl").exists(), what="a first cycle")
        locker = psycopg.connect(janitor_db)
        locker.execute("LOCK TABLE run IN ACCESS EXCLUSIVE MODE")
        _wait(lambda: _blocked_reader(janitor_db), what="the read to block")
        for _ in range(signals):
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
        if signals == 1:
            # the first signal lets the read finish, then the cycle is abandoned
            assert proc.poll() is None
            locker.close()
        code = proc.wait(30)
        if signals == 2:
            locker.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 0, stderr
    assert "Traceback" not in stderr
    lines = (state / "history.jsonl").read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]  # every line whole
    assert records[0]["status"] == "ok"
    if signals == 1:
        assert records[-1]["status"] == "abandoned"
        assert records[-1]["phase"] == "engines" and "divergences" not in records[-1]
    else:
        assert all(r["status"] == "ok" for r in records)  # the cut cycle left nothing
    assert not (state / "heartbeat.json").exists()
    assert not list(state.glob(".*.janitor-shadow-tmp"))


def test_once_against_an_unreachable_database_records_the_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    dsn = f"postgresql://janitor:pw-hidden@127.0.0.1:{_free_port()}/janitor?connect_timeout=2"
    assert main(["shadow", dsn, "--state-dir", str(state), "--once"]) == 4
    (record,) = _records(state)
    assert record["status"] == "failed" and record["phase"] == "read"
    assert "SourceError: cannot connect" in record["error"]
    assert record["source"] == dsn.replace(":pw-hidden", "")
    err = capsys.readouterr().err
    assert "Traceback" not in err and "pw-hidden" not in err
    for path in state.iterdir():
        assert b"pw-hidden" not in path.read_bytes(), path


def test_sigterm_between_cycles_stops_at_once(janitor_db: str, tmp_path: Path) -> None:
    _populate(janitor_db)
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "harness.cli", "shadow", janitor_db),
            *("--state-dir", str(state), "--interval", "1h"),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    try:
        _wait(lambda: (state / "heartbeat.json").exists() and _heartbeat(state) == "sleeping")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        assert time.monotonic() - sent < 10  # not an hour
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0
    assert [r["status"] for r in _records(state)] == ["ok"]


def _heartbeat(state: Path) -> str | None:
    try:
        return str(orjson.loads((state / "heartbeat.json").read_bytes())["state"])
    except (OSError, orjson.JSONDecodeError):
        return None


def test_nothing_of_a_cycle_is_kept_after_it(janitor_db: str, tmp_path: Path) -> None:
    """Memory stays flat: the legacy keeps its last run index for reruns; the
    service lets it go after each cycle, so one cycle's two million runs are
    not held while the next cycle reads its own."""
    from engines.legacy import memory

    _populate(janitor_db)
    indexed: list[int] = []
    original = memory.run_index

    def watching(runs: Any) -> Any:
        indexed.append(len(runs))
        return original(runs)

    memory.run_index = watching  # type: ignore[assignment]
    try:
        assert ShadowService(_config(janitor_db, tmp_path / "state"), once=True).run() == 0
    finally:
        memory.run_index = original  # type: ignore[assignment]
    assert indexed and indexed[0] > 0  # the legacy did index this cycle's runs
    assert memory._last_index is None
