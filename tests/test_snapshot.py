"""Snapshot files: every layout loads the same model, and bad files say where they are bad."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from paths import VECTORS

from engines.model import Candidate, Codebase, Dataset, NamedPublishPolicy, PolicyEntry, Run
from harness.data.snapshot import dataset_to_yaml, load_snapshot, write_snapshot
from harness.errors import InputError

MINIMAL = {
    "version": 1,
    "as_of": "2025-06-01T00:00:00",
    "codebases": [{"name": "foo", "value": 10}],
    "publish_policies": [{"name": "p", "per_branch_policy": [{"role": "main", "mode": "push"}]}],
    "candidates": [
        {
            "codebase": "foo",
            "suite": "lintian-fixes",
            "command": "lintian-brush",
            "publish_policy": "p",
            "value": 5,
        }
    ],
    "runs": [
        {
            "codebase": "foo",
            "suite": "lintian-fixes",
            "result_code": "success",
            "start_time": "2025-05-01T00:00:00",
            "duration_s": 1.5,
        }
    ],
}


def _write_yaml(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_yaml_scenario_loads_with_defaults(tmp_path: Path) -> None:
    ds = load_snapshot(_write_yaml(tmp_path, MINIMAL))
    assert ds.as_of == datetime(2025, 6, 1)
    assert ds.candidates[0].id == 1
    assert ds.runs[0].duration_us == 1_500_000
    assert ds.debian_versions is None  # not given: the table is absent
    assert [c.codebase for c in ds.joined_candidates] == ["foo"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["candidates"][0].pop("command"),
            "candidates, record 1, field 'command': missing",
        ),
        (
            lambda d: d["candidates"][0].update(value="ten"),
            "record 1, field 'value': expected an integer",
        ),
        (lambda d: d["runs"][0].update(start_time="yesterday"), "record 1, field 'start_time'"),
        (
            lambda d: d["publish_policies"][0]["per_branch_policy"][0].update(mode="shove"),
            "mode 'shove'",
        ),
        (lambda d: d.update(as_of="2025-06-01T00:00:00+02:00"), "field 'as_of'"),
        (lambda d: d.update(candidatez=[]), "unknown key(s) candidatez"),
        (lambda d: d.update(version=7), "format version 7"),
        (lambda d: d.update(runs={"a": 1}), "field 'runs': expected a list"),
    ],
)
def test_malformed_yaml_names_file_record_and_field(tmp_path: Path, mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(json.dumps(MINIMAL))
    mutate(doc)
    with pytest.raises(InputError) as caught:
        load_snapshot(_write_yaml(tmp_path, doc))
    assert "scenario.yaml" in str(caught.value)
    assert expected in str(caught.value)


def test_duplicate_candidate_is_an_error(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(MINIMAL))
    doc["candidates"].append(dict(doc["candidates"][0]))
    with pytest.raises(InputError, match="duplicate candidate foo/lintian-fixes"):
        load_snapshot(_write_yaml(tmp_path, doc))


def test_row_order_must_name_candidates(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(MINIMAL))
    doc["candidate_row_order"] = [
        {"codebase": "bar", "campaign": "lintian-fixes", "change_set": None}
    ]
    with pytest.raises(InputError, match="candidate_row_order 1"):
        load_snapshot(_write_yaml(tmp_path, doc))


def forget_hashes(snap: Path) -> None:
    """Drop the manifest's sha256s and row counts, so that a hand-edited table reaches the decoders."""
    manifest = json.loads((snap / "snapshot.json").read_text())
    manifest.pop("tables")
    (snap / "snapshot.json").write_text(json.dumps(manifest))


