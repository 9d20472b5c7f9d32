"""The Redis queue against real Redis servers: order, idempotence, workers, crashes, auth."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engines.base import get_engine
from engines.model import BUCKET_RANK, BUCKETS
from harness.data.sources import schedule_source
from harness.enqueue import EnqueueError, EnqueueItem, items_from_schedule, open_target
from harness.enqueue.redis_queue import RedisQueue

pytestmark = pytest.mark.redis

REDIS_SERVER = "redis-server"


def make_items(
    n: int, *, buckets: tuple[str, ...] = BUCKETS, spread: int = 50
) -> list[EnqueueItem]:
    """``n`` distinct entries with many priority ties, in worker order (ties by list order)."""
    items = [
        EnqueueItem(
            codebase=f"pkg{i}",
            campaign=f"camp{i % 3}",
            change_set=None if i % 5 else f"cs{i}",
            command=f"run {i}",
            bucket=buckets[i % len(buckets)],
            priority=(i * 7919) % spread,
            estimated_duration_us=i * 1000,
        )
        for i in range(n)
    ]
    order = sorted(range(n), key=lambda i: (BUCKET_RANK[items[i].bucket], items[i].priority, i))
    return [items[i] for i in order]


def worker_key(item: EnqueueItem) -> tuple[int, int]:
    return (BUCKET_RANK[item.bucket], item.priority)


# ------------------------------------------------------------------ order, idempotence


def test_schedule_round_trips_in_worker_order_and_re_enqueue_changes_nothing(
    redis_url: str,
) -> None:
    schedule = schedule_source(get_engine("new"), "default")
    expected = items_from_schedule(schedule)
    with open_target(redis_url, batch_size=100) as target:
        assert isinstance(target, RedisQueue)
        first = target.apply(target.plan(schedule))
        assert (first.counts.added, first.batches) == (len(expected), 8)
        assert target.entries() == expected
        assert [target.position(i.key) for i in expected[:50]] == list(range(50))

        again = target.plan(schedule)
        assert (again.counts.added, again.counts.moved, again.counts.updated) == (0, 0, 0)
        assert again.counts.unchanged == len(expected)
        second = target.apply(again)
        assert (second.counts.added, second.counts.moved, second.counts.written) == (0, 0, 0)
        assert target.entries() == expected

        taken = [target.take() for _ in expected]
        assert taken == expected
        assert target.take() is None


def test_upsert_rule_across_buckets(redis_url: str) -> None:
    base = make_items(40)
    with open_target(redis_url, batch_size=7) as target:
        target.apply(target.plan(base))
        manual = next(i for i in base if i.bucket == "manual")
        default = next(i for i in base if i.bucket == "default")
        changed = [
            manual._replace(bucket="default", priority=-100),
            default._replace(bucket="control", priority=10**9),
        ]
        plan = target.plan(changed)
        assert [e.action.value for e in plan.entries] == ["keep", "move"]
        result = target.apply(plan)
        assert (result.counts.kept, result.counts.moved) == (1, 1)
        entries = target.entries()
        by_key = {e.key: e for e in entries}
        assert by_key[manual.key] == manual
        assert by_key[default.key].bucket == "control"
        assert len(entries) == len(base)
        # the moved entry is last of control: after all the control entries added before it
        controls = [e for e in entries if e.bucket == "control"]
        assert controls[-1].key == default.key
        assert target.position(default.key) == entries.index(by_key[default.key])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.integers(min_value=2**53 - 3, max_value=2**53 + 3),
            st.integers(min_value=2**62, max_value=2**62 + 2),
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(min_value=1, max_value=9),
)
def test_bigint_priorities_keep_exact_order(
    redis_url: str, priorities: list[int], batch_size: int
) -> None:
    """Beyond 2**53 a double cannot tell neighbours apart; the order must still be exact."""
    items = [
        EnqueueItem(f"pkg{n}", "camp", None, "run", BUCKETS[n % 2], p)
        for n, p in enumerate(priorities)
    ]
    with open_target(redis_url, batch_size=batch_size, key_prefix="bigint") as target:
        assert isinstance(target, RedisQueue)
        target.clear()
        target.apply(target.plan(items))
        expected = sorted(
            range(len(items)), key=lambda n: (BUCKET_RANK[items[n].bucket], items[n].priority, n)
        )
        assert target.entries() == [items[n] for n in expected]


def test_key_prefix_separates_queues(redis_url: str) -> None:
    items = make_items(10)
    with open_target(redis_url, key_prefix="a") as a, open_target(redis_url, key_prefix="b") as b:
        a.apply(a.plan(items))
        assert b.entries() == []
        assert b.plan(items).counts.added == 10


def test_should_stop_ends_between_batches(redis_url: str) -> None:
    items = make_items(50)
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 3

    with open_target(redis_url, batch_size=10) as target:
        result = target.apply(target.plan(items), should_stop=stop)
        assert (result.stopped, result.batches, result.counts.added) == (True, 3, 30)
        assert len(target.entries()) == 30


# ------------------------------------------------------------------ concurrent workers


def _drain(url: str, out: list[EnqueueItem], start: threading.Event) -> None:
    with open_target(url) as target:
        assert isinstance(target, RedisQueue)
        start.wait()
        while (item := target.take()) is not None:
            out.append(item)


def _assert_taken_once_in_order(
    items: list[EnqueueItem], per_worker: list[list[EnqueueItem]]
) -> None:
    taken = [i for chunk in per_worker for i in chunk]
    assert len(taken) == len(items), "an item was lost or taken twice"
    assert sorted(i.key for i in taken) == sorted(i.key for i in items)
    rank = {item.key: n for n, item in enumerate(items)}
    for chunk in per_worker:  # a worker's takes follow the global worker order
        positions = [rank[i.key] for i in chunk]
        assert positions == sorted(positions)


def test_concurrent_threads_take_each_item_once_in_order(redis_url: str) -> None:
    items = make_items(3000)
    with open_target(redis_url, batch_size=500) as target:
        target.apply(target.plan(items))
    start = threading.Event()
    per_worker: list[list[EnqueueItem]] = [[] for _ in range(8)]
    threads = [threading.Thread(target=_drain, args=(redis_url, out, start)) for out in per_worker]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(60)
    _assert_taken_once_in_order(items, per_worker)
    assert all(per_worker), "some worker never got an item: not concurrent"


def _drain_process(url: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    with open_target(url) as target:
        assert isinstance(target, RedisQueue)
        keys = []
        while (item := target.take()) is not None:
            keys.append(item)
        queue.put(keys)


def test_concurrent_processes_take_each_item_once(redis_url: str) -> None:
    items = make_items(2000)
    with open_target(redis_url) as target:
        target.apply(target.plan(items))
    ctx = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_drain_process, args=(redis_url, results)) for _ in range(4)]
    for p in procs:
        p.start()
    per_worker = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    _assert_taken_once_in_order(items, per_worker)


def test_workers_taking_while_batches_are_written_lose_nothing(redis_url: str) -> None:
    """Takes between batches force WATCH retries; every item ends taken or queued, once."""
    items = make_items(4000)
    stop = threading.Event()
    taken: list[EnqueueItem] = []

    def worker() -> None:
        with open_target(redis_url) as target:
            assert isinstance(target, RedisQueue)
            while not stop.is_set():
                item = target.take()
                if item is not None:
                    taken.append(item)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        with open_target(redis_url, batch_size=200) as target:
            result = target.apply(target.plan(items))
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert result.counts.added == len(items)
    with open_target(redis_url) as target:
        remaining = target.entries()
    keys = [i.key for i in taken] + [i.key for i in remaining]
    assert len(keys) == len(set(keys)) == len(items)
    assert taken, "the workers took nothing while the batches were written"


# ------------------------------------------------------------------ own servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server(directory: Path, port: int, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of our own (so that the test may kill it), gone at the end."""
    proc = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port, password=_password(args))
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _password(args: tuple[str, ...]) -> str | None:
    return args[args.index("--requirepass") + 1] if "--requirepass" in args else None


DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


def test_redis_killed_mid_batch_keeps_whole_batches_and_a_rerun_completes(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    batch = 4000
    items = make_items(60_000, spread=400)
    batches = [items[n : n + batch] for n in range(0, len(items), batch)]
    failure: list[BaseException] = []

    def write() -> None:
        try:
            with open_target(url, batch_size=batch) as target:
                target.apply(target.plan(items))
        except EnqueueError as exc:
            failure.append(exc)

    with redis_server(tmp_path, port, *DURABLE) as proc:
        writer = threading.Thread(target=write)
        watcher = redis.Redis.from_url(url)
        writer.start()
        while watcher.hlen("queue:items") < 2 * batch and writer.is_alive():
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        writer.join(60)
    assert failure, "the writer finished before the kill: the test proved nothing"
    assert "batches 1-" in str(failure[0])

    with redis_server(tmp_path, port, *DURABLE), open_target(url) as target:
        assert isinstance(target, RedisQueue)
        present = {i.key for i in target.entries()}
        assert len(present) == len(target)
        whole = [sum(i.key in present for i in b) for b in batches]
        assert all(n in (0, len(b)) for n, b in zip(whole, batches, strict=True)), whole
        assert any(whole), "nothing survived the kill although batches had been written"
        rerun = target.apply(target.plan(items))
        assert rerun.counts.added == len(items) - len(present)
        assert rerun.counts.unchanged == len(present)
        assert target.entries() == items
        assert target.apply(target.plan(items)).counts.written == 0


def test_password_urls_work_and_errors_never_show_the_password(tmp_path: Path) -> None:
    port = free_port()
    secret = "s3cr@t:pw"
    quoted = "s3cr%40t%3Apw"
    with redis_server(tmp_path, port, "--requirepass", secret):
        with open_target(f"redis://:{quoted}@127.0.0.1:{port}/0") as target:
            target.apply(target.plan(make_items(5)))
            assert len(target.entries()) == 5
            assert secret not in target.url and quoted not in target.url
        with pytest.raises(EnqueueError) as caught:
            open_target(f"redis://:wrong{quoted}@127.0.0.1:{port}/0")
        message = str(caught.value)
        assert "127.0.0.1" in message and "wrong" not in message and quoted not in message


def _certificates(directory: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl not found: install the Debian package openssl", pytrace=False)
    paths = {
        name: directory / name for name in ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt")
    }
    (directory / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    steps = [
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            paths["ca.key"],
            "-out",
            paths["ca.crt"],
            "-days",
            "2",
            "-subj",
            "/CN=janitor-shadow test CA",
        ],
        [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            paths["srv.key"],
            "-out",
            paths["srv.csr"],
            "-subj",
            "/CN=127.0.0.1",
        ],
        [
            "x509",
            "-req",
            "-in",
            paths["srv.csr"],
            "-CA",
            paths["ca.crt"],
            "-CAkey",
            paths["ca.key"],
            "-CAcreateserial",
            "-out",
            paths["srv.crt"],
            "-days",
            "2",
            "-extfile",
            directory / "ext",
        ],
    ]
    for step in steps:
        subprocess.run(["openssl", *map(str, step)], check=True, capture_output=True)
    return paths


def test_tls_with_password(tmp_path: Path) -> None:
    certs = _certificates(tmp_path)
    tls_port = free_port()
    args = (
        "--tls-port",
        str(tls_port),
        "--tls-cert-file",
        str(certs["srv.crt"]),
        "--tls-key-file",
        str(certs["srv.key"]),
        "--tls-ca-cert-file",
        str(certs["ca.crt"]),
        "--tls-auth-clients",
        "no",
        "--requirepass",
        "tls-secret",
    )
    url = f"rediss://:tls-secret@127.0.0.1:{tls_port}/0?ssl_ca_certs={certs['ca.crt']}"
    with redis_server(tmp_path, free_port(), *args):
        with open_target(url) as target:
            target.apply(target.plan(make_items(20)))
            assert target.entries() == make_items(20)
            assert target.url == f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={certs['ca.crt']}"
        with pytest.raises(EnqueueError) as caught:  # plain text to the TLS port
            open_target(f"redis://:tls-secret@127.0.0.1:{tls_port}/0?socket_timeout=2")
        assert "tls-secret" not in str(caught.value)


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(EnqueueError, match=f"cannot connect to redis://127.0.0.1:{port}/0"):
        open_target(f"redis://:pw@127.0.0.1:{port}/0")
