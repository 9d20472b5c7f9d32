"""new:parity against the golden vectors: every number, the error set, the queue order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from paths import VECTORS

from engines.model import Dataset, Decision, QueueItem, Schedule
from engines.new import create_engine
from harness.data.snapshot import load_snapshot

SETS = ("small", "quirks")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module", params=SETS)
def vector(request: pytest.FixtureRequest) -> tuple[str, Dataset, Schedule]:
    dataset = load_snapshot(VECTORS / request.param)
    return request.param, dataset, create_engine("parity").schedule(dataset)


def _close(expected: float, actual: float | None) -> bool:
    return actual is not None and (
        expected == actual or abs(expected - actual) <= 1e-9 * max(abs(expected), abs(actual))
    )


def test_every_non_error_candidate_matches_bit_for_bit(
    vector: tuple[str, Dataset, Schedule],
) -> None:
    name, _, schedule = vector
    expected = _jsonl(VECTORS / name / "expected" / "candidates.jsonl")
    assert len(expected) == len(schedule.decisions)
    checked = 0
    for row, d in zip(expected, schedule.decisions, strict=True):
        assert (row["codebase"], row["campaign"], row["change_set"]) == tuple(d.key)
        if row["error"] is not None:
            continue
        checked += 1
        assert d.value == row["value_with_publish_bonus"], row["seq"]
        assert d.total_previous_runs == row["total_previous_runs"], row["seq"]
        assert d.estimated_duration_us == row["estimated_duration_us"], row["seq"]
        assert d.normalized_codebase_value == row["normalized_codebase_value"], row["seq"]
        # bit for bit, stricter than the 1e-9 the checker allows
        assert d.success_probability == row["probability"], row["seq"]
        assert d.offset == row["offset"], row["seq"]
        assert _close(row["offset"], d.offset)
    assert checked > 200


def test_the_legacy_failures_are_recognised_and_still_decided(
    vector: tuple[str, Dataset, Schedule],
) -> None:
    name, _, schedule = vector
    expected = _jsonl(VECTORS / name / "expected" / "candidates.jsonl")
    for row, d in zip(expected, schedule.decisions, strict=True):
        flagged = "legacy_failure" in d.factors
        assert flagged == (row["error"] is not None), (row["seq"], row["error"], d.reasons)
        # the new engine answers even where the legacy raises
        assert d.error is None
        assert d.offset is not None and d.offset > 0
        assert d.success_probability is not None and 0.0 <= d.success_probability <= 1.0
        if row["error"] is not None:
            assert any("the legacy would raise" in r for r in d.reasons)
            assert d.bucket is None  # parity does not queue them (queue_legacy_failures: false)


def _kind(error: dict[str, Any]) -> str:
    message = error["message"]
    if "push-derived" in message:
        return "push-derived"
    if "NoneType" in message:
        return "TypeError"
    if error["type"].endswith("CandidateUnavailable"):
        return "CandidateUnavailable"
    if "debversion <<" in message:
        return "<<"
    if "debversion >>" in message:
        return ">>"
    return error["type"]


def test_quirk_the_reasons_name_the_legacys_failure() -> None:
    dataset = load_snapshot(VECTORS / "quirks")
    schedule = create_engine("parity").schedule(dataset)
    expected = _jsonl(VECTORS / "quirks" / "expected" / "candidates.jsonl")
    kinds = {"push-derived": 0, "TypeError": 0, "CandidateUnavailable": 0, "<<": 0, ">>": 0}
    for row, d in zip(expected, schedule.decisions, strict=True):
        if row["error"] is None:
            continue
        kind = _kind(row["error"])
        failure = str(d.factors["legacy_failure"])
        kinds[kind] += 1
        if kind == "push-derived":
            assert "KeyError: 'push-derived'" in failure
            assert d.publish_bonus is not None and d.publish_bonus >= 500  # valued like push
        elif kind == "TypeError":
            assert "value is NULL" in failure
        elif kind == "CandidateUnavailable":
            assert "CandidateUnavailable" in failure
        else:
            assert f"debversion {kind} unknown" in failure
    assert all(count > 0 for count in kinds.values()), kinds


def _queue_rows(items: list[QueueItem]) -> list[tuple[Any, ...]]:
    return [
        (
            q.id,
            q.codebase,
            q.suite,
            q.bucket,
            q.priority,
            q.estimated_duration_us,
            q.context,
            q.command,
            q.requester,
            q.refresh,
            q.change_set,
        )
        for q in items
    ]


def _expected_queue(name: str) -> list[tuple[Any, ...]]:
    folder = VECTORS / name / "expected"
    path = folder / "queue_excluding_failures.jsonl"
    if not path.exists():
        path = folder / "queue.jsonl"
    return [
        (
            r["id"],
            r["codebase"],
            r["suite"],
            r["bucket"],
            r["priority"],
            r["estimated_duration_us"],
            r["context"],
            r["command"],
            r["requester"],
            r["refresh"],
            r["change_set"],
        )
        for r in _jsonl(path)
    ]


def test_queue_equals_the_legacys_row_for_row(vector: tuple[str, Dataset, Schedule]) -> None:
    name, _, schedule = vector
    assert _queue_rows(schedule.queue) == _expected_queue(name)


def test_quirk_first_processed_candidate_heads_the_queue() -> None:
    dataset = load_snapshot(VECTORS / "small")
    schedule = create_engine("parity").schedule(dataset)
    first: Decision = schedule.decisions[0]
    assert schedule.queue[0].key[:2] == first.key[:2]
    assert schedule.queue[0].priority == int(first.offset or 0)


def test_every_number_has_a_reason(vector: tuple[str, Dataset, Schedule]) -> None:
    _, _, schedule = vector
    for d in schedule.decisions:
        text = " | ".join(d.reasons)
        for needle in (
            "probability",
            "duration",
            "offset",
            "normalized codebase value",
            "previous runs",
        ):
            assert needle in text, (needle, d.reasons)
        assert {"cost", "worth", "success_probability"} <= set(d.factors)


def test_schedule_settings_spell_out_the_duration_unit() -> None:
    schedule = create_engine("parity").schedule(load_snapshot(VECTORS / "small"))
    assert schedule.settings["default_estimated_duration_minutes"] == 0.25
    assert schedule.settings["default_estimated_duration_seconds"] == 15.0
    assert schedule.settings["units"]["default_estimated_duration"] == "minutes"


def test_a_parquet_run_table_is_read_column_wise_with_the_same_result(tmp_path: Path) -> None:
    from engines.new.from_snapshot import schedule_snapshot
    from harness.data.snapshot import write_snapshot

    dataset = load_snapshot(VECTORS / "quirks")
    folder = write_snapshot(dataset, tmp_path / "snap", columnar_runs=True)
    assert (folder / "run.parquet").exists()
    engine = create_engine("parity")
    columnar = schedule_snapshot(engine, folder)
    reference = engine.schedule(dataset)
    assert [
        (d.key, d.success_probability, d.estimated_duration_us, d.offset, d.bucket, d.reasons)
        for d in columnar.decisions
    ] == [
        (d.key, d.success_probability, d.estimated_duration_us, d.offset, d.bucket, d.reasons)
        for d in reference.decisions
    ]
    assert [d.factors for d in columnar.decisions] == [d.factors for d in reference.decisions]
    assert [(q.id, q.key, q.priority) for q in columnar.queue] == [
        (q.id, q.key, q.priority) for q in reference.queue
    ]


def test_a_snapshot_already_loaded_is_not_read_again_but_for_its_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engines.new import from_snapshot
    from harness.data.snapshot import write_snapshot

    folder = write_snapshot(
        load_snapshot(VECTORS / "quirks"), tmp_path / "snap", columnar_runs=True
    )
    engine = create_engine("parity")
    alone = from_snapshot.schedule_snapshot(engine, folder)
    loaded = load_snapshot(folder)

    def no_second_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the snapshot's tables were read again")

    monkeypatch.setattr(from_snapshot, "load_snapshot", no_second_read)
    given = from_snapshot.schedule_snapshot(engine, folder, rows=loaded)
    assert given.decisions == alone.decisions and given.queue == alone.queue


def forget_run_hash(folder: Path) -> None:
    """As if the run table had been written by hand: the manifest no longer vouches for it
    (else its sha256 would refuse the edited file before the checks under test)."""
    import json

    manifest = json.loads((folder / "snapshot.json").read_text())
    manifest["tables"].pop("run")
    (folder / "snapshot.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage", ["garbage", "half the rows"])
def test_a_damaged_run_table_is_named_by_its_hash_before_anything_it_holds(
    tmp_path: Path, damage: str
) -> None:
    """The hash is checked beside the reading: a file that cannot be read at all, or
    reads well but is not the recorded one, is still reported as changed."""
    import pyarrow.parquet as pq

    from engines.new.from_snapshot import schedule_snapshot
    from harness.data.snapshot import write_snapshot
    from harness.errors import InputError

    folder = write_snapshot(
        load_snapshot(VECTORS / "quirks"), tmp_path / "snap", columnar_runs=True
    )
    if damage == "garbage":
        (folder / "run.parquet").write_bytes(b"PAR1 not really")
    else:
        table = pq.read_table(folder / "run.parquet")
        pq.write_table(table.slice(0, table.num_rows // 2), folder / "run.parquet")
    with pytest.raises(InputError) as caught:
        schedule_snapshot(create_engine("parity"), folder)
    assert "run.parquet" in str(caught.value)
    assert "sha256 is not the one in the manifest" in str(caught.value)


def test_a_parquet_run_table_without_a_column_is_a_clear_input_error(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from engines.new.from_snapshot import schedule_snapshot
    from harness.data.snapshot import write_snapshot
    from harness.errors import InputError

    folder = write_snapshot(load_snapshot(VECTORS / "small"), tmp_path / "snap", columnar_runs=True)
    table = pq.read_table(folder / "run.parquet")
    pq.write_table(table.drop_columns(["suite"]), folder / "run.parquet")
    forget_run_hash(folder)
    with pytest.raises(InputError) as caught:
        schedule_snapshot(create_engine("parity"), folder)
    assert "run.parquet" in str(caught.value) and "suite" in str(caught.value)


def test_a_parquet_run_table_with_a_null_campaign_is_a_clear_input_error(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from engines.new.from_snapshot import schedule_snapshot
    from harness.data.snapshot import write_snapshot
    from harness.errors import InputError

    folder = write_snapshot(load_snapshot(VECTORS / "small"), tmp_path / "snap", columnar_runs=True)
    table = pq.read_table(folder / "run.parquet")
    suites = table.column("suite").to_pylist()
    suites[1] = None
    table = table.set_column(table.schema.get_field_index("suite"), "suite", pa.array(suites))
    pq.write_table(table, folder / "run.parquet")
    forget_run_hash(folder)
    with pytest.raises(InputError) as caught:
        schedule_snapshot(create_engine("parity"), folder)
    assert "run.parquet" in str(caught.value) and "row 1: column suite is NULL" in str(caught.value)


def test_the_verdict_worker_answers_as_the_engine_would(tmp_path: Path) -> None:
    import orjson
    import pyarrow.parquet as pq

    from engines.new.aggregates import DEPS_UNSATISFIED, UNKNOWN_VERDICT
    from engines.new.dependencies import DependencyResolver
    from engines.new.success import details_verdict
    from engines.new.verdict_worker import VerdictWorker, row_verdicts
    from harness.data.snapshot import write_snapshot

    dataset = load_snapshot(VECTORS / "quirks")
    folder = write_snapshot(dataset, tmp_path / "snap", columnar_runs=True)
    resolver = DependencyResolver({}, dataset.debian_versions_by_source)
    table = pq.read_table(folder / "run.parquet")
    # worked out in this process; the worker's answer is held to it below
    verdicts = row_verdicts(folder / "run.parquet", folder).by_text(table.column("failure_details"))
    assert verdicts  # the quirks exercise install-deps failures
    for text, verdict in verdicts.items():
        assert verdict == details_verdict(resolver, orjson.loads(text))
    by_row = VerdictWorker(folder / "run.parquet", folder).verdicts()
    assert by_row is not None
    codes = by_row.codes.tolist()
    assert len(codes) == table.num_rows
    rows = zip(
        table.column("result_code").to_pylist(),
        table.column("failure_details").to_pylist(),
        codes,
        strict=True,
    )
    for code, text, verdict in rows:
        if code == DEPS_UNSATISFIED and text is not None:
            assert by_row.outcomes[verdict] == details_verdict(resolver, orjson.loads(text))
        else:
            assert verdict == UNKNOWN_VERDICT
    assert by_row.by_text(table.column("failure_details")) == verdicts


def test_a_failing_verdict_worker_only_costs_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from engines.new.verdict_worker import VerdictWorker

    worker = VerdictWorker(tmp_path / "missing.parquet", tmp_path)
    assert worker.verdicts() is None
    assert "verdict worker failed" in caplog.text


def test_the_verdict_worker_is_not_shadowed_by_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``python -m`` puts the working directory first on the path: a folder there
    named like one of the project's packages must not replace it in the worker."""
    from engines.new.verdict_worker import VerdictWorker
    from harness.data.snapshot import write_snapshot

    folder = write_snapshot(
        load_snapshot(VECTORS / "quirks"), tmp_path / "snap", columnar_runs=True
    )
    shadow = tmp_path / "cwd" / "engines"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('the wrong engines package')\n")
    monkeypatch.chdir(shadow.parent)
    assert VerdictWorker(folder / "run.parquet", folder).verdicts() is not None
    assert "verdict worker" not in caplog.text


