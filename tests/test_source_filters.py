"""--campaign/--codebase filter files as they filter a live database; zero candidates is no PASS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.data.live import read_dataset
from harness.data.restore import restore_dataset
from harness.data.sources import filter_dataset, open_source

SOURCE = "default"


def test_campaign_filter_keeps_all_codebases_and_the_runs_the_legacy_needs() -> None:
    whole = open_source(SOURCE)
    lintian = open_source(SOURCE, campaign="lintian-fixes")
    assert lintian.codebases == whole.codebases  # the normalized value needs all of them
    assert lintian.policies == whole.policies and lintian.queue == whole.queue
    assert lintian.candidates and {c.suite for c in lintian.candidates} == {"lintian-fixes"}
    spanned = {c.codebase for c in lintian.candidates}
    expected = [r.id for r in whole.runs if r.suite == "lintian-fixes" or r.codebase in spanned]
    assert [r.id for r in lintian.runs] == expected
    assert lintian.candidate_row_order is not None
    assert set(lintian.candidate_row_order) <= {c.key for c in lintian.candidates}
    assert lintian.provenance.filters["campaign"] == "lintian-fixes"


def test_codebase_filter_and_decisions_of_the_kept_candidates() -> None:
    """The legacy decides a kept candidate as it did unfiltered (per-codebase figures)."""
    from engines.base import get_engine

    whole = open_source(SOURCE)
    names = sorted({c.codebase for c in whole.candidates})[:5]
    some = open_source(SOURCE, codebases=names)
    assert {c.codebase for c in some.candidates} == set(names)
    assert all(r.codebase in names for r in some.runs)
    legacy = get_engine("legacy")
    before = {d.key: d for d in legacy.schedule(whole).decisions}
    after = legacy.schedule(some).decisions
    assert after
    for decision in after:
        same = before[decision.key]
        assert (
            decision.value == same.value
            and decision.success_probability == same.success_probability
        )


@pytest.mark.postgres
def test_file_filters_keep_what_the_live_reader_keeps(janitor_db: str) -> None:
    dataset = open_source(SOURCE)
    restore_dataset(dataset, janitor_db)
    campaign = "lintian-fixes"
    codebases = sorted({c.codebase for c in dataset.candidates})[::40]
    for filters in (
        {"campaign": campaign, "codebases": None},
        {"campaign": None, "codebases": codebases},
        {"campaign": campaign, "codebases": codebases},
    ):
        live = read_dataset(janitor_db, as_of=dataset.as_of, **filters)
        filtered = filter_dataset(dataset, **filters)
        assert {c.key for c in live.candidates} == {c.key for c in filtered.candidates}, filters
        assert {r.id for r in live.runs} == {r.id for r in filtered.runs}, filters
        assert {c.name for c in live.codebases} == {c.name for c in filtered.codebases}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "args",
    [
        ["compare", SOURCE, "--a", "legacy", "--b", "new:parity", "--no-noise"],
        ["gate", SOURCE, "--engine", "new:parity", "--no-noise"],
    ],
    ids=["compare", "gate"],
)
def test_zero_candidates_is_nothing_to_compare(
    args: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if args[0] == "gate":
        baseline = tmp_path / "baseline.json"
        assert (
            main(["gate", "accept", SOURCE, "--engine", "new:parity", "--baseline", str(baseline)])
            == 0
        )
        args = [*args, "--baseline", str(baseline)]
    capsys.readouterr()
    code, out, err = run([*args, "--campaign", "lintian-fixez"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        "janitor-shadow: error: nothing to compare: 0 candidates in default --campaign "
        "lintian-fixez (--allow-empty accepts that)"
    ]
    code, out, _ = run([*args, "--campaign", "lintian-fixez", "--allow-empty"], capsys)
    assert code in (0, 1) and ("PASS" in out or "FAIL" in out)


def test_schedule_filters_a_snapshot_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_json = tmp_path / "s.json"
    code, _, _ = run(
        [
            "schedule",
            SOURCE,
            "--engine",
            "new",
            "--campaign",
            "lintian-fixes",
            "--json",
            str(out_json),
        ],
        capsys,
    )
    assert code == 0
    import json

    doc: dict[str, Any] = json.loads(out_json.read_text())
    assert doc["decisions"] and {d["campaign"] for d in doc["decisions"]} == {"lintian-fixes"}
