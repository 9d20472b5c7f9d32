"""The backtest: what a cut sees, what it scores, no leak from after T, and its verdicts."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reports
from engines.base import get_engine
from engines.model import US_PER_SECOND, Dataset, Run, datetime_to_us
from harness.cli import main
from harness.comparison.backtest import (
    BacktestSettings,
    RunHistory,
    cut_dataset,
    decide_at,
    open_backtest_source,
    outcomes_after,
    parse_horizon,
    source_from_dataset,
)
from harness.comparison.backtest_run import run_backtest
from harness.comparison.queue_replay import ReplayWorld, replay
from harness.data.snapshot import write_snapshot
from harness.errors import InputError
from scenarios.generator import TRUTH_FILE, GeneratorSettings, generate, load_truth, write_truth

AS_OF = datetime(2025, 6, 1)
S = US_PER_SECOND


def _run(
    i: int, start: datetime | None, seconds: int | None, code: str = "success", **kw: object
) -> Run:
    start_us = None if start is None else datetime_to_us(start)
    finish_us = None if start_us is None or seconds is None else start_us + seconds * S
    return Run(f"r{i}", "pkg", "lintian-fixes", code, start_us, finish_us, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- what a cut sees


def test_a_cut_sees_only_runs_finished_before_it() -> None:
    t = datetime(2025, 5, 1)
    runs = (
        _run(0, t - timedelta(hours=2), 3600),  # finished an hour before: visible
        _run(1, t - timedelta(hours=1), 3600),  # finished exactly at T: not yet
        _run(2, t - timedelta(minutes=30), 3600),  # still running at T
        _run(3, t - timedelta(hours=5), None),  # never finished
        _run(4, t + timedelta(hours=1), 60),  # after T
    )
    dataset = generate(GeneratorSettings(codebases=5, runs_per_candidate=0, seed=1)).dataset
    source = source_from_dataset(replace(dataset, runs=runs))
    cut = cut_dataset(source, t)
    assert [r.id for r in cut.runs] == ["r0"]
    assert cut.as_of == t and cut.queue == () and cut.live_dsn is None
    assert cut.candidates == dataset.candidates


def test_outcome_is_the_next_non_transient_run_within_the_horizon() -> None:
    t = datetime(2025, 5, 1)
    runs = [
        _run(0, t - timedelta(minutes=5), 600, "build-failed"),  # started before T
        _run(1, t + timedelta(hours=1), 60, "worker-timeout", failure_transient=True),
        _run(2, t + timedelta(hours=3), 120, "build-failed"),  # the next counted run
        _run(3, t + timedelta(hours=5), 60, "success"),
        _run(4, t + timedelta(days=20), 60, "success"),  # beyond the horizon
    ]
    history = RunHistory.from_runs(runs)
    out = outcomes_after(history, datetime_to_us(t), 14 * 86400 * S)
    pair = history.pair_index[("pkg", "lintian-fixes")]
    assert out.ran[pair] and not out.success[pair] and out.duration_us[pair] == 120 * S
    assert sorted(out.window_duration_us.tolist()) == [60 * S, 120 * S]
    later = outcomes_after(history, datetime_to_us(t + timedelta(hours=4)), 3600 * S * 24)
    assert later.success[pair] and later.duration_us[pair] == 60 * S


def test_parse_horizon() -> None:
    assert parse_horizon("14d") == timedelta(days=14)
    assert parse_horizon("36h") == timedelta(hours=36)
    assert parse_horizon("7") == timedelta(days=7)
    for bad in ("soon", "-3d", "0h"):
        with pytest.raises(InputError, match="horizon"):
            parse_horizon(bad)


# ---------------------------------------------------------------- no leak


@cache
def _small() -> Dataset:
    return generate(GeneratorSettings(codebases=40, runs_per_candidate=12, seed=4)).dataset


CUT = AS_OF - timedelta(days=40)


@st.composite
def later_runs(draw: st.DrawFn, dataset: Dataset) -> list[Run]:
    """Arbitrary runs that had not finished before CUT: any pair, code, flags, details."""
    pairs = sorted({(c.codebase, c.suite) for c in dataset.candidates})
    codes = ["success", "build-failed", "worker-failure", "install-deps-unsatisfied-dependencies"]
    out = []
    for i in range(draw(st.integers(1, 25))):
        codebase, suite = draw(st.sampled_from(pairs))
        start_offset = draw(st.integers(-3 * 86400, 60 * 86400))
        start = datetime_to_us(CUT) + start_offset * S
        finish_offset = draw(st.one_of(st.none(), st.integers(0, 8 * 3600)))
        finish = (
            None if finish_offset is None else max(start + finish_offset * S, datetime_to_us(CUT))
        )
        details = draw(
            st.sampled_from(
                [None, {"relations": [[{"name": "libfoo-dev", "version": [">=", "1.0"]}]]}]
            )
        )
        out.append(
            Run(
                f"later-{i}",
                codebase,
                suite,
                draw(st.sampled_from(codes)),
                start,
                finish,
                draw(st.sampled_from([None, False, True])),
                draw(st.one_of(st.none(), st.text(max_size=5))),
                draw(st.one_of(st.none(), st.text(max_size=5))),
                details,
            )
        )
    return out


@pytest.mark.parametrize("engine_name", ["legacy", "new", "new:parity"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_runs_after_the_cut_change_no_decision(engine_name: str, data: st.DataObject) -> None:
    dataset = _small()
    extra = data.draw(later_runs(dataset))
    engine = get_engine(engine_name)
    before = decide_at(engine, source_from_dataset(dataset), CUT)
    # Interleave the later runs anywhere in the table: the cut must drop them all.
    runs = list(dataset.runs)
    for run in extra:
        runs.insert(data.draw(st.integers(0, len(runs))), run)
    after = decide_at(engine, source_from_dataset(replace(dataset, runs=tuple(runs))), CUT)
    assert after.decisions == before.decisions
    assert after.queue == before.queue


def test_the_parquet_column_path_decides_as_the_tuple_path(tmp_path: Path) -> None:
    dataset = _small()
    write_snapshot(dataset, tmp_path / "snap", columnar_runs=True)
    columns = open_backtest_source(str(tmp_path / "snap"), verdict_worker=True)
    columns.verdicts = columns.collect_verdicts()
    assert columns.verdicts  # the worker's verdicts by row, turned into verdicts by text
    tuples = source_from_dataset(dataset)
    for name in ("new", "legacy"):
        a = decide_at(get_engine(name), columns, CUT)
        b = decide_at(get_engine(name), tuples, CUT)
        assert a.decisions == b.decisions and a.queue == b.queue


# ---------------------------------------------------------------- verdicts on generated data


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenario = generate(GeneratorSettings(codebases=700, runs_per_candidate=24, seed=12))
    path = tmp_path_factory.mktemp("bt") / "gen"
    write_snapshot(scenario.dataset, path)
    write_truth(scenario.truth, path / TRUTH_FILE)
    return path


def _backtest(path: Path, engines: tuple[str, ...]) -> dict[tuple[str, str], dict[str, bool]]:
    source = open_backtest_source(str(path))
    cuts = tuple(AS_OF - timedelta(days=d) for d in (75, 55, 35, 15))
    result = run_backtest(
        source,
        BacktestSettings(cuts=cuts, engines=engines, resamples=300, seed=2),
        truth=load_truth(path) if "truth" in engines else None,
    )
    out: dict[tuple[str, str], dict[str, bool]] = {}
    for pair, metrics in result.bootstrap.differences["overall"].items():
        out[pair] = {}
        for m, (diff, low, high) in metrics.items():
            called = bool(low[0] > 0 or high[0] < 0)
            out[pair][m] = called and bool(diff[0] < 0)  # True: the first engine is better
            out[pair][m + ":called"] = called
    return out


def test_the_engine_matching_the_truth_wins_and_is_called(generated: Path) -> None:
    calls = _backtest(generated, ("truth", "legacy", "new"))
    for other in ("legacy", "new"):
        assert calls[("truth", other)]["brier"], other
        assert calls[("truth", other)]["log_loss"], other


def test_engines_equal_by_construction_are_never_called_different(generated: Path) -> None:
    source = open_backtest_source(str(generated))
    cuts = tuple(AS_OF - timedelta(days=d) for d in (75, 55, 35, 15))
    result = run_backtest(
        source, BacktestSettings(cuts=cuts, engines=("legacy", "new:parity"), resamples=300)
    )
    for grouping in ("overall", "campaign", "cut"):  # every group, every score
        for _, low, high in result.bootstrap.differences[grouping][
            ("legacy", "new:parity")
        ].values():
            finite = np.isfinite(low) & np.isfinite(high)
            assert finite.any()
            assert not np.any((low[finite] > 0) | (high[finite] < 0)), grouping


# ---------------------------------------------------------------- queue replay


def test_replay_by_hand() -> None:
    h = 3600 * S
    world = ReplayWorld(
        duration_us=np.array([2 * h, 1 * h, 1 * h, 3 * h]),
        success=np.array([True, False, True, True]),
        observed=np.array([True, True, True, False]),
        value=np.array([10.0, 5.0, 7.0, 1.0]),
        top=np.array([0, 2]),
    )
    # Two workers: 0 ends at 2 h, 1 at 1 h, 2 at 2 h (after 1), 3 at 5 h (after 0 or 2).
    result = replay("x", np.array([0, 1, 2, 3]), world, workers=2, horizon_us=4 * h)
    assert result.runs_in_horizon == 3 and result.successes_in_horizon == 2
    assert result.value_in_horizon == 17.0
    assert result.worker_hours == 8.0 and result.value_per_worker_hour == 17.0 / 8.0
    assert result.top_reached == 2 and result.top_reached_us == 2 * h
    assert result.drained_us == 5 * h
    # Putting the valuable item last reaches the top set later.
    late = replay("y", np.array([1, 3, 2, 0]), world, workers=2, horizon_us=4 * h)
    assert late.top_reached_us is not None and late.top_reached_us > result.top_reached_us
    missing = replay("z", np.array([1, 2, 3]), world, workers=2, horizon_us=4 * h)
    assert missing.top_reached == 1 and missing.top_reached_us is None


# ---------------------------------------------------------------- the command


def test_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "backtest", "default", "--at", "2025-05-04", "--at", "2025-05-18",
            "--engines", "legacy,new,truth", "--bootstrap", "100",
            "--json", str(tmp_path / "bt.json"), "--report", str(tmp_path / "bt.html"),
            "--metrics-file", str(tmp_path / "bt.prom"),
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "legacy vs truth: truth better on Brier score" in out
    doc = json.loads((tmp_path / "bt.json").read_text())
    schema = json.loads((Path(reports.__file__).parent / "backtest.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["format"] == "janitor-shadow-backtest" and doc["engines"] == [
        "legacy",
        "new",
        "truth",
    ]
    assert [c["cut"] for c in doc["by_cut"]] == ["2025-05-04T00:00:00", "2025-05-18T00:00:00"]
    scored = doc["overall"]["scored"]
    assert scored == sum(c["scored"] for c in doc["by_cut"]) > 100
    html = (tmp_path / "bt.html").read_text()
    assert html.count("<svg") == 4 and 'id="bt-replay"' in html and "Reliability diagram" in html
    prom = (tmp_path / "bt.prom").read_text()
    for engine in ("legacy", "new", "truth"):
        assert (
            f'janitor_scheduler_success_probability_accuracy_count{{engine="{engine}"}} {float(scored)}'
            in prom
        )
        assert (
            f'janitor_scheduler_duration_estimation_accuracy_count{{engine="{engine}"}} {float(scored)}'
            in prom
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "yesterday"], "--at"),
        (["--at", "2026-01-01"], "after the source's as_of"),
        (["--at", "2025-05-01", "--horizon", "soon"], "horizon"),
        (["--at", "2025-05-01", "--engines", "legacy:sql"], "legacy:sql"),
        (["--at", "2025-05-01", "--engines", "nosuch"], "unknown engine"),
        (["--at", "2025-05-01", "--engines", "legacy,legacy"], "twice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "default", *args, "--bootstrap", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_truth_without_a_truth_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_snapshot(_small(), tmp_path / "s")
    assert main(["backtest", str(tmp_path / "s"), "--at", "2025-05-01", "--engines", "truth"]) == 2
    assert "truth.jsonl.gz" in capsys.readouterr().err


def test_forked_workers_decide_as_one_process() -> None:
    cuts = (AS_OF - timedelta(days=30), AS_OF - timedelta(days=16))
    results = []
    for jobs in (1, 2):
        source = open_backtest_source("default")
        settings_ = BacktestSettings(cuts=cuts, engines=("legacy", "new"), resamples=20)
        results.append(run_backtest(source, settings_, jobs=jobs))
    one, two = results
    for a, b in zip(one.cuts, two.cuts, strict=True):
        for name in ("legacy", "new"):
            x, y = a.decisions[name], b.decisions[name]
            assert np.array_equal(x.probability, y.probability, equal_nan=True)
            assert np.array_equal(x.duration_us, y.duration_us)
            assert np.array_equal(x.queue, y.queue)
        assert a.replays == b.replays


def test_replay_world_draws_missing_outcomes_from_the_campaign_seeded() -> None:
    from harness.comparison.queue_replay import build_world

    h = 3600 * S
    kwargs = dict(
        campaign=np.array([0, 0, 1, 1]),
        observed=np.array([True, False, True, False]),
        duration_us=np.array([h, 0, 2 * h, 0]),
        success=np.array([True, False, False, False]),
        eligible=np.ones(4, dtype=bool),
        value=np.array([1.0, 2.0, 3.0, 4.0]),
        pools={0: (np.array([5 * h]), np.array([True])), 1: (np.array([7 * h]), np.array([False]))},
        fallback=(np.array([9 * h]), np.array([True])),
        top=10,
        seed=(0, 0),
    )
    world = build_world(**kwargs)  # type: ignore[arg-type]
    assert world.duration_us.tolist() == [h, 5 * h, 2 * h, 7 * h]
    assert world.success.tolist() == [True, True, False, False]
    # The top set holds only observed successes: drawn outcomes are not the truth.
    assert world.top.tolist() == [0]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    days_before=st.integers(0, 300),
    nulls=st.lists(st.integers(0, 10**6), max_size=6),
)
def test_the_legacy_on_columns_decides_as_the_plain_backend(
    seed: int, days_before: int, nulls: list[int]
) -> None:
    dataset = generate(GeneratorSettings(codebases=25, runs_per_candidate=10, seed=seed)).dataset
    runs = list(dataset.runs)
    for n in nulls:  # some runs lose their start time (they still count where visible)
        i = n % len(runs)
        runs[i] = runs[i]._replace(start_us=None)
    dataset = replace(dataset, runs=tuple(runs))
    source = source_from_dataset(dataset)
    cut = AS_OF - timedelta(days=days_before)
    engine = get_engine("legacy")
    fast = decide_at(engine, source, cut)
    plain = engine.schedule(cut_dataset(source, cut))
    assert fast.decisions == plain.decisions
    assert fast.queue == plain.queue


def test_report_escapes_names_from_the_data(tmp_path: Path) -> None:
    from reports.backtest_report import render_backtest_html

    assert main(["backtest", "default", "--at", "2025-05-18", "--bootstrap", "20",
                 "--json", str(tmp_path / "bt.json")]) == 0  # fmt: skip
    doc = json.loads((tmp_path / "bt.json").read_text())
    doc["by_campaign"][0]["campaign"] = "<script>alert(1)</script>"
    doc["source"] = "<img src=x onerror=alert(2)>"
    html = render_backtest_html(doc)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<img src=x" not in html


@pytest.mark.postgres
def test_a_live_database_backtests_as_its_snapshot(janitor_db: str) -> None:
    from harness.data.restore import restore_dataset
    from harness.data.snapshot import load_snapshot
    from harness.data.sources import snapshot_path

    restore_dataset(load_snapshot(snapshot_path("default")), janitor_db)
    cuts = (AS_OF - timedelta(days=20),)
    results = []
    for spec in ("default", janitor_db):
        source = open_backtest_source(spec)
        assert source.base.live_dsn is None  # engines decide from the cut, never the database
        results.append(
            run_backtest(
                source, BacktestSettings(cuts=cuts, engines=("legacy", "new"), resamples=50)
            )
        )
    snapshot, live = results
    assert live.rows.outcome.tolist() == snapshot.rows.outcome.tolist()
    for name in ("legacy", "new"):
        assert np.array_equal(
            live.rows.forecasts[name].probability, snapshot.rows.forecasts[name].probability
        )


def test_compare_shows_a_backtest_in_its_report_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "default", "--at", "2025-05-18", "--bootstrap", "20",
                 "--json", str(tmp_path / "bt.json")]) == 0  # fmt: skip
    code = main(["compare", "default", "--a", "legacy", "--b", "new:parity", "--no-noise",
                 "--backtest", str(tmp_path / "bt.json"),
                 "--report", str(tmp_path / "r.html"), "--json", str(tmp_path / "s.json")])  # fmt: skip
    assert code in (0, 1)
    html = (tmp_path / "r.html").read_text()
    assert 'id="backtest"' in html and "Reliability diagram" in html
    summary = json.loads((tmp_path / "s.json").read_text())
    schema = json.loads((Path(reports.__file__).parent / "summary.schema.json").read_text())
    jsonschema.validate(summary, schema)
    assert summary["backtest"]["format"] == "janitor-shadow-backtest"
    # Without --backtest nothing changes.
    assert main(["compare", "default", "--a", "legacy", "--b", "new:parity", "--no-noise",
                 "--report", str(tmp_path / "plain.html")]) in (0, 1)  # fmt: skip
    assert 'id="backtest"' not in (tmp_path / "plain.html").read_text()
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    capsys.readouterr()
    assert main(["compare", "default", "--a", "legacy", "--b", "new:parity",
                 "--backtest", str(tmp_path / "bad.json")]) == 2  # fmt: skip
    assert "not a backtest document" in capsys.readouterr().err


RULES = sorted(
    p.stem for p in (Path(reports.__file__).parent.parent / "scenarios" / "rules").glob("*.yaml")
)


@pytest.mark.parametrize("name", RULES)
def test_every_bundled_rule_scenario_backtests(name: str, tmp_path: Path) -> None:
    """Tiny sources (no run after the cut, or no run at all) still give a valid document."""
    from harness.data.sources import open_source

    as_of = open_source(f"rules/{name}").as_of
    args = ["backtest", f"rules/{name}", "--bootstrap", "10", "--jobs", "1"]
    for cut in (as_of, as_of - timedelta(days=2)):
        args += ["--at", cut.isoformat()]
    assert (
        main([*args, "--json", str(tmp_path / "b.json"), "--report", str(tmp_path / "b.html")]) == 0
    )
    schema = json.loads((Path(reports.__file__).parent / "backtest.schema.json").read_text())
    jsonschema.validate(json.loads((tmp_path / "b.json").read_text()), schema)
    assert 'id="backtest"' in (tmp_path / "b.html").read_text()
