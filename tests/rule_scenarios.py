"""Run a ``scenarios/rules`` scenario and check it against its hand-worked ``expected`` block.

The block (see ``scenarios/rules/README.md``) lists, per processed candidate
in order, the fields a person worked out from the spec, the queue afterwards
in worker order, and where the real legacy would have stopped. Only the
fields written down are checked, and each exactly: the hand arithmetic
follows the spec's evaluation order, so even the offsets are the same doubles.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engines.base import get_engine
from harness.data.schedule_json import decision_to_json, queue_item_to_json
from harness.data.sources import open_source

RULES = Path(__file__).resolve().parents[1] / "scenarios" / "rules"

#: Keys of an expected decision that are not fields of the schedule JSON.
_SPECIAL = {"priority", "error"}


@dataclass(frozen=True)
class Outcome:
    """A schedule as plain JSON rows, whichever path produced it."""

    decisions: list[dict[str, Any]]
    queue: list[dict[str, Any]]
    notes: list[str]


def scenario_path(name: str) -> Path:
    return RULES / f"{name}.yaml"


def expected_block(name: str) -> dict[str, Any]:
    document = yaml.safe_load(scenario_path(name).read_text(encoding="utf-8"))
    block: dict[str, Any] = document["expected"]
    return block


def run_api(name: str) -> Outcome:
    """The library path: ``open_source`` + ``get_engine("legacy")``."""
    schedule = get_engine("legacy").schedule(open_source(str(scenario_path(name))))
    return Outcome(
        decisions=[decision_to_json(i, d) for i, d in enumerate(schedule.decisions)],
        queue=[queue_item_to_json(i, q) for i, q in enumerate(schedule.queue)],
        notes=list(schedule.notes),
    )


def run_cli(name: str, out: Path) -> Outcome:
    """The command a user types: ``janitor-shadow schedule SCENARIO --json OUT``."""
    from harness.cli import main  # imports every command module: only when needed

    code = main(["schedule", str(scenario_path(name)), "--json", str(out)])
    assert code == 0, f"janitor-shadow schedule exited {code}"
    doc = json.loads(out.read_text(encoding="utf-8"))
    return Outcome(decisions=doc["decisions"], queue=doc["queue"], notes=doc["notes"])


def _same(got: Any, want: Any) -> bool:
    """Exact equality, but 1 == 1.0 only when both are numbers of the same value."""
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    return bool(got == want)


def check_decision(index: int, got: Mapping[str, Any], want: Mapping[str, Any]) -> list[str]:
    problems = []
    where = f"decision {index} ({got['codebase']}/{got['campaign']})"
    for field, value in want.items():
        if field in _SPECIAL:
            continue
        if not _same(got.get(field), value):
            problems.append(f"{where}: {field} = {got.get(field)!r}, expected {value!r}")
    if "priority" in want:
        priority = (got.get("factors") or {}).get("priority")
        if not _same(priority, want["priority"]):
            problems.append(f"{where}: priority = {priority!r}, expected {want['priority']!r}")
    if "error" in want:
        error = got.get("error")
        if want["error"] is None:
            if error is not None:
                problems.append(f"{where}: unexpected error {error}")
        elif error is None:
            problems.append(f"{where}: expected an error {want['error']}, got none")
        else:
            for field, value in want["error"].items():
                if error.get(field) != value:
                    problems.append(
                        f"{where}: error {field} = {error.get(field)!r}, expected {value!r}"
                    )
    return problems


def check_outcome(outcome: Outcome, expected: Mapping[str, Any]) -> None:
    """Every hand-worked number of ``expected`` against ``outcome``; all problems at once."""
    problems: list[str] = []
    want_decisions = expected["decisions"]
    if len(outcome.decisions) != len(want_decisions):
        problems.append(
            f"{len(outcome.decisions)} decisions, expected {len(want_decisions)}: "
            + ", ".join(f"{d['codebase']}/{d['campaign']}" for d in outcome.decisions)
        )
    for index, (got, want) in enumerate(zip(outcome.decisions, want_decisions, strict=False)):
        problems.extend(check_decision(index, got, want))
    want_queue = expected["queue"]
    if len(outcome.queue) != len(want_queue):
        problems.append(f"{len(outcome.queue)} queue rows, expected {len(want_queue)}")
    for position, (got, want) in enumerate(zip(outcome.queue, want_queue, strict=False)):
        for field, value in want.items():
            if not _same(got.get(field), value):
                problems.append(
                    f"queue row {position} ({got['codebase']}): {field} = "
                    f"{got.get(field)!r}, expected {value!r}"
                )
    stopped = [note for note in outcome.notes if "would have stopped" in note]
    if expected["stopped_at"] is None:
        if stopped:
            problems.append(f"unexpected note {stopped}")
    elif len(stopped) != 1 or f"candidate #{expected['stopped_at']} " not in stopped[0]:
        problems.append(
            f"notes {outcome.notes} do not say the legacy stopped at "
            f"candidate #{expected['stopped_at']}"
        )
    assert not problems, "\n".join(problems)


def decision(outcome: Outcome, codebase: str, index: int = 0) -> dict[str, Any]:
    """The ``index``-th decision about ``codebase``, for readable named tests."""
    return [d for d in outcome.decisions if d["codebase"] == codebase][index]
