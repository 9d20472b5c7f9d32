"""Every rule and quirk of ``shared/spec/legacy-scheduler.md``, pinned by a scenario.

Each ``scenarios/rules/<name>.yaml`` is a tiny dataset whose ``expected``
block holds numbers worked out by hand from the spec (the arithmetic is in
its comments). :func:`test_scenario_matches_hand_worked_expectations` checks
every scenario through the library path and through the CLI; the named tests
below run one scenario each and restate its key numbers, so that a failure
names the rule that broke.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from rule_scenarios import (
    RULES,
    Outcome,
    check_outcome,
    decision,
    expected_block,
    run_api,
    run_cli,
)

from engines.legacy import core

SCENARIOS = sorted(path.stem for path in RULES.glob("*.yaml"))
HINT = (
    "\nHINT:  No operator matches the given name and argument types. "
    "You might need to add explicit type casts."
)


def pinned(name: str) -> Outcome:
    """Run scenario ``name`` and check its whole expected block first."""
    outcome = run_api(name)
    check_outcome(outcome, expected_block(name))
    return outcome


def queue_order(outcome: Outcome) -> list[tuple[int, str, int]]:
    return [(row["id"], row["codebase"], row["priority"]) for row in outcome.queue]


# --------------------------------------------------------------- all of them


def test_rule_scenarios_exist() -> None:
    assert len(SCENARIOS) >= 40, SCENARIOS


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_matches_hand_worked_expectations(name: str) -> None:
    check_outcome(run_api(name), expected_block(name))


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_through_the_cli(name: str, tmp_path: Path) -> None:
    check_outcome(run_cli(name, tmp_path / "schedule.json"), expected_block(name))


def test_scenario_runs_by_its_bundled_name(tmp_path: Path) -> None:
    """``janitor-shadow schedule rules/<name>`` finds the bundled file."""
    from harness.cli import main

    out = tmp_path / "s.json"
    assert main(["schedule", "rules/quirk_queue_ids_have_gaps", "--json", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [row["id"] for row in doc["queue"]] == [1, 3]


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_is_documented_and_named(name: str) -> None:
    document = yaml.safe_load((RULES / f"{name}.yaml").read_text(encoding="utf-8"))
    assert name.startswith(("rule_", "quirk_"))
    assert len(document.get("description") or "") > 80, "say in words what the rule is"
    assert f"test_{name}" in globals(), f"add a named test test_{name}"
    for want in document["expected"]["decisions"]:
        assert "error" in want, f"{want['codebase']}: say whether it fails"


def test_constants_are_the_spec_table() -> None:
    assert core.FIRST_RUN_BONUS == 100.0
    assert core.DEFAULT_ESTIMATED_DURATION_US == 15_000_000  # seconds, not minutes
    assert core.DEFAULT_SCHEDULE_OFFSET == -1.0
    assert core.BULK_DEFAULT_OFFSET == 0.0
    assert core.MINIMUM_COST == 20000.0
    assert core.MINIMUM_NORMALIZED_CODEBASE_VALUE == 0.1
    assert core.DEFAULT_NORMALIZED_CODEBASE_VALUE == 0.5
    assert dict(core.PUBLISH_MODE_VALUE) == {
        "skip": 0,
        "build-only": 0,
        "push": 500,
        "propose": 400,
        "attempt-push": 450,
        "bts": 100,
    }
    assert "push-derived" not in core.PUBLISH_MODE_VALUE


# --------------------------------------------------------------- §2 value


def test_rule_publish_bonus_sums_modes() -> None:
    out = pinned("rule_publish_bonus_sums_modes")
    assert decision(out, "a")["value"] == 10 + 500 + 400 + 450 + 100 + 0 + 0
    assert decision(out, "b")["value"] == 10 + 400
    assert decision(out, "c")["value"] == 10
    assert decision(out, "d")["value"] == 50
    assert decision(out, "a")["offset"] == 35000.0 / 1560


def test_quirk_push_derived_raises_key_error() -> None:
    out = pinned("quirk_push_derived_raises_key_error")
    for codebase in ("a", "b"):  # b: NULL value, but the lookup fails first
        error = decision(out, codebase)["error"]
        assert error["type"] == "builtins.KeyError"
        assert error["message"] == "'push-derived'"
        assert error["phase"] == "queue_item_from_candidate_and_publish_policy"
    assert queue_order(out) == [(1, "c", 68)]


def test_quirk_null_per_branch_policy_raises_type_error() -> None:
    out = pinned("quirk_null_per_branch_policy_raises_type_error")
    assert decision(out, "a")["error"]["type"] == "builtins.TypeError"
    assert decision(out, "b")["error"] is None


def test_quirk_null_value_with_policy_entries_raises_type_error() -> None:
    out = pinned("quirk_null_value_with_policy_entries_raises_type_error")
    for codebase in ("a", "b"):  # b's only entry is skip (+0): still None + 0
        assert decision(out, codebase)["error"]["message"] == (
            "unsupported operand type(s) for +=: 'NoneType' and 'int'"
        )


def test_quirk_null_value_empty_policy_gets_no_first_run_bonus() -> None:
    out = pinned("quirk_null_value_empty_policy_gets_no_first_run_bonus")
    a, b = decision(out, "a"), decision(out, "b")
    assert a["value"] is None and a["total_previous_runs"] == 0
    assert a["offset"] == 35000.0 / 1.0  # counted as 1.0, no +100
    assert b["offset"] == 35000.0 / 101.0  # value 1 + first-run bonus
    assert queue_order(out) == [(1, "b", 346), (2, "a", 35346)]


# --------------------------------------------------------------- §3 normalization


def test_rule_normalized_value_floor_and_default() -> None:
    out = pinned("rule_normalized_value_floor_and_default")
    assert decision(out, "a")["normalized_codebase_value"] == 0.5
    assert decision(out, "b")["normalized_codebase_value"] == 0.05
    assert decision(out, "c")["normalized_codebase_value"] == 0.0
    # floored to 0.1 in the offset: 35000 / (0.1 * 1.0 * 200)
    assert decision(out, "b")["offset"] == decision(out, "c")["offset"] == 1750.0
    # Unreachable in a bulk run, so checked on the formulas: an unknown value
    # counts as 0.5, and an empty codebase table normalizes everyone to 1.0.
    default = core.calculate_offset(
        duration_us=15_000_000,
        normalized_codebase_value=None,
        probability=1.0,
        candidate_value=100,
        total_previous_runs=0,
        codebase="a",
        campaign="c",
    )
    assert default.ncv_effective == 0.5
    assert default.offset == 35000.0 / (0.5 * 1.0 * 200)
    assert core.NormalizedValues([]).for_codebase("anything") == 1.0


def test_quirk_all_codebase_values_zero_divides_by_zero() -> None:
    out = pinned("quirk_all_codebase_values_zero_divides_by_zero")
    assert [d["error"]["type"] for d in out.decisions] == ["builtins.ZeroDivisionError"] * 2
    assert out.queue == []


# --------------------------------------------------------------- §1 selection, §4 re-read


def test_quirk_null_policy_dropped_by_join() -> None:
    out = pinned("quirk_null_policy_dropped_by_join")
    assert [d["codebase"] for d in out.decisions] == ["d"]  # no decision, no error for a, b, ghost


def test_quirk_change_set_candidates_queued_without_change_set() -> None:
    out = pinned("quirk_change_set_candidates_queued_without_change_set")
    assert decision(out, "a")["change_set"] == "cs1"
    assert [row["change_set"] for row in out.queue] == [None, None]


def test_quirk_reread_missing_plain_candidate_is_candidate_unavailable() -> None:
    out = pinned("quirk_reread_missing_plain_candidate_is_candidate_unavailable")
    error = decision(out, "a")["error"]
    assert error["type"] == "janitor.schedule.CandidateUnavailable"
    assert error["message"] == "('lintian-fixes', 'a')"  # (campaign, codebase)
    assert decision(out, "b")["error"] is None  # success_chance set: never re-read


def test_quirk_reread_replaces_only_none_fields() -> None:
    out = pinned("quirk_reread_replaces_only_none_fields")
    twin = decision(out, "a", 1)
    assert (twin["change_set"], twin["context"], twin["command"]) == ("cs1", "plain-ctx", "cs-cmd")
    assert twin["factors"]["candidate_value_effective"] == 300  # raw value, not 300 + 400
    assert twin["offset"] == 30000.0 / (1.0 * 0.1 * 300)
    b = decision(out, "b")
    assert (b["value"], b["context"], b["command"]) == (20, "own-ctx", "cs2-cmd")
    assert queue_order(out) == [(1, "a", 1428), (3, "b", 1678)]


# --------------------------------------------------------------- §5 estimate


def test_rule_probability_formula() -> None:
    out = pinned("rule_probability_formula")
    assert decision(out, "a")["success_probability"] == (1 * 10 + 1) / (3 * 10 + 1) * 1.0
    assert decision(out, "b")["success_probability"] == (1 * 10 + 1) / (1 * 10 + 1) * 0.5


def test_quirk_no_runs_resets_multiplier_to_one() -> None:
    out = pinned("quirk_no_runs_resets_multiplier_to_one")
    assert decision(out, "a")["context"] is None
    assert decision(out, "a")["success_probability"] == 1.0
    assert decision(out, "b")["success_probability"] == 0.5


def test_quirk_same_context_multiplier_is_sticky() -> None:
    out = pinned("quirk_same_context_multiplier_is_sticky")
    assert decision(out, "a")["factors"]["context_multiplier"] == 0.1
    assert decision(out, "b")["factors"]["context_multiplier"] == 1.0
    assert decision(out, "c")["factors"]["context_multiplier"] == 0.1
    assert decision(out, "d")["factors"]["context_multiplier"] == 1.0  # '' never matches


def test_quirk_dependency_satisfied_resets_same_context() -> None:
    out = pinned("quirk_dependency_satisfied_resets_same_context")
    assert decision(out, "a")["success_probability"] == 1.0
    assert decision(out, "b")["success_probability"] == 11 / 21 * 0.1
    assert decision(out, "c")["success_probability"] == 1 / 11 * 0.1


def test_rule_dependency_satisfied_counts_as_success() -> None:
    out = pinned("rule_dependency_satisfied_counts_as_success")
    probabilities = {d["codebase"]: d["success_probability"] for d in out.decisions}
    assert probabilities == {
        "a": 1.0,  # libfoo 1.10 >= 1.9 in Debian order
        "b": 1 / 11,
        "c": 1.0,
        "d": 1 / 11,
        "e": 1 / 11,
        "f": 1 / 11,
    }
    assert decision(out, "b")["offset"] == 3299.9999999999995  # trunc → 3299, not 3300


def test_quirk_strict_debian_operators_fail_like_postgres() -> None:
    out = pinned("quirk_strict_debian_operators_fail_like_postgres")
    for codebase, op in (("a", ">>"), ("b", "<<")):
        error = decision(out, codebase)["error"]
        assert error["type"] == "asyncpg.exceptions.UndefinedFunctionError"
        assert error["sqlstate"] == "42883"
        assert error["message"] == f"operator does not exist: debversion {op} unknown{HINT}"
    assert decision(out, "c")["error"] is None and decision(out, "d")["error"] is None
    assert decision(out, "e")["error"]["message"].startswith(
        "operator does not exist: debversion << unknown"  # the newest run's operator
    )


def test_quirk_missing_all_debian_versions_table() -> None:
    out = pinned("quirk_missing_all_debian_versions_table")
    error = decision(out, "a")["error"]
    assert (error["type"], error["sqlstate"]) == ("asyncpg.exceptions.UndefinedTableError", "42P01")
    assert decision(out, "b")["error"] is None and decision(out, "c")["error"] is None


def test_quirk_worker_failure_exactly_24h_old_is_ignored() -> None:
    out = pinned("quirk_worker_failure_exactly_24h_old_is_ignored")
    runs = {d["codebase"]: d["total_previous_runs"] for d in out.decisions}
    assert runs == {"a": 1, "b": 2, "c": 1}  # 24h: skipped; 24h - 1µs: counted; 24h + 1µs: skipped


def test_quirk_null_failure_transient_counts_as_not_transient() -> None:
    out = pinned("quirk_null_failure_transient_counts_as_not_transient")
    a = decision(out, "a")
    assert (a["total_previous_runs"], a["estimated_duration_us"]) == (2, 15_000_000)


def test_quirk_null_run_times_are_candidate_errors() -> None:
    out = pinned("quirk_null_run_times_are_candidate_errors")
    assert decision(out, "a")["error"]["type"] == "builtins.TypeError"
    assert decision(out, "b")["error"] is not None
    assert decision(out, "c")["error"] is None


def test_rule_mean_duration_sum_order_newest_first() -> None:
    out = pinned("rule_mean_duration_sum_order_newest_first")
    # exact mean 16150000.5 µs would round (half to even) to 16150000
    assert decision(out, "a")["estimated_duration_us"] == 16_150_001


def test_rule_avg_interval_rounds_like_postgres() -> None:
    out = pinned("rule_avg_interval_rounds_like_postgres")
    # exact mean 12351428571.43 µs; PostgreSQL rounds the day fraction first
    assert decision(out, "a")["estimated_duration_us"] == 12_351_428_572


def test_quirk_codebase_average_before_campaign_average() -> None:
    out = pinned("quirk_codebase_average_before_campaign_average")
    durations = {d["codebase"]: d["estimated_duration_us"] for d in out.decisions}
    assert durations == {"a": 40_000_000, "b": 10_000_000, "c": 15_000_000}


def test_quirk_codebase_average_includes_old_worker_failures_and_all_campaigns() -> None:
    out = pinned("quirk_codebase_average_includes_old_worker_failures_and_all_campaigns")
    a = decision(out, "a")
    assert (a["total_previous_runs"], a["estimated_duration_us"]) == (0, 60_000_000)


def test_rule_average_skips_null_times() -> None:
    out = pinned("rule_average_skips_null_times")
    assert decision(out, "a")["estimated_duration_us"] == 20_000_000


def test_rule_default_duration_15_seconds() -> None:
    out = pinned("rule_default_duration_15_seconds")
    assert decision(out, "a")["estimated_duration_us"] == 15 * 1_000_000
    assert decision(out, "a")["offset"] == 35000.0 / 200  # and no -1.0 default offset


def test_quirk_zero_average_duration_is_kept() -> None:
    out = pinned("quirk_zero_average_duration_is_kept")
    assert decision(out, "a")["estimated_duration_us"] == 0
    assert decision(out, "a")["offset"] == 20000.0 / 200


# --------------------------------------------------------------- §6 offset


def test_rule_offset_is_cost_over_worth() -> None:
    out = pinned("rule_offset_is_cost_over_worth")
    a = decision(out, "a")
    cost = 20000.0 + (1000.0 * 9.67284 + 672840 / 1000.0)
    worth = (0.5 * ((1 * 10 + 1) / (2 * 10 + 1) * 0.5)) * 550
    assert a["offset"] == cost / worth == 421.3284495867768


def test_quirk_subsecond_duration_counted_twice() -> None:
    out = pinned("quirk_subsecond_duration_counted_twice")
    a = decision(out, "a")
    assert a["factors"]["cost"] == 20000.0 + (1500.0 + 500.0)  # not 21500
    assert a["offset"] == 220.0


def test_quirk_success_chance_never_used() -> None:
    out = pinned("quirk_success_chance_never_used")
    assert len({d["offset"] for d in out.decisions}) == 1
    assert [d["factors"]["success_chance"] for d in out.decisions] == [0.01, 0.99, None]


def test_rule_first_run_bonus_only_without_previous_runs() -> None:
    out = pinned("rule_first_run_bonus_only_without_previous_runs")
    bonus = {d["codebase"]: d["first_run_bonus"] for d in out.decisions}
    assert bonus == {"a": 100.0, "b": 0.0, "c": 100.0, "d": 100.0}


def test_quirk_zero_value_fails_assertion_unless_first_run() -> None:
    out = pinned("quirk_zero_value_fails_assertion_unless_first_run")
    assert decision(out, "a")["error"]["type"] == "builtins.AssertionError"
    assert decision(out, "a")["error"]["message"].startswith("During lintian-fixes/a:")
    assert decision(out, "b")["offset"] == 300.0


# --------------------------------------------------------------- §7 queue


def test_quirk_first_row_goes_to_queue_head() -> None:
    out = pinned("quirk_first_row_goes_to_queue_head")
    assert out.queue[0]["codebase"] == "c"
    assert max(d["offset"] for d in out.decisions) == decision(out, "c")["offset"]


def test_quirk_truncation_ties_broken_by_insertion_order() -> None:
    out = pinned("quirk_truncation_ties_broken_by_insertion_order")
    assert decision(out, "b")["offset"] > decision(out, "c")["offset"]
    assert queue_order(out) == [(1, "a", 35), (2, "b", 45), (3, "c", 45)]


def test_quirk_priority_truncated_before_adding_queue_minimum() -> None:
    out = pinned("quirk_priority_truncated_before_adding_queue_minimum")
    assert decision(out, "a")["factors"]["priority"] == -100 + 11  # not trunc(-88.33) = -88
    assert decision(out, "b")["factors"]["priority"] == -100 + 38  # not -100 + round(38.9)


def test_quirk_priority_relative_to_existing_queue_minimum() -> None:
    out = pinned("quirk_priority_relative_to_existing_queue_minimum")
    assert queue_order(out) == [(1, "x", 1000), (3, "a", 1087), (2, "y", 1200), (4, "b", 1250)]


def test_quirk_requeue_same_bucket_overwrites_even_with_worse_priority() -> None:
    out = pinned("quirk_requeue_same_bucket_overwrites_even_with_worse_priority")
    a = out.queue[0]
    assert (a["id"], a["priority"], a["command"], a["requester"]) == (
        5,
        45,
        "lintian-brush",
        "scheduler",
    )


def test_rule_requeue_never_demotes_higher_bucket_entry() -> None:
    out = pinned("rule_requeue_never_demotes_higher_bucket_entry")
    a = out.queue[0]
    assert (a["id"], a["bucket"], a["priority"], a["command"]) == (2, "manual", 100, "manual-cmd")
    assert out.queue[1]["id"] == 4  # the refused add still spent id 3


def test_rule_queue_order_bucket_priority_id() -> None:
    out = pinned("rule_queue_order_bucket_priority_id")
    assert [row["codebase"] for row in out.queue] == ["u", "m", "h", "d", "x", "y", "a"]


def test_quirk_queue_ids_have_gaps() -> None:
    out = pinned("quirk_queue_ids_have_gaps")
    assert [row["id"] for row in out.queue] == [1, 3]


# --------------------------------------------------------------- §8 errors


def test_quirk_errors_recorded_and_run_goes_on() -> None:
    out = pinned("quirk_errors_recorded_and_run_goes_on")
    assert [d["error"] is None for d in out.decisions] == [False, True, False, True]
    assert out.notes == [
        "the real legacy would have stopped at candidate #0 (a/lintian-fixes: "
        "builtins.KeyError); this port recorded 2 failing candidate(s) and went on"
    ]
    assert queue_order(out) == [(1, "b", 35), (2, "d", 122)]
