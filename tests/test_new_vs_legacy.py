"""new:parity and legacy:memory agree on generated datasets (hypothesis).

The datasets are small but full of what makes the legacy odd: NULL contexts
and values, change-set twins, worker failures around the one-day boundary,
transient flags, install-deps failures with Debian relations (including the
``<<``/``>>`` operators the legacy cannot send), push-derived policies, an
empty policy, codebases without value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engines.base import get_engine
from engines.model import (
    US_PER_DAY,
    Candidate,
    Codebase,
    Dataset,
    DebianVersion,
    NamedPublishPolicy,
    PolicyEntry,
    Run,
    Schedule,
    datetime_to_us,
)

AS_OF = datetime(2025, 6, 1)
AS_OF_US = datetime_to_us(AS_OF)
CODEBASES = ("alpha", "beta", "gamma", "delta")
CAMPAIGNS = ("lintian-fixes", "fresh-releases", "debianize")
CONTEXTS = (None, "", "ctx-a", "ctx-b")
CODES = (
    "success",
    "success",
    "build-failed",
    "worker-failure",
    "install-deps-unsatisfied-dependencies",
    "nothing-to-do",
)
PACKAGES = ("libfoo", "libbar", "python3-baz")
VERSIONS = ("1.0-1", "1.0-2", "2.0~rc1-1", "2.0-1", "1:0.5-1")
OPERATORS = ("<=", ">=", "=", "<", ">", "<<", ">>")

POLICIES = (
    NamedPublishPolicy("plain", (PolicyEntry("main", "propose"),)),
    NamedPublishPolicy("pushy", (PolicyEntry("main", "push"), PolicyEntry("pristine", "bts"))),
    NamedPublishPolicy("derived", (PolicyEntry("main", "push-derived"),)),
    NamedPublishPolicy("empty", ()),
)


@st.composite
def relations(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    out = []
    for _ in range(draw(st.integers(1, 2))):
        alternatives = []
        for _ in range(draw(st.integers(1, 2))):
            version = draw(
                st.one_of(
                    st.none(), st.tuples(st.sampled_from(OPERATORS), st.sampled_from(VERSIONS))
                )
            )
            alternatives.append(
                {
                    "name": draw(st.sampled_from(PACKAGES)),
                    "version": None if version is None else list(version),
                    "arch": None,
                }
            )
        out.append(alternatives)
    return out


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    codebases = tuple(
        Codebase(name, None, draw(st.one_of(st.none(), st.integers(1, 5000)))) for name in CODEBASES
    )
    candidates = []
    seen: set[tuple[str, str, str | None]] = set()
    for i in range(draw(st.integers(1, 10))):
        codebase = draw(st.sampled_from(CODEBASES))
        campaign = draw(st.sampled_from(CAMPAIGNS))
        change_set = draw(st.sampled_from((None, None, None, "cs1")))
        if (codebase, campaign, change_set) in seen:
            continue
        seen.add((codebase, campaign, change_set))
        candidates.append(
            Candidate(
                id=i + 1,
                codebase=codebase,
                suite=campaign,
                command="do-it",
                change_set=change_set,
                context=draw(st.sampled_from(CONTEXTS)),
                value=draw(st.one_of(st.none(), st.integers(1, 200))),
                success_chance=draw(st.one_of(st.none(), st.floats(0, 1))),
                publish_policy=draw(st.sampled_from(("plain", "pushy", "derived", "empty"))),
            )
        )
    runs = []
    for i in range(draw(st.integers(0, 30))):
        code = draw(st.sampled_from(CODES))
        age = draw(
            st.one_of(
                st.integers(0, 400 * US_PER_DAY),
                st.sampled_from((US_PER_DAY - 1, US_PER_DAY, US_PER_DAY + 1)),
            )
        )
        start = AS_OF_US - age
        details = None
        if code == "install-deps-unsatisfied-dependencies":
            details = draw(
                st.one_of(
                    st.none(), st.just({}), st.builds(lambda r: {"relations": r}, relations())
                )
            )
        finish = start + draw(st.integers(0, 7200 * 1_000_000))
        # now and then a run without a start or finish time (the legacy raises on those)
        missing = draw(st.sampled_from((None,) * 18 + ("start", "finish")))
        runs.append(
            Run(
                id=f"run-{i:03d}",
                codebase=draw(st.sampled_from(CODEBASES)),
                suite=draw(st.sampled_from(CAMPAIGNS)),
                result_code=code,
                start_us=None if missing == "start" else start,
                finish_us=None if missing == "finish" else finish,
                failure_transient=draw(st.sampled_from((None, False, True))),
                instigated_context=draw(st.sampled_from(CONTEXTS)),
                context=draw(st.sampled_from(CONTEXTS)),
                failure_details=details,
            )
        )
    versions = tuple(
        DebianVersion(p, v, "sid") for p in PACKAGES for v in VERSIONS if draw(st.booleans())
    )
    return Dataset(
        as_of=AS_OF,
        codebases=codebases,
        candidates=tuple(candidates),
        policies=POLICIES,
        runs=tuple(runs),
        debian_versions=versions,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_parity_agrees_with_the_legacy_on_every_non_error_candidate(dataset: Dataset) -> None:
    legacy = get_engine("legacy:memory").schedule(dataset)
    new = get_engine("new:parity").schedule(dataset)
    assert [d.key for d in legacy.decisions] == [d.key for d in new.decisions]
    for old, d in zip(legacy.decisions, new.decisions, strict=True):
        # the new engine recognises exactly the candidates the legacy fails on
        assert ("legacy_failure" in d.factors) == (old.error is not None), (old.error, d.reasons)
        assert d.error is None and d.offset is not None
        if old.error is not None:
            continue
        assert d.value == old.value
        assert d.normalized_codebase_value == old.normalized_codebase_value
        assert d.success_probability == old.success_probability, d.reasons
        assert d.total_previous_runs == old.total_previous_runs
        assert d.estimated_duration_us == old.estimated_duration_us, d.reasons
        assert d.offset == old.offset
    assert [(q.id, q.key, q.priority, q.estimated_duration_us, q.context) for q in new.queue] == [
        (q.id, q.key, q.priority, q.estimated_duration_us, q.context) for q in legacy.queue
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_default_profile_decides_everything_sensibly(dataset: Dataset) -> None:
    schedule = get_engine("new").schedule(dataset)
    for d in schedule.decisions:
        assert d.error is None
        assert d.success_probability is not None and 0.0 <= d.success_probability <= 1.0
        assert d.estimated_duration_us is not None and d.estimated_duration_us >= 0
        assert d.offset is not None and d.offset > 0
        assert len(d.reasons) >= 6
    assert len(schedule.queue) == len({d.key[:2] for d in schedule.decisions})


def decided_ahead(
    dataset: Dataset,
    spec: str,
    forget: Callable[[str], bool] | None,
    *,
    one_by_one: bool = False,
    by_row: bool = False,
    count_satisfied: bool = True,
) -> tuple[Schedule, Schedule]:
    """(the engine deciding install-deps failures one by one, the same decided ahead on
    arrays from a columnar snapshot's verdicts, those ``forget`` picks dropped;
    ``forget`` None: no verdicts at all). ``one_by_one``: the engine asks for each
    candidate's estimates on its own instead of for all at once. ``by_row``: the
    verdicts by run-table row, as the worker sends them, not by text.
    ``count_satisfied``: the profile's count_satisfied_dependencies_as_success."""
    import tempfile
    from pathlib import Path

    import pyarrow.parquet as pq

    from engines.new.aggregates import (
        UNKNOWN_VERDICT,
        RowVerdicts,
        RunColumns,
        aggregate_run_columns,
    )
    from engines.new.verdict_worker import row_verdicts
    from harness.data.snapshot import write_snapshot

    engine = get_engine(spec)
    if not count_satisfied:
        config = engine.config
        estimation = replace(
            config.success_estimation, count_satisfied_dependencies_as_success=False
        )
        engine = type(engine)(
            replace(config, success_estimation=estimation), name=engine.name, profile="test"
        )
    if one_by_one:
        engine._estimate_all = lambda candidates, *rest: [None] * len(candidates)  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_snapshot(dataset, Path(tmp) / "snap", columnar_runs=True)
        columns = RunColumns.read_parquet(folder / "run.parquet")
        rows = row_verdicts(folder / "run.parquet", folder)
        details = pq.read_table(folder / "run.parquet").column("failure_details")
        verdicts = rows.by_text(details)
        texts = details.to_pylist()
    kept = verdicts if forget is None else {t: v for t, v in verdicts.items() if not forget(t)}
    given: dict[str, Any] | RowVerdicts | None = None if forget is None else kept
    if by_row and forget is not None:
        codes = rows.codes.copy()
        codes[[i for i, text in enumerate(texts) if text is not None and text not in kept]] = (
            UNKNOWN_VERDICT
        )
        given = RowVerdicts(codes, rows.outcomes)
    agg, pending = aggregate_run_columns(columns, engine.config, dataset.as_of_us)
    pending.complete(
        agg,
        (c.context for c in dataset.candidates if c.context),
        debian_versions=dataset.debian_versions_by_source,
        verdicts=given,
        config=engine.config,
    )
    if forget is not None and kept == verdicts:
        assert not agg.deps_runs  # every group decided ahead
    # by row, the engine is given no verdicts (as from a snapshot): it works out the rest
    ahead = engine.schedule_aggregated(dataset, agg, started=0.0, verdicts=None if by_row else kept)
    return engine.schedule(dataset), ahead


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    datasets(),
    st.sampled_from(("new:parity", "new:default")),
    st.sampled_from(("every", "some", "none")),
    st.randoms(use_true_random=False),
    st.booleans(),
    st.booleans(),
)
def test_install_deps_failures_decided_ahead_decide_as_the_engine_would(
    dataset: Dataset, spec: str, known: str, rng: Any, by_row: bool, count_satisfied: bool
) -> None:
    """A snapshot's install-deps failures, decided per group on arrays from the verdicts
    of their texts (all, some or none of them known), give the schedule the engine
    gives deciding them one by one."""
    forget = {
        "every": lambda text: False,
        "some": lambda text: rng.random() < 0.5,
        "none": None,
    }[known]
    reference, ahead = decided_ahead(
        dataset, spec, forget, by_row=by_row, count_satisfied=count_satisfied
    )
    assert ahead.decisions == reference.decisions
    assert ahead.queue == reference.queue


