"""The golden vectors reproduced exactly, through the path a user takes (the CLI).

The vectors in ``tests/data/vectors`` were computed by the real legacy scheduler;
a port that disagrees with one is wrong (``tests/data/vectors/README.md``). The
files are checked against the sha256 sums in their ``meta.json`` first, so a
damaged copy fails loudly instead of "passing" against the wrong numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from paths import VECTORS

from harness.cli import main

SETS = ("small", "quirks")
REL_TOL = 1e-9

#: JSON decision field ← expected/candidates.jsonl field, compared exactly.
EXACT_FIELDS = {
    "value": "value_with_publish_bonus",
    "total_previous_runs": "total_previous_runs",
    "estimated_duration_us": "estimated_duration_us",
}
#: Floats: exactly, or within a relative 1e-9 (the README's tolerance).
FLOAT_FIELDS = {
    "normalized_codebase_value": "normalized_codebase_value",
    "success_probability": "probability",
    "offset": "offset",
}
QUEUE_FIELDS = (
    "id",
    "codebase",
    "bucket",
    "priority",
    "estimated_duration_us",
    "context",
    "command",
    "requester",
    "refresh",
    "change_set",
)


def _set_dir(name: str) -> Path:
    path = VECTORS / name
    if not (path / "meta.json").is_file():
        pytest.fail(
            f"golden vectors missing: {path}/meta.json not found; they belong to the "
            "repository (tests/data/vectors): is the checkout complete?"
        )
    return path


def _damaged_files(path: Path) -> list[str]:
    """Files whose size or sha256 differ from meta.json (empty: the copy is intact)."""
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    damaged = []
    for relative, info in meta["files"].items():
        file = path / relative
        data = file.read_bytes() if file.is_file() else b""
        if len(data) != info["bytes"] or hashlib.sha256(data).hexdigest() != info["sha256"]:
            damaged.append(relative)
    return damaged


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _close(got: float | None, want: float | None) -> bool:
    if got is None or want is None:
        return got is want
    return got == want or math.isclose(got, want, rel_tol=REL_TOL, abs_tol=0.0)


@pytest.fixture(scope="module", params=SETS)
def vector_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One CLI run per set: (set dir, the schedule JSON it wrote)."""
    path = _set_dir(request.param)
    damaged = _damaged_files(path)
    if damaged:  # never compare against a damaged copy
        pytest.fail(f"{path}: files differ from meta.json's sha256: {', '.join(damaged)}")
    out = tmp_path_factory.mktemp(request.param) / "schedule.json"
    code = main(["schedule", str(path), "--engine", "legacy:memory", "--json", str(out)])
    assert code == 0, f"janitor-shadow schedule exited {code} on {path}"
    return path, json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", SETS)
def test_vector_files_match_their_sha256(name: str) -> None:
    path = _set_dir(name)
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    assert len(meta["files"]) >= 10, "meta.json lists too few files"
    assert _damaged_files(path) == []


def test_decisions_match_line_for_line(vector_run: Any) -> None:
    path, doc = vector_run
    expected = _read_jsonl(path / "expected" / "candidates.jsonl")
    decisions = doc["decisions"]
    assert len(decisions) == len(expected)
    mismatches: list[str] = []
    for got, want in zip(decisions, expected, strict=True):
        where = f"seq {want['seq']} {want['codebase']}/{want['campaign']}"
        key = (got["codebase"], got["campaign"], got["change_set"])
        if key != (want["codebase"], want["campaign"], want["change_set"]):
            mismatches.append(f"{where}: processed {key} instead")
            continue
        if want["error"] is not None:
            err = got["error"]
            if err is None:
                mismatches.append(f"{where}: expected {want['error']['type']}, got no error")
            elif (err["type"], err.get("phase")) != (want["error"]["type"], want["error"]["phase"]):
                mismatches.append(
                    f"{where}: error {err['type']} in {err.get('phase')}, expected "
                    f"{want['error']['type']} in {want['error']['phase']}"
                )
            continue
        if got["error"] is not None:
            mismatches.append(f"{where}: unexpected error {got['error']}")
            continue
        for mine, theirs in EXACT_FIELDS.items():
            if got[mine] != want[theirs]:
                mismatches.append(f"{where}: {mine} {got[mine]!r} != {want[theirs]!r}")
        for mine, theirs in FLOAT_FIELDS.items():
            if not _close(got[mine], want[theirs]):
                mismatches.append(f"{where}: {mine} {got[mine]!r} != {want[theirs]!r}")
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:20])


def test_error_messages_name_the_same_failure(vector_run: Any) -> None:
    """Same exception class and text (the README lets a port differ; this one does not)."""
    path, doc = vector_run
    expected = _read_jsonl(path / "expected" / "candidates.jsonl")
    for got, want in zip(doc["decisions"], expected, strict=True):
        if want["error"] is None:
            continue
        assert got["error"]["message"] == want["error"]["message"], want["seq"]
        assert got["error"].get("sqlstate") == want["error"].get("sqlstate"), want["seq"]


def test_queue_matches_row_for_row(vector_run: Any) -> None:
    path, doc = vector_run
    outcome = json.loads((path / "expected" / "queue_outcome.json").read_text(encoding="utf-8"))
    # A port that records failures and goes on ends with the queue of the
    # legacy's second run, given only the items without error.
    name = "queue_excluding_failures.jsonl" if outcome["raised"] else "queue.jsonl"
    expected = _read_jsonl(path / "expected" / name)
    queue = doc["queue"]
    assert len(queue) == len(expected)
    if outcome["raised"]:
        assert len(queue) == outcome["excluding_failures"]["rows"]
    else:
        assert len(queue) == outcome["rows"]
    for position, (got, want) in enumerate(zip(queue, expected, strict=True)):
        assert got["position"] == position
        assert got["campaign"] == want["suite"], position
        for field in QUEUE_FIELDS:
            assert got[field] == want[field], f"queue row {position}: {field}"


def test_notes_name_where_the_legacy_stopped(vector_run: Any) -> None:
    path, doc = vector_run
    outcome = json.loads((path / "expected" / "queue_outcome.json").read_text(encoding="utf-8"))
    if outcome["raised"] is None:
        assert not any("would have stopped" in note for note in doc["notes"])
        assert doc["summary"]["errors"] == 0
        return
    at = outcome["raised_at"]
    assert at["verified"] is True
    label = f"{at['codebase']}/{at['campaign']}" + (
        f" [{at['change_set']}]" if at["change_set"] else ""
    )
    stop_notes = [note for note in doc["notes"] if "would have stopped" in note]
    assert len(stop_notes) == 1
    note = stop_notes[0]
    assert f"candidate #{at['seq']} ({label}: {outcome['raised']['type']})" in note
    failed = doc["decisions"][at["seq"]]
    assert failed["error"]["type"] == outcome["raised"]["type"]
    assert failed["error"]["message"] == outcome["raised"]["message"]


def test_counts_agree_with_meta(vector_run: Any) -> None:
    path, doc = vector_run
    counts = json.loads((path / "meta.json").read_text(encoding="utf-8"))["counts"]
    assert doc["summary"]["decisions"] == counts["candidate_rows_returned_by_legacy_query"]
    assert doc["summary"]["errors"] == counts["candidates_with_error"]
    zero_runs = sum(1 for d in doc["decisions"] if d["total_previous_runs"] == 0)
    assert zero_runs == counts["zero_previous_runs"]
