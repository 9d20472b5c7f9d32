"""Fuzzing every loader: whatever a file holds, the answer is a dataset or the tool's own one line.

Each loader is handed valid files mutated two ways: structurally (a value
somewhere in the document replaced by another JSON/YAML value, a key
dropped or added) and byte-wise (bytes flipped, cut, inserted). A failure
must be a :class:`~harness.errors.ShadowError` whose message is one line
and names the file; any other exception fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engines.model import (
    Candidate,
    Codebase,
    Dataset,
    DebianVersion,
    NamedPublishPolicy,
    PolicyEntry,
    QueueItem,
    Run,
)
from engines.new.config import load_config
from harness.cli.commands.gate import read_baseline
from harness.comparison.tolerances import load_settings
from harness.comparison.waivers import load_waivers
from harness.data.schedule_json import write_schedule
from harness.data.snapshot import dataset_to_yaml, load_snapshot, write_snapshot
from harness.errors import ShadowError

ROOT = Path(__file__).resolve().parent.parent
START = 1_740_000_000_000_000

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "2025-06-01T00:00:00", "1:2.0-1", "push", "p", "foo", "r1", "-1"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def dataset() -> Dataset:
    return Dataset(
        as_of=datetime(2025, 6, 1),
        codebases=(Codebase("foo", "https://x/foo", 10), Codebase("bar", None, None)),
        candidates=(
            Candidate(1, "foo", "lintian-fixes", "x", context="c", value=5, publish_policy="p"),
            Candidate(2, "bar", "lintian-fixes", "x", success_chance=0.5, publish_policy="p"),
        ),
        policies=(NamedPublishPolicy("p", (PolicyEntry("main", "push", 3),)),),
        runs=(
            Run("r1", "foo", "lintian-fixes", "success", START, START + 10_000_000),
            Run(
                "r2",
                "bar",
                "lintian-fixes",
                "install-deps-unsatisfied",
                START + 5,
                START + 99,
                False,
                None,
                "c",
                {"relations": [[{"name": "libfoo", "version": [">=", "1.0"]}]]},
            ),
        ),
        debian_versions=(DebianVersion("libfoo", "1.2-1"),),
        queue=(QueueItem(1, "foo", "lintian-fixes", "x", priority=3),),
        candidate_row_order=None,
    )


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a parsed document (dict keys and list indices)."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


def mutate(document: Any, data: st.DataObject) -> Any:
    """Replace, drop or add one thing somewhere in ``document`` (a copy)."""
    document = json.loads(json.dumps(document, default=str))
    where = data.draw(st.sampled_from(paths(document)))
    action = data.draw(st.sampled_from(["replace", "drop", "add"]))
    if not where:
        return data.draw(VALUES) if action == "replace" else document
    parent = document
    for step in where[:-1]:
        parent = parent[step]
    last = where[-1]
    if action == "replace":
        parent[last] = data.draw(VALUES)
    elif action == "drop":
        del parent[last]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=10))] = data.draw(VALUES)
    else:
        parent.insert(last, data.draw(VALUES))
    return document


def mangle(raw: bytes, data: st.DataObject) -> bytes:
    """Flip, cut or insert bytes."""
    raw = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if action == "flip" and raw:
            raw[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[at : at + data.draw(st.integers(1, 40))]
        else:
            raw[at:at] = data.draw(
                st.binary(max_size=12)
                | st.sampled_from([b"&a ", b"*a", b"[", b"{", b":", b"\x00", b"\xff"])
            )
    return bytes(raw)


def loads_or_one_line(load: Callable[[Path], Any], path: Path) -> None:
    try:
        load(path)
    except ShadowError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert str(path) in message or path.name in message, message


#: More examples for a long run: JANITOR_SHADOW_FUZZ_EXAMPLES=2000 python -m pytest tests/test_loader_fuzz.py
FUZZ = settings(
    max_examples=int(os.environ.get("JANITOR_SHADOW_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# ------------------------------------------------------------- YAML loaders


def yaml_documents() -> dict[str, tuple[Callable[[Path], Any], Any]]:
    scenario = yaml.safe_load(dataset_to_yaml(dataset(), description="fuzz"))
    tolerances = yaml.safe_load(
        (ROOT / "harness" / "comparison" / "tolerances.default.yaml").read_text()
    )
    waivers = yaml.safe_load((ROOT / "scenarios" / "waivers" / "legacy-errors.yaml").read_text())
    config = yaml.safe_load((ROOT / "engines" / "new" / "default.yaml").read_text())
    return {
        "scenario": (load_snapshot, scenario),
        "tolerances": (load_settings, tolerances),
        "waivers": (load_waivers, waivers),
        "engine configuration": (load_config, config),
    }


YAML_DOCUMENTS = yaml_documents()


@pytest.mark.parametrize("kind", YAML_DOCUMENTS)
@FUZZ
@given(data=st.data())
def test_yaml_loader_structure_fuzz(kind: str, data: st.DataObject, tmp_path: Path) -> None:
    load, document = YAML_DOCUMENTS[kind]
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(mutate(document, data), allow_unicode=True), encoding="utf-8")
    loads_or_one_line(load, path)


@pytest.mark.parametrize("kind", YAML_DOCUMENTS)
@FUZZ
@given(data=st.data())
def test_yaml_loader_byte_fuzz(kind: str, data: st.DataObject, tmp_path: Path) -> None:
    load, document = YAML_DOCUMENTS[kind]
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(mangle(yaml.safe_dump(document).encode(), data))
    loads_or_one_line(load, path)


# ------------------------------------------------------- snapshot directory


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("recorded")
    return {
        "jsonl": write_snapshot(dataset(), base / "jsonl", compress=False),
        "gzip": write_snapshot(dataset(), base / "gzip"),
        "parquet": write_snapshot(dataset(), base / "parquet", compress=False, columnar_runs=True),
    }


def copy_snapshot(source: Path, target: Path, *, keep_hashes: bool) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    if not keep_hashes:
        manifest = json.loads((target / "snapshot.json").read_text())
        manifest.pop("tables")
        (target / "snapshot.json").write_text(json.dumps(manifest))
    return target


def load_both_ways(path: Path) -> None:
    """The dataset loader, and the new engine's own reader of a snapshot directory."""
    from engines.new import create_engine
    from harness.data.sources import schedule_source

    loads_or_one_line(load_snapshot, path)
    loads_or_one_line(lambda p: schedule_source(create_engine(None), str(p)), path)