def test_quirk_decided_ahead_the_newest_failure_names_what_the_legacy_raises() -> None:
    """Two install-deps failures the legacy would raise on differently (``<<``, ``>>``):
    the newest one's failure is the one the reasons name."""

    def failure(age_days: int, op: str) -> Run:
        start = AS_OF_US - age_days * US_PER_DAY
        relations = [[{"name": "libfoo", "version": [op, "1.0-1"], "arch": None}]]
        return Run(
            f"run-{op}",
            "alpha",
            "lintian-fixes",
            "install-deps-unsatisfied-dependencies",
            start,
            start + 60_000_000,
            False,
            None,
            None,
            {"relations": relations},
        )

    dataset = Dataset(
        as_of=AS_OF,
        codebases=(Codebase("alpha", None, 10),),
        candidates=(
            Candidate(
                id=1,
                codebase="alpha",
                suite="lintian-fixes",
                command="do-it",
                value=5,
                success_chance=0.5,
                publish_policy="plain",
            ),
        ),
        policies=POLICIES,
        runs=(failure(3, ">>"), failure(2, "<<")),
        debian_versions=(DebianVersion("libfoo", "2.0-1", "sid"),),
    )
    reference, ahead = decided_ahead(dataset, "new:parity", lambda text: False)
    assert ahead.decisions == reference.decisions
    (decision,) = ahead.decisions
    assert "debversion << " in decision.factors["legacy_failure"], decision.factors


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    datasets(),
    st.sampled_from(("new:parity", "new:default")),
    st.sampled_from((None, 0, 1, 2)),
)
def test_estimates_worked_out_together_are_each_candidates_own(
    dataset: Dataset, spec: str, forget: int | None
) -> None:
    """The estimators' bulk methods (arrays, no call per candidate) and their
    one-candidate methods give the same schedules, install-deps failures walked
    one by one or decided ahead."""
    import zlib

    def forgotten(text: str) -> bool:
        return forget is not None and zlib.crc32(text.encode()) % 3 < forget

    together = decided_ahead(dataset, spec, None if forget is None else forgotten)
    alone = decided_ahead(dataset, spec, None if forget is None else forgotten, one_by_one=True)
    for bulk, single in zip(together, alone, strict=True):
        assert bulk.decisions == single.decisions
        assert bulk.queue == single.queue


@pytest.mark.parametrize("by_row", [False, True])
@pytest.mark.parametrize("count_satisfied", [False, True])
def test_quirks_decided_ahead_decide_as_the_engine_would(
    by_row: bool, count_satisfied: bool
) -> None:
    """The golden quirks' install-deps failures (satisfied ones among them), with and
    without satisfied failures counted as successes."""
    from harness.data.snapshot import load_snapshot
    from tests.paths import VECTORS

    dataset = load_snapshot(VECTORS / "quirks")
    reference, ahead = decided_ahead(
        dataset,
        "new:parity",
        lambda text: False,
        by_row=by_row,
        count_satisfied=count_satisfied,
    )
    assert any("now satisfied" in r for d in reference.decisions for r in d.reasons) or (
        not count_satisfied
    )
    assert ahead.decisions == reference.decisions