def test_a_verdict_worker_answering_nonsense_only_costs_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import subprocess
    import sys

    from engines.new.verdict_worker import VerdictWorker

    worker = VerdictWorker(tmp_path / "missing.parquet", tmp_path)
    worker.stop()
    for answer in (
        "print('not a pickle')",
        "import pickle, sys; sys.stdout.buffer.write(pickle.dumps({}))",
    ):
        worker.process = subprocess.Popen(
            [sys.executable, "-c", answer], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert worker.verdicts() is None
    assert "answered nonsense" in caplog.text and "answered a dict" in caplog.text


def test_verdicts_of_another_run_table_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that read a run table of another length (the file changed under it)
    is not trusted row by row: the engine decides those failures itself."""
    import numpy as np

    from engines.new import from_snapshot
    from engines.new.aggregates import RowVerdicts
    from harness.data.snapshot import write_snapshot

    folder = write_snapshot(
        load_snapshot(VECTORS / "quirks"), tmp_path / "snap", columnar_runs=True
    )
    expected = from_snapshot.schedule_snapshot(create_engine("parity"), folder)

    class Elsewhere:
        def __init__(self, *args: object) -> None:
            pass

        def verdicts(self) -> RowVerdicts:
            return RowVerdicts(np.zeros(3, dtype=np.int32), [(True, None)])

        def stop(self) -> None:
            pass

    monkeypatch.setattr(from_snapshot, "VerdictWorker", Elsewhere)
    got = from_snapshot.schedule_snapshot(create_engine("parity"), folder)
    assert got.decisions == expected.decisions
    assert "read another run table" in caplog.text


def test_run_columns_read_the_same_from_plain_or_dictionary_chunks(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from engines.new.aggregates import RunColumns
    from harness.data.snapshot import write_snapshot

    folder = write_snapshot(
        load_snapshot(VECTORS / "quirks"), tmp_path / "snap", columnar_runs=True
    )
    table = pq.read_table(folder / "run.parquet")
    third = max(table.num_rows // 3, 1)
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=third))  # several chunks
    assert chunked.column("codebase").num_chunks > 1
    pq.write_table(chunked, folder / "chunked.parquet", row_group_size=third)
    expected = RunColumns.from_runs(load_snapshot(VECTORS / "quirks").runs)
    for columns in (
        RunColumns.from_arrow(chunked),
        RunColumns.read_parquet(folder / "chunked.parquet"),
    ):
        for name in ("codebase", "suite", "result_code", "instigated_context", "context"):
            mine, theirs = getattr(columns, name), getattr(expected, name)
            assert [mine.names[c] if c >= 0 else None for c in mine.codes.tolist()] == [
                theirs.names[c] if c >= 0 else None for c in theirs.codes.tolist()
            ]


def test_schedule_source_hands_a_snapshot_directory_to_the_new_engine(tmp_path: Path) -> None:
    from dataclasses import replace
    from datetime import datetime

    from harness.data.snapshot import write_snapshot
    from harness.data.sources import schedule_source

    dataset = load_snapshot(VECTORS / "quirks")
    folder = write_snapshot(dataset, tmp_path / "snap", columnar_runs=True)
    engine = create_engine("parity")
    later = datetime(2031, 1, 1)
    columnar = schedule_source(engine, str(folder), as_of=later)
    assert columnar.settings["aggregates_from"] == "dataset"
    reference = engine.schedule(replace(dataset, as_of=later))
    assert columnar.as_of == later
    assert [(d.key, d.offset, d.reasons) for d in columnar.decisions] == [
        (d.key, d.offset, d.reasons) for d in reference.decisions
    ]