@FUZZ
@given(data=st.data())
def test_snapshot_table_fuzz(
    data: st.DataObject, recorded: dict[str, Path], tmp_path: Path
) -> None:
    layout = data.draw(st.sampled_from(["jsonl", "parquet"]))
    snap = copy_snapshot(recorded[layout], tmp_path / "snap", keep_hashes=data.draw(st.booleans()))
    table = data.draw(
        st.sampled_from(
            ["codebase", "named_publish_policy", "candidate", "all_debian_versions", "queue"]
            + (["run"] if layout == "jsonl" else [])
        )
    )
    file = snap / f"{table}.jsonl"
    rows = [json.loads(line) for line in file.read_text().splitlines()]
    if data.draw(st.booleans()):
        mutated = mutate(rows, data)
        # The whole table replaced by one value: the file holds that one line.
        lines = mutated if isinstance(mutated, list) else [mutated]
        file.write_text("\n".join(json.dumps(row) for row in lines) + "\n")
    else:
        file.write_bytes(mangle(file.read_bytes(), data))
    load_both_ways(snap)


@FUZZ
@given(data=st.data())
def test_snapshot_manifest_fuzz(
    data: st.DataObject, recorded: dict[str, Path], tmp_path: Path
) -> None:
    layout = data.draw(st.sampled_from(["jsonl", "gzip", "parquet"]))
    snap = copy_snapshot(recorded[layout], tmp_path / "snap", keep_hashes=True)
    manifest = snap / "snapshot.json"
    if data.draw(st.booleans()):
        manifest.write_text(json.dumps(mutate(json.loads(manifest.read_text()), data)))
    else:
        manifest.write_bytes(mangle(manifest.read_bytes(), data))
    load_both_ways(snap)


@FUZZ
@given(data=st.data())
def test_snapshot_binary_table_fuzz(
    data: st.DataObject, recorded: dict[str, Path], tmp_path: Path
) -> None:
    layout = data.draw(st.sampled_from(["gzip", "parquet"]))
    snap = copy_snapshot(recorded[layout], tmp_path / "snap", keep_hashes=data.draw(st.booleans()))
    name = data.draw(
        st.sampled_from(
            ["run.parquet"]
            if layout == "parquet"
            else ["candidate.jsonl.gz", "codebase.jsonl.gz", "run.jsonl.gz"]
        )
    )
    (snap / name).write_bytes(mangle((snap / name).read_bytes(), data))
    load_both_ways(snap)


# ------------------------------------------------------------ gate baseline


@pytest.fixture(scope="module")
def baseline_document(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from engines.legacy import create_engine

    path = tmp_path_factory.mktemp("baseline") / "baseline.json"
    write_schedule(create_engine(None).schedule(dataset()), path)
    return json.loads(path.read_text())


@FUZZ
@given(data=st.data())
def test_baseline_fuzz(data: st.DataObject, baseline_document: Any, tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    if data.draw(st.booleans()):
        path.write_text(json.dumps(mutate(baseline_document, data)))
    else:
        path.write_bytes(mangle(json.dumps(baseline_document).encode(), data))
    loads_or_one_line(read_baseline, path)


# ------------------------------------------- what loads, the engines decide

ENGINE_SPECS = ("legacy", "new:parity", "new:default")


@FUZZ
@given(data=st.data())
def test_accepted_scenarios_are_decided_by_every_engine(
    data: st.DataObject, tmp_path: Path
) -> None:
    """A scenario the loader accepts holds nothing an engine may crash on."""
    from engines.base import get_engine

    _, document = YAML_DOCUMENTS["scenario"]
    for _ in range(data.draw(st.integers(1, 3))):
        document = mutate(document, data)
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    try:
        dataset = load_snapshot(path)
    except ShadowError:
        return
    for spec in ENGINE_SPECS:
        try:
            get_engine(spec).schedule(dataset)
        except ShadowError as exc:
            assert "\n" not in str(exc)
