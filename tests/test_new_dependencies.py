"""DependencyResolver: Debian operators and ordering, campaign order, cycles."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engines.new.config import config_from_mapping
from engines.new.dependencies import DependencyResolver, topological_order, version_satisfies
from harness.errors import ConfigError


@pytest.mark.parametrize(
    ("have", "op", "wanted", "expected"),
    [
        ("1.0-1", "<<", "1.0-2", True),
        ("1.0-2", "<<", "1.0-2", False),
        ("1.0-2", "<=", "1.0-2", True),
        ("1.0-2", "=", "1.0-2", True),
        ("1.0-2", ">=", "1.0-2", True),
        ("1.0-3", ">>", "1.0-2", True),
        ("1.0-2", ">>", "1.0-2", False),
        # Debian ordering, not text ordering
        ("2.0~rc1-1", "<<", "2.0-1", True),
        ("1:0.5-1", ">>", "9.9-1", True),
        ("1.10-1", ">>", "1.9-1", True),
        ("1.0+dfsg-1", ">>", "1.0-1", True),
        # SQL spellings keep their strict SQL meaning
        ("1.0-2", "<", "1.0-2", False),
        ("1.0-2", ">", "1.0-1", True),
        ("1.0-2", "<>", "1.0-1", True),
        ("1.0-2", "~=", "1.0-1", False),
    ],
)
def test_debian_operators(have: str, op: str, wanted: str, expected: bool) -> None:
    assert version_satisfies(have, op, wanted) is expected


VERSION = st.builds(
    lambda epoch, up, rev: f"{epoch}{up}-{rev}",
    st.sampled_from(["", "1:", "2:"]),
    st.from_regex(r"[0-9]{1,2}(\.[0-9]{1,2}){0,2}(~rc[0-9])?", fullmatch=True),
    st.integers(1, 9),
)


@given(VERSION, VERSION)
def test_operators_are_a_consistent_total_order(a: str, b: str) -> None:
    lt, eq, gt = (version_satisfies(a, op, b) for op in ("<<", "=", ">>"))
    assert lt + eq + gt == 1
    assert version_satisfies(a, "<=", b) == (lt or eq)
    assert version_satisfies(a, ">=", b) == (gt or eq)
    assert version_satisfies(b, ">>", a) == lt


def test_relations_evaluate_strict_operators_and_say_the_legacy_fails() -> None:
    resolver = DependencyResolver({}, {"libfoo": ("1.0-1", "2.0-1")})
    ok = resolver.relations_satisfied([[{"name": "libfoo", "version": [">>", "1.5"]}]])
    assert ok.satisfied
    assert ok.legacy_failure is not None and "debversion >> unknown" in ok.legacy_failure
    no = resolver.relations_satisfied([[{"name": "libfoo", "version": ["<<", "1.0-1"]}]])
    assert not no.satisfied and "debversion << unknown" in str(no.legacy_failure)
    plain = resolver.relations_satisfied(
        [[{"name": "libbar"}, {"name": "libfoo", "version": [">=", "2.0-1"]}]]
    )
    assert plain.satisfied and plain.legacy_failure is None
    missing = resolver.relations_satisfied([[{"name": "libfoo"}], [{"name": "libbar"}]])
    assert not missing.satisfied


def test_the_legacy_stops_at_the_first_decided_alternative() -> None:
    # The legacy finds libfoo first and never sends the '<<' of the second alternative.
    resolver = DependencyResolver({}, {"libfoo": ("1.0-1",)})
    verdict = resolver.relations_satisfied(
        [[{"name": "libfoo"}, {"name": "libfoo", "version": ["<<", "3"]}]]
    )
    assert verdict.satisfied and verdict.legacy_failure is None


def test_missing_versions_table_is_unsatisfied_and_reported() -> None:
    verdict = DependencyResolver({}, None).relations_satisfied([[{"name": "libfoo"}]])
    assert not verdict.satisfied
    assert "all_debian_versions" in str(verdict.legacy_failure)


def test_topological_order_puts_dependencies_first() -> None:
    rank = topological_order(
        {"fresh-snapshots": ("debianize",), "lintian-fixes": ("fresh-snapshots",)}
    )
    assert rank["debianize"] < rank["fresh-snapshots"] < rank["lintian-fixes"]


def test_cycle_is_a_config_error_naming_the_cycle() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(
            {"campaign_dependencies": {"x": ["y"], "y": ["z"], "z": ["x"], "w": ["x"]}}, "my.yaml"
        )
    message = str(info.value)
    assert message.startswith("my.yaml: key 'campaign_dependencies': dependency cycle ")
    assert "w" not in message.split("cycle", 1)[1]
    assert "x → y → z → x" in message


def test_campaign_dependencies_hold_back_candidates_until_met() -> None:
    from datetime import datetime

    from engines.model import (
        Candidate,
        Codebase,
        Dataset,
        NamedPublishPolicy,
        PolicyEntry,
        Run,
        datetime_to_us,
    )
    from engines.new.config import load_profile
    from engines.new.scoring import SchedulingEngine

    base = load_profile("default")
    config = config_from_mapping(
        {"campaign_dependencies": {"fresh-snapshots": ["debianize"]}}, "deps.yaml"
    )
    config = type(base)(
        scheduling=base.scheduling,
        publish_mode_values=base.publish_mode_values,
        success_estimation=base.success_estimation,
        duration_estimation=base.duration_estimation,
        campaign_dependencies=config.campaign_dependencies,
        source="deps.yaml",
    )
    now = datetime(2025, 6, 1)
    start = datetime_to_us(now) - 3_600_000_000
    dataset = Dataset(
        as_of=now,
        codebases=(Codebase("a", None, 10), Codebase("b", None, 20)),
        candidates=(
            Candidate(1, "a", "fresh-snapshots", "x", publish_policy="p"),
            Candidate(2, "b", "fresh-snapshots", "x", publish_policy="p"),
            Candidate(3, "a", "debianize", "x", publish_policy="p"),
        ),
        policies=(NamedPublishPolicy("p", (PolicyEntry("main", "propose"),)),),
        runs=(Run("r1", "b", "debianize", "success", start, start + 60_000_000),),
        debian_versions=(),
    )
    schedule = SchedulingEngine(config, name="new:deps", profile="deps").schedule(dataset)
    by_key = {d.key[:2]: d for d in schedule.decisions}
    # debianize (the dependency) is processed first
    assert schedule.decisions[0].campaign == "debianize"
    assert by_key[("a", "fresh-snapshots")].bucket is None
    assert any(
        "debianize" in r and "not queued" in r for r in by_key[("a", "fresh-snapshots")].reasons
    )
    assert by_key[("b", "fresh-snapshots")].bucket == "default"
    assert {q.key[:2] for q in schedule.queue} == {("b", "fresh-snapshots"), ("a", "debianize")}


_VERSION_TEXT = st.text(alphabet="0123456789.~+-:abzAZ", max_size=10)


@given(
    st.lists(_VERSION_TEXT, max_size=5),
    st.sampled_from(["<<", "<=", "=", ">=", ">>", "<", ">", "<>"]),
    _VERSION_TEXT,
)
def test_any_version_satisfies_equals_the_extreme_shortcut(
    have: list[str], op: str, wanted: str
) -> None:
    resolver = DependencyResolver({}, {"pkg": tuple(have)})
    expected = any(version_satisfies(v, op, wanted) for v in have)
    assert resolver.entry_available("pkg", op, wanted) == expected


_NAMES = st.sampled_from(["libfoo", "libbar", "libbaz", "gone"])
_CONSTRAINT = st.tuples(
    st.sampled_from(["<<", "<=", "=", ">=", ">>", "<", ">", "<>"]), _VERSION_TEXT
).map(list)
_GOOD_ENTRY = st.fixed_dictionaries(
    {"name": _NAMES}, optional={"version": st.one_of(st.none(), _CONSTRAINT), "arch": st.none()}
)
_ODD_ENTRY = st.one_of(
    st.fixed_dictionaries({"name": _NAMES, "flavour": st.just("unexpected key")}),
    st.fixed_dictionaries(
        {"name": _NAMES, "version": st.sampled_from([["="], [">=", 1], ["~=", "1"]])}
    ),
    st.sampled_from([{"version": None}, "libfoo", {"name": None}]),
)
_WELL_FORMED = st.lists(st.lists(_GOOD_ENTRY, min_size=1, max_size=3), min_size=1, max_size=4)
_RELATIONS = st.one_of(
    _WELL_FORMED,
    _WELL_FORMED.flatmap(
        lambda good: st.tuples(st.integers(0, len(good)), _ODD_ENTRY).map(
            lambda odd: [*good[: odd[0]], [odd[1]], *good[odd[0] :]]
        )
    ),
    st.sampled_from([{"name": "libfoo"}, ["libfoo"], [[]], []]),
)


@given(_RELATIONS)
def test_fast_verdict_agrees_with_the_full_walk(relations: object) -> None:
    known = {"libfoo": ("1.0-1", "2.0-1"), "libbar": ("0.9",), "libbaz": ("x:y",)}
    for versions in (known, None):
        fast = DependencyResolver({}, versions).verdict(relations)
        full = DependencyResolver({}, versions).relations_verdict(relations)
        assert fast == (full.satisfied, full.legacy_failure)