def test_broken_jsonl_line_is_named(tmp_path: Path) -> None:
    ds = load_snapshot(_write_yaml(tmp_path, MINIMAL))
    snap = write_snapshot(ds, tmp_path / "snap", compress=False)
    forget_hashes(snap)
    with open(snap / "candidate.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"id": 2, "codebase": "foo"\n')
    with pytest.raises(InputError, match=r"candidate.jsonl, record 2: invalid JSON"):
        load_snapshot(snap)


def test_truncated_gzip_is_an_input_error(tmp_path: Path) -> None:
    ds = load_snapshot(_write_yaml(tmp_path, MINIMAL))
    snap = write_snapshot(ds, tmp_path / "snap")
    data = (snap / "candidate.jsonl.gz").read_bytes()
    (snap / "candidate.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"candidate\.jsonl\.gz"):
        load_snapshot(snap)


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    ds = load_snapshot(_write_yaml(tmp_path, MINIMAL))
    write_snapshot(ds, tmp_path / "snap")
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_snapshot(ds, tmp_path / "snap")


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_snapshot(tmp_path / "nope.yaml")


def test_parquet_run_table_rejects_wrong_columns(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ds = load_snapshot(_write_yaml(tmp_path, MINIMAL))
    snap = write_snapshot(ds, tmp_path / "snap", columnar_runs=True)
    pq.write_table(pa.table({"id": ["x"]}), snap / "run.parquet")
    forget_hashes(snap)
    with pytest.raises(InputError, match=r"run.parquet, field 'codebase': missing column"):
        load_snapshot(snap)


# ------------------------------------------------------------ round trips

names = st.from_regex(r"[a-z0-9][a-z0-9+.-]{1,8}", fullmatch=True)
moments = st.integers(min_value=1_500_000_000_000_000, max_value=1_800_000_000_000_000)
optional_text = st.none() | st.text(max_size=12)


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    codebase_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    codebases = tuple(
        Codebase(n, draw(st.none() | st.text(max_size=5)), draw(st.none() | st.integers(0, 5000)))
        for n in codebase_names
    )
    policy = NamedPublishPolicy(
        "p", (PolicyEntry("main", "propose", draw(st.none() | st.integers(0, 9))),)
    )
    candidates = tuple(
        Candidate(
            i + 1,
            n,
            "lintian-fixes",
            "lintian-brush",
            None,
            draw(optional_text),
            draw(st.none() | st.integers(1, 500)),
            draw(st.none() | st.floats(0, 1)),
            "p",
        )
        for i, n in enumerate(codebase_names)
    )
    runs = []
    for i in range(draw(st.integers(0, 6))):
        start = draw(st.none() | moments)
        finish = None if start is None else start + draw(st.integers(0, 10**11))
        details = draw(
            st.none()
            | st.just({"relations": [[{"name": "x", "version": [">=", "1.0"]}]]})
            | st.just({})
        )
        runs.append(
            Run(
                f"r{i}",
                draw(st.sampled_from(codebase_names)),
                "lintian-fixes",
                draw(st.sampled_from(["success", "worker-failure"])),
                start,
                finish,
                draw(st.none() | st.booleans()),
                draw(optional_text),
                draw(optional_text),
                details,
            )
        )
    return Dataset(
        as_of=datetime(2025, 6, 1, 12, 30, 0, 123456),
        codebases=codebases,
        candidates=candidates,
        policies=(policy,),
        runs=tuple(runs),
        debian_versions=None,
    )


def _tables(ds: Dataset) -> tuple[object, ...]:
    return (
        ds.as_of,
        ds.codebases,
        ds.candidates,
        ds.policies,
        ds.runs,
        ds.debian_versions,
        ds.queue,
        ds.candidate_row_order,
    )


@settings(max_examples=40, deadline=None)
@given(datasets(), st.sampled_from(["jsonl", "gzip", "parquet", "yaml"]))
def test_every_layout_round_trips_losslessly(
    tmp_path_factory: pytest.TempPathFactory, ds: Dataset, layout: str
) -> None:
    folder = tmp_path_factory.mktemp("rt")
    if layout == "yaml":
        path = folder / "s.yaml"
        path.write_text(dataset_to_yaml(ds), encoding="utf-8")
    else:
        path = write_snapshot(
            ds, folder / "snap", compress=layout != "jsonl", columnar_runs=layout == "parquet"
        )
    assert _tables(load_snapshot(path)) == _tables(ds)


def test_golden_vector_layout_loads() -> None:
    ds = load_snapshot(VECTORS / "small")
    assert ds.counts()["run"] == 5892
    assert len(ds.joined_candidates) == 293
    assert ds.provenance.source == "golden vectors small"


def test_gzip_lines_are_streamed(tmp_path: Path) -> None:
    ds = load_snapshot(_write_yaml(tmp_path, MINIMAL))
    snap = write_snapshot(ds, tmp_path / "snap")
    with gzip.open(snap / "run.jsonl.gz", "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    assert rows[0]["start_time"] == "2025-05-01T00:00:00.000000"
    assert rows[0]["finish_time"] == "2025-05-01T00:00:01.500000"


@pytest.mark.parametrize("text", ["\x85", "a\u2028b", "c\u2029", "d\ne"])
def test_yaml_scenarios_keep_unicode_line_breaks(tmp_path: Path, text: str) -> None:
    run = Run("r0", "00", "lintian-fixes", "success", None, None, None, None, text, None)
    ds = Dataset(
        as_of=datetime(2025, 6, 1),
        codebases=(Codebase("00", None, None),),
        candidates=(),
        policies=(),
        runs=(run,),
        debian_versions=None,
    )
    path = tmp_path / "s.yaml"
    path.write_text(dataset_to_yaml(ds), encoding="utf-8")
    assert load_snapshot(path).runs[0].context == text
