"""The comparator on constructed pairs of schedules with known answers."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from support_engines import make_decision, make_schedule

from engines.model import ErrorInfo
from harness.comparison.compare import compare_schedules
from harness.comparison.tolerances import load_settings


def _base() -> list:
    return [make_decision(f"c{i}", probability=0.1 + 0.05 * i) for i in range(10)]


def test_identical_schedules_pass_with_nothing_to_report() -> None:
    decisions = _base()
    c = compare_schedules(make_schedule(decisions), make_schedule(list(decisions)))
    assert c.verdict == "pass"
    assert (c.real, c.noise, c.waived) == (0, 0, 0)
    assert c.counts.identical == 10 and c.counts.aligned == 10
    assert c.candidates == () and c.candidates_total == 0
    assert all(s.divergent == 0 and s.equal == s.compared == 10 for s in c.fields)
    assert c.ranking is not None and c.ranking.rbo == 1.0
    assert math.isclose(c.ranking.kendall_tau_b or 0.0, 1.0)


def test_missing_and_extra_candidates() -> None:
    a = _base()
    b = [*a[1:], make_decision("newcomer", "fresh")]
    c = compare_schedules(make_schedule(a), make_schedule(b))
    assert (c.counts.missing, c.counts.extra, c.counts.aligned) == (1, 1, 9)
    assert [(k.codebase, k.side, k.status) for k in c.missing] == [("c0", "A", "real")]
    assert [(k.codebase, k.side) for k in c.extra] == [("newcomer", "B")]
    kinds = {d.kind: d for d in c.candidates}
    assert kinds["missing"].codebase == "c0" and kinds["missing"].rank_a == 10  # worst offset
    assert kinds["extra"].campaign == "fresh"
    assert c.real == 2 and c.verdict == "fail"
    by_campaign = {s.campaign: s for s in c.campaigns}
    assert by_campaign["fresh"].extra == 1 and by_campaign["lintian-fixes"].missing == 1
    assert by_campaign["lintian-fixes"].field_divergences == {"presence": 1}


def test_errors_against_values_and_against_other_errors() -> None:
    a = _base()
    b = list(a)
    key_error = ErrorInfo("builtins.KeyError", "'x'")
    b[0] = replace(a[0], error=key_error, offset=None)  # value vs error
    a[1] = replace(a[1], error=key_error, offset=None)  # error vs value
    a[2] = replace(a[2], error=key_error, offset=None)
    b[2] = replace(a[2], error=ErrorInfo("builtins.ZeroDivisionError", "division by zero"))
    a[3] = replace(a[3], error=key_error, offset=None)
    b[3] = replace(a[3], error=ErrorInfo("builtins.KeyError", "another message"))
    c = compare_schedules(make_schedule(a), make_schedule(b))
    kinds = {(e.codebase, e.kind, e.type_a, e.type_b) for e in c.error_mismatches}
    assert kinds == {
        ("c0", "value_vs_error", None, "builtins.KeyError"),
        ("c1", "error_vs_value", "builtins.KeyError", None),
        ("c2", "error_mismatch", "builtins.KeyError", "builtins.ZeroDivisionError"),
    }
    assert c.counts.both_error_same == 1  # c3: same type, different message: agreement
    assert c.counts.error_mismatches == 3
    assert c.real == 3
    # an error is not also reported as a numeric null mismatch
    assert all(s.null_mismatch == 0 for s in c.fields)


def test_nan_and_infinity_rules() -> None:
    a = _base()
    b = list(a)
    a[0] = replace(a[0], value=math.nan)
    b[0] = replace(b[0], value=math.nan)  # NaN vs NaN: equal
    b[1] = replace(b[1], value=math.nan)  # number vs NaN: divergence
    a[2] = replace(a[2], normalized_codebase_value=math.inf)
    b[2] = replace(b[2], normalized_codebase_value=math.inf)  # same infinity: equal
    a[3] = replace(a[3], normalized_codebase_value=math.inf)
    b[3] = replace(b[3], normalized_codebase_value=-math.inf)  # opposite: divergence
    b[4] = replace(b[4], normalized_codebase_value=None)  # value vs None
    c = compare_schedules(make_schedule(a), make_schedule(b))
    value = c.field_stats("value")
    ncv = c.field_stats("normalized_codebase_value")
    assert value is not None and ncv is not None
    assert (value.divergent, value.nonfinite_mismatch, value.equal) == (1, 1, 9)
    assert (ncv.divergent, ncv.nonfinite_mismatch, ncv.null_mismatch) == (2, 1, 1)
    assert ncv.max_abs_delta == 0.0  # statistics never contain inf or NaN
    diffs = {d.codebase: d for d in c.candidates}
    assert set(diffs) == {"c1", "c3", "c4"}
    delta = diffs["c1"].fields[0]
    assert delta.field == "value" and math.isnan(delta.b or 0.0) and delta.abs_delta is None
    assert diffs["c4"].fields[0].b is None


def test_tolerances_probability_absolute_and_offset_relative() -> None:
    a = _base()
    b = list(a)
    b[0] = replace(a[0], success_probability=a[0].success_probability + 0.009)
    b[1] = replace(a[1], success_probability=a[1].success_probability + 0.011)
    b[2] = replace(a[2], offset=a[2].offset * (1 + 5e-7))
    b[3] = replace(a[3], offset=a[3].offset * (1 + 5e-6))
    c = compare_schedules(make_schedule(a), make_schedule(b))
    prob, offset = c.field_stats("success_probability"), c.field_stats("offset")
    assert prob is not None and offset is not None
    assert (prob.within_tolerance, prob.divergent) == (1, 1)
    assert (offset.within_tolerance, offset.divergent) == (1, 1)
    assert {d.codebase for d in c.candidates} == {"c1", "c3"}


def test_last_decision_of_a_repeated_key_wins() -> None:
    a = _base()
    stale = replace(a[0], success_probability=0.9)
    b = [stale, *a]  # the later, correct decision overwrites the stale one
    c = compare_schedules(make_schedule(a), make_schedule(b))
    assert c.counts.duplicate_keys_b == 1
    assert c.field_stats("success_probability").divergent == 0  # type: ignore[union-attr]


def test_budget_allows_that_many_real_divergences() -> None:
    a = _base()
    b = [*a[:-1], replace(a[-1], success_probability=0.01)]
    assert compare_schedules(make_schedule(a), make_schedule(b), budget=1).verdict == "pass"
    failed = compare_schedules(make_schedule(a), make_schedule(b), budget=0)
    assert failed.verdict == "fail" and "budget of 0" in failed.verdict_reason


def test_structure_differences_come_with_deepdiff_lines() -> None:
    a = _base()
    b = list(a)
    b[5] = replace(a[5], command="rm -rf /")
    c = compare_schedules(make_schedule(a), make_schedule(b))
    assert c.structure_divergences == {"command": 1}
    (diff,) = c.candidates
    assert diff.kind == "value" and diff.status == "real" and diff.fields == ()
    assert any("command" in line and "rm -rf /" in line for line in diff.structure)


def test_queue_position_ignores_ties_and_one_sided_items() -> None:
    a = [make_decision(f"t{i}") for i in range(4)]  # identical offsets: one tie group
    sched_a = make_schedule(a)
    sched_b = make_schedule(list(reversed(a)))  # the tie is broken the other way
    c = compare_schedules(sched_a, sched_b)
    assert c.field_stats("queue_position").divergent == 0  # type: ignore[union-attr]
    assert c.ranking is not None and c.ranking.rbo == 1.0 and c.ranking.moved == 0


def test_top_n_caps_the_lists_not_the_counts() -> None:
    a = [make_decision(f"c{i}") for i in range(30)]
    b = [replace(d, success_probability=0.9) for d in a]
    tight = replace(load_settings(), top_n=5)
    c = compare_schedules(make_schedule(a), make_schedule(b), settings=tight)
    assert len(c.candidates) == 5 and c.candidates_total == 30 and c.real == 30


def test_candidates_are_sorted_real_first_then_by_severity() -> None:
    a = _base()
    b = list(a)
    b[0] = replace(a[0], offset=a[0].offset * 1.01)
    b[1] = replace(a[1], offset=a[1].offset * 3)
    b[2] = replace(a[2], offset=a[2].offset * 1.5)
    c = compare_schedules(make_schedule(a), make_schedule(b))
    assert [d.codebase for d in c.candidates] == ["c1", "c2", "c0"]
    assert c.candidates[0].severity == math.log(3) or math.isclose(
        c.candidates[0].severity, math.log(3)
    )


finite = st.floats(min_value=0.01, max_value=1.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=25), st.lists(finite, min_size=1, max_size=25))
def test_self_comparison_is_clean_and_divergence_counts_are_symmetric(
    probs_a: list[float], probs_b: list[float]
) -> None:
    a = [make_decision(f"c{i}", probability=p) for i, p in enumerate(probs_a)]
    b = [make_decision(f"c{i}", probability=p) for i, p in enumerate(probs_b)]
    same = compare_schedules(make_schedule(a), make_schedule(list(a)))
    assert same.real == 0 and same.counts.identical == len(a)
    ab = compare_schedules(make_schedule(a), make_schedule(b))
    ba = compare_schedules(make_schedule(b), make_schedule(a))
    assert (ab.counts.missing, ab.counts.extra) == (ba.counts.extra, ba.counts.missing)
    for x, y in zip(ab.fields, ba.fields, strict=True):
        assert x.divergent == y.divergent, x.field
    assert ab.real == ba.real


def _scalar_verdict(a: float | None, b: float | None, absolute: float, relative: float) -> str:
    """The comparison rules, one pair at a time, written as plainly as possible."""
    if a is None and b is None:
        return "equal"
    if a is None or b is None:
        return "divergent"
    if a == b or (math.isnan(a) and math.isnan(b)):
        return "equal"
    delta = abs(b - a)
    if not math.isfinite(delta):
        return "divergent"
    if delta <= absolute or delta <= relative * max(abs(a), abs(b)):
        return "tolerated"
    return "divergent"


values = st.one_of(
    st.none(),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.0, 0.01]),
    st.floats(min_value=-1e6, max_value=1e6),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(values, values), min_size=1, max_size=30))
def test_vectorised_rules_agree_with_the_scalar_rules(pairs: list[tuple]) -> None:
    # only the "value" field differs; offsets and everything else stay equal
    a = [replace(make_decision(f"c{i}"), value=x) for i, (x, _) in enumerate(pairs)]
    b = [replace(make_decision(f"c{i}"), value=y) for i, (_, y) in enumerate(pairs)]
    tol = load_settings().tolerance("value")
    c = compare_schedules(make_schedule(a), make_schedule(b))
    expected = [_scalar_verdict(x, y, tol.absolute, tol.relative) for x, y in pairs]
    stats = c.field_stats("value")
    assert stats is not None
    assert stats.equal == expected.count("equal")
    assert stats.within_tolerance == expected.count("tolerated")
    assert stats.divergent == expected.count("divergent")
    flagged = {d.codebase for d in c.candidates for f in d.fields if f.field == "value"}
    assert flagged == {f"c{i}" for i, v in enumerate(expected) if v == "divergent"}
