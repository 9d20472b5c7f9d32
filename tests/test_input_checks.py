"""Data the production schema forbids is refused, and a snapshot is checked against its manifest."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from engines.model import Candidate, Codebase, Dataset, NamedPublishPolicy, PolicyEntry, Run
from engines.new import create_engine
from harness.data.snapshot import load_snapshot, write_snapshot
from harness.data.sources import schedule_source
from harness.errors import InputError

AS_OF = datetime(2025, 6, 1)
START = 1_740_000_000_000_000


def scenario() -> dict[str, Any]:
    return {
        "version": 1,
        "as_of": "2025-06-01T00:00:00",
        "codebases": [{"name": "foo", "value": 10}, {"name": "bar", "value": 3}],
        "publish_policies": [
            {"name": "p", "per_branch_policy": [{"role": "main", "mode": "push"}]}
        ],
        "candidates": [
            {
                "codebase": "foo",
                "suite": "lintian-fixes",
                "command": "x",
                "publish_policy": "p",
                "value": 5,
            },
            {
                "codebase": "bar",
                "suite": "lintian-fixes",
                "command": "x",
                "publish_policy": "p",
                "value": 2,
            },
        ],
        "runs": [
            {
                "id": "r1",
                "codebase": "foo",
                "suite": "lintian-fixes",
                "result_code": "success",
                "start_time": "2025-05-01T00:00:00",
                "finish_time": "2025-05-01T00:10:00",
            },
            {
                "id": "r2",
                "codebase": "bar",
                "suite": "lintian-fixes",
                "result_code": "success",
                "start_time": "2025-05-02T00:00:00",
                "duration_s": 60,
            },
        ],
    }


def write(tmp_path: Path, doc: dict[str, Any], text: str | None = None) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(doc), encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        load_snapshot(path)
    message = str(caught.value)
    assert "\n" not in message and str(path.name) in message
    return message


BAD: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    (
        "finish before start",
        lambda d: d["runs"][0].update(finish_time="1999-01-01T00:00:00"),
        "runs, record 1, field 'finish_time': finish_time 1999-01-01T00:00:00.000000 is before start_time",
    ),
    (
        "duplicate run id",
        lambda d: d["runs"][1].update(id="r1"),
        "runs, record 2, field 'id': duplicate run id 'r1'",
    ),
    (
        "duplicate codebase",
        lambda d: d["codebases"].append({"name": "foo", "value": 1}),
        "codebases, record 3, field 'name': duplicate codebase name 'foo' (also record 1",
    ),
    (
        "duplicate policy",
        lambda d: d["publish_policies"].append({"name": "p", "per_branch_policy": []}),
        "publish_policies, record 2, field 'name': duplicate policy name 'p'",
    ),
    (
        "duplicate candidate id",
        lambda d: [c.update(id=7) for c in d["candidates"]],
        "candidates, record 2, field 'id': duplicate candidate id 7",
    ),
    (
        "zero value",
        lambda d: d["candidates"][1].update(value=0),
        "candidates, record 2, field 'value': expected an integer from 1 to 2147483647 (the schema: value > 0), got 0",
    ),
    ("negative value", lambda d: d["candidates"][0].update(value=-3), "field 'value'"),
    (
        "int4 overflow",
        lambda d: d["codebases"][0].update(value=2**40),
        "codebases, record 1, field 'value'",
    ),
    (
        "unknown policy",
        lambda d: d["candidates"][0].update(publish_policy="nosuch"),
        "candidates, record 1, field 'publish_policy': names no named_publish_policy row: 'nosuch'",
    ),
    (
        "unknown codebase",
        lambda d: d["candidates"][0].update(codebase="ghost"),
        "candidates, record 1, field 'codebase': names no codebase row: 'ghost'",
    ),
    (
        "duration 1e300",
        lambda d: d["runs"][1].update(duration_s=1.0e300),
        "runs, record 2, field 'duration_s': expected a finite, non-negative number of seconds",
    ),
    (
        "duration nan",
        lambda d: d["runs"][1].update(duration_s=float("nan")),
        "field 'duration_s': expected a finite",
    ),
    (
        "success chance inf",
        lambda d: d["candidates"][0].update(success_chance=float("inf")),
        "record 1, field 'success_chance': expected a finite number",
    ),
]


@pytest.mark.parametrize(("what", "mutate", "expected"), BAD, ids=[b[0] for b in BAD])
def test_yaml_scenario_refuses_what_the_schema_forbids(
    tmp_path: Path, what: str, mutate: Callable[[dict[str, Any]], object], expected: str
) -> None:
    doc = scenario()
    load_snapshot(write(tmp_path, doc))  # the unmutated scenario is fine
    mutate(doc)
    assert expected in refused(write(tmp_path, doc))


def test_yaml_nan_and_huge_durations_as_written_by_hand(tmp_path: Path) -> None:
    text = yaml.safe_dump(scenario()).replace("duration_s: 60", "duration_s: .nan")
    assert "field 'duration_s'" in refused(write(tmp_path, {}, text))
    text = yaml.safe_dump(scenario()).replace("duration_s: 60", "duration_s: 1.0e+300")
    assert "field 'duration_s'" in refused(write(tmp_path, {}, text))


def test_schema_checks_false_lets_a_rule_scenario_pin_the_legacy(tmp_path: Path) -> None:
    doc = scenario()
    doc["candidates"][0].update(publish_policy="nosuch", value=0)
    doc["schema_checks"] = False
    dataset = load_snapshot(write(tmp_path, doc))
    assert [c.codebase for c in dataset.joined_candidates] == ["bar"]  # the join drops foo
    doc["runs"][0]["finish_time"] = "1999-01-01T00:00:00"
    assert "finish_time" in refused(write(tmp_path, doc))  # time order is never waived


def test_row_order_naming_a_candidate_the_join_drops(tmp_path: Path) -> None:
    doc = scenario()
    doc["candidates"][0]["publish_policy"] = None
    doc["candidate_row_order"] = [
        {"codebase": "foo", "campaign": "lintian-fixes", "change_set": None},
    ]
    assert "record candidate_row_order 1: names foo/lintian-fixes, which the legacy" in refused(
        write(tmp_path, doc)
    )


# ------------------------------------------------------------ snapshot directories


def small_dataset() -> Dataset:
    return Dataset(
        as_of=AS_OF,
        codebases=(Codebase("foo", None, 10), Codebase("bar", None, 4)),
        candidates=(
            Candidate(1, "foo", "lintian-fixes", "x", value=5, publish_policy="p"),
            Candidate(2, "bar", "lintian-fixes", "x", value=3, publish_policy="p"),
        ),
        policies=(NamedPublishPolicy("p", (PolicyEntry("main", "push"),)),),
        runs=tuple(
            Run(
                f"r{i}",
                "foo" if i % 2 else "bar",
                "lintian-fixes",
                "success",
                START + i,
                START + i + 10,
            )
            for i in range(10)
        ),
        debian_versions=None,
        candidate_row_order=None,
    )


def snapshot(tmp_path: Path, **options: Any) -> Path:
    return write_snapshot(small_dataset(), tmp_path / "snap", **options)


def test_manifest_records_sha256_of_every_file(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, columnar_runs=True)
    tables = json.loads((snap / "snapshot.json").read_text())["tables"]
    assert set(tables) >= {"codebase", "candidate", "run", "queue"}
    assert all(len(entry["sha256"]) == 64 for entry in tables.values())


@pytest.mark.parametrize("columnar", [False, True])
def test_a_table_replaced_by_a_valid_file_with_half_its_rows_is_refused(
    tmp_path: Path, columnar: bool
) -> None:
    snap = snapshot(tmp_path, columnar_runs=columnar)
    if columnar:
        table = pq.read_table(snap / "run.parquet")
        pq.write_table(table.slice(0, 5), snap / "run.parquet")
        name = "run.parquet"
    else:
        name = "run.jsonl.gz"
        lines = gzip.decompress((snap / name).read_bytes()).splitlines(keepends=True)
        (snap / name).write_bytes(gzip.compress(b"".join(lines[:5])))
    message = refused_dir(snap)
    assert name in message and "sha256 is not the one in the manifest" in message
    # Without the hash (an older manifest), the row count still catches it.
    manifest = json.loads((snap / "snapshot.json").read_text())
    for entry in manifest["tables"].values():
        entry.pop("sha256", None)
        entry.pop("sha256_uncompressed", None)
    (snap / "snapshot.json").write_text(json.dumps(manifest))
    assert f"{name}: holds 5 rows, the manifest says 10" in refused_dir(snap)


def refused_dir(snap: Path) -> str:
    with pytest.raises(InputError) as caught:
        load_snapshot(snap)
    message = str(caught.value)
    assert "\n" not in message
    # The new engine reads a Parquet run table itself: the same checks apply there.
    with pytest.raises(InputError) as caught_new:
        schedule_source(create_engine(None), str(snap))
    assert str(caught_new.value) == message or "\n" not in str(caught_new.value)
    return message


def test_a_recorded_row_order_or_queue_table_must_be_there(tmp_path: Path) -> None:
    dataset = small_dataset()
    from dataclasses import replace

    dataset = replace(dataset, candidate_row_order=tuple(c.key for c in dataset.candidates))
    snap = write_snapshot(dataset, tmp_path / "snap")
    (snap / "candidate_row_order.jsonl.gz").unlink()
    assert "table candidate_row_order (2 rows in the manifest) is missing its file" in refused_dir(
        snap
    )


def test_an_empty_candidate_table_is_reported_against_itself(tmp_path: Path) -> None:
    snap = snapshot(tmp_path)
    (snap / "candidate.jsonl.gz").write_bytes(b"")
    assert "candidate.jsonl.gz" in refused_dir(snap)


def test_finish_before_start_in_parquet_is_refused_by_both_readers(tmp_path: Path) -> None:
    from dataclasses import replace

    dataset = small_dataset()
    runs = list(dataset.runs)
    runs[3] = runs[3]._replace(finish_us=START + 2)
    snap = write_snapshot(replace(dataset, runs=tuple(runs)), tmp_path / "snap", columnar_runs=True)
    message = refused_dir(snap)
    assert "run.parquet, record 4, field 'finish_time': finish_time is before start_time" in message


def test_duplicate_run_ids_in_an_unvouched_parquet_table(tmp_path: Path) -> None:
    from dataclasses import replace

    dataset = small_dataset()
    runs = list(dataset.runs)
    runs[6] = runs[6]._replace(id="r1")
    snap = write_snapshot(replace(dataset, runs=tuple(runs)), tmp_path / "snap", columnar_runs=True)
    manifest = json.loads((snap / "snapshot.json").read_text())
    manifest["tables"].pop("run")
    (snap / "snapshot.json").write_text(json.dumps(manifest))
    assert "run.parquet, record 7, field 'id': duplicate run id 'r1'" in refused_dir(snap)


@pytest.mark.parametrize("text", ["{not json", "[" * 20_000])
def test_bad_failure_details_json_in_an_unvouched_parquet_table(tmp_path: Path, text: str) -> None:
    import pyarrow as pa

    snap = snapshot(tmp_path, columnar_runs=True)
    table = pq.read_table(snap / "run.parquet")
    details = table.column("failure_details").to_pylist()
    details[2] = text
    index = table.column_names.index("failure_details")
    table = table.set_column(index, "failure_details", pa.array(details, pa.string()))
    pq.write_table(table, snap / "run.parquet")
    manifest = json.loads((snap / "snapshot.json").read_text())
    manifest["tables"]["run"].pop("sha256")
    (snap / "snapshot.json").write_text(json.dumps(manifest))
    assert "run.parquet, record 3, field 'failure_details': invalid JSON" in refused_dir(snap)


def test_deeply_nested_failure_details_in_json_lines(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, compress=False)
    lines = (snap / "run.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace('"failure_details":null', '"failure_details":' + "[" * 20_000)
    (snap / "run.jsonl").write_text("\n".join(lines) + "\n")
    manifest = json.loads((snap / "snapshot.json").read_text())
    manifest.pop("tables")
    (snap / "snapshot.json").write_text(json.dumps(manifest))
    assert "run.jsonl, record 2: invalid JSON: depth limit exceeded" in refused_dir(snap)


def test_an_empty_gzip_table_without_a_manifest_is_named(tmp_path: Path) -> None:
    snap = snapshot(tmp_path)
    manifest = json.loads((snap / "snapshot.json").read_text())
    manifest.pop("tables")
    (snap / "snapshot.json").write_text(json.dumps(manifest))
    (snap / "candidate.jsonl.gz").write_bytes(b"")
    assert "candidate.jsonl.gz: empty file: not even a gzip header" in refused_dir(snap)


def test_a_gzip_bomb_table_is_refused_without_inflating_it(tmp_path: Path) -> None:
    import zlib

    snap = snapshot(tmp_path)
    manifest = json.loads((snap / "snapshot.json").read_text())
    manifest.pop("tables")
    (snap / "snapshot.json").write_text(json.dumps(manifest))
    squeezer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1 << 20)
    bomb = b"".join(squeezer.compress(block) for _ in range(2048)) + squeezer.flush()  # 2 GiB
    assert len(bomb) < 3 << 20
    (snap / "codebase.jsonl.gz").write_bytes(bomb)
    message = refused_dir(snap)
    assert "codebase.jsonl.gz: inflates to more than" in message and "gzip bomb" in message


def test_parquet_timestamps_beyond_year_9999_are_refused(tmp_path: Path) -> None:
    import pyarrow as pa

    snap = snapshot(tmp_path, columnar_runs=True)
    table = pq.read_table(snap / "run.parquet")
    finish = table.column("finish_time").cast(pa.int64()).to_pylist()
    finish[4] = 2**62
    index = table.column_names.index("finish_time")
    column = pa.array(finish, pa.int64()).cast(pa.timestamp("us"))
    pq.write_table(table.set_column(index, "finish_time", column), snap / "run.parquet")
    manifest = json.loads((snap / "snapshot.json").read_text())
    manifest["tables"].pop("run")
    (snap / "snapshot.json").write_text(json.dumps(manifest))
    assert "run.parquet, record 5, field 'finish_time': expected a timestamp from year 1" in (
        refused_dir(snap)
    )
