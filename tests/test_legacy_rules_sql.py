"""The rule scenarios through the ``sql`` backend, on a real PostgreSQL.

The ``sql`` backend runs the legacy's own queries (AVG over intervals, the
debversion operators, ``IS NOT TRUE``, the re-read) on a database restored
from the scenario; it must land on the same hand-worked numbers as the
``memory`` backend. Scenarios the production schema cannot hold (a candidate
without codebase row or with an unknown policy: foreign keys) are named
below, and their restore must be refused with a clear error.

The schema wants codebase names of two characters or more; the scenarios use
``a``, ``b``…, so codebases are restored as ``cb-a``, ``cb-b``… and the prefix
is taken off the results again before they are checked.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from rule_scenarios import RULES, Outcome, check_outcome, expected_block, scenario_path

from engines.base import get_engine
from engines.model import CandidateKey, Dataset
from harness.data.janitor_db import read_dataset
from harness.data.restore import restore_dataset
from harness.data.schedule_json import decision_to_json, queue_item_to_json
from harness.data.snapshot import load_snapshot
from harness.errors import InputError

#: Scenario → why the production schema refuses it.
NOT_RESTORABLE = {
    "quirk_null_policy_dropped_by_join": "candidates naming a missing codebase and policy",
    "quirk_zero_value_fails_assertion_unless_first_run": "candidate values <= 0",
}
SCENARIOS = sorted(path.stem for path in RULES.glob("*.yaml") if path.stem not in NOT_RESTORABLE)


PREFIX = "cb-"


def prefixed(dataset: Dataset) -> Dataset:
    """The same dataset with every codebase name prefixed (the schema's domain check)."""
    return replace(
        dataset,
        codebases=tuple(replace(c, name=PREFIX + c.name) for c in dataset.codebases),
        candidates=tuple(replace(c, codebase=PREFIX + c.codebase) for c in dataset.candidates),
        runs=tuple(r._replace(codebase=PREFIX + r.codebase) for r in dataset.runs),
        queue=tuple(replace(q, codebase=PREFIX + q.codebase) for q in dataset.queue),
        candidate_row_order=None
        if dataset.candidate_row_order is None
        else tuple(
            CandidateKey(PREFIX + k.codebase, k.campaign, k.change_set)
            for k in dataset.candidate_row_order
        ),
    )


def unprefixed(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(PREFIX, "")
    if isinstance(value, dict):
        return {k: unprefixed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unprefixed(v) for v in value]
    return value


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_through_the_sql_backend(name: str, janitor_databases: Any) -> None:
    dataset = prefixed(load_snapshot(scenario_path(name)))
    with janitor_databases.fresh(with_debian_versions=dataset.debian_versions is not None) as dsn:
        restore_dataset(dataset, dsn)
        live = read_dataset(dsn, as_of=dataset.as_of)
        schedule = get_engine("legacy:sql").schedule(live)
    outcome = Outcome(
        decisions=unprefixed([decision_to_json(i, d) for i, d in enumerate(schedule.decisions)]),
        queue=unprefixed([queue_item_to_json(i, q) for i, q in enumerate(schedule.queue)]),
        notes=unprefixed(list(schedule.notes)),
    )
    check_outcome(outcome, expected_block(name))


@pytest.mark.parametrize("name", sorted(NOT_RESTORABLE))
def test_unrestorable_scenario_is_refused_clearly(name: str, janitor_databases: Any) -> None:
    dataset = prefixed(load_snapshot(scenario_path(name)))
    with janitor_databases.fresh() as dsn, pytest.raises(InputError, match="candidate"):
        # foreign keys (codebase, policy) or candidate_value_check (value > 0)
        restore_dataset(dataset, dsn)
