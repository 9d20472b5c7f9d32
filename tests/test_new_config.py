"""Configuration: the bundled profiles load; every malformed file is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from paths import VECTORS

from engines.new import create_engine
from engines.new.config import KEY_DOCS, load_config, load_profile
from harness.cli import main
from harness.errors import ConfigError

PARITY = Path(__file__).resolve().parent.parent / "engines" / "new" / "parity.yaml"


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_profiles_load_with_the_plans_keys_and_units() -> None:
    parity, default = load_profile("parity"), load_profile("default")
    assert parity.scheduling.default_estimated_duration == 0.25  # minutes
    assert parity.scheduling.default_estimated_duration_us == 15_000_000  # the legacy's 15 s
    assert default.scheduling.default_estimated_duration_us == 15 * 60_000_000
    assert parity.publish_mode_values["push-derived"] == 500
    assert parity.success_estimation.method == "legacy"
    assert default.success_estimation.method == "decayed"
    assert default.duration_estimation.method == "median"
    for key in (
        "scheduling.first_run_bonus",
        "scheduling.default_estimated_duration",
        "scheduling.default_schedule_offset",
        "success_estimation.ignore_worker_failures_older_than_days",
        "success_estimation.historical_data_window_days",
        "success_estimation.minimum_data_points",
        "success_estimation.half_life_days",
        "duration_estimation.campaign_defaults",
        "campaign_dependencies",
    ):
        assert key in KEY_DOCS
    assert "MINUTES" in KEY_DOCS["scheduling.default_estimated_duration"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"scheduling": {"first_run_bonus": 1, "bogus": 2}}, "'scheduling.bogus': unknown key"),
        ({"nonsense": {}}, "'nonsense': unknown key"),
        (
            {"scheduling": {"first_run_bonus": "lots"}},
            "'scheduling.first_run_bonus': expected a number, got a string",
        ),
        (
            {"scheduling": {"default_estimated_duration": -3}},
            "'scheduling.default_estimated_duration': must be > 0 (minutes)",
        ),
        (
            {"success_estimation": {"half_life_days": 0}},
            "'success_estimation.half_life_days': must be > 0",
        ),
        (
            {"success_estimation": {"minimum_data_points": 2.5}},
            "'success_estimation.minimum_data_points': expected an integer",
        ),
        (
            {"success_estimation": {"method": "magic"}},
            "'success_estimation.method': must be one of legacy, decayed",
        ),
        ({"success_estimation": {"default_success_probability": 1.5}}, "must be in [0, 1]"),
        (
            {"publish_mode_values": {"push": 1, "yeet": 2}},
            "'publish_mode_values.yeet': unknown publish mode",
        ),
        ({"publish_mode_values": {"push": 500}}, "missing value for mode(s)"),
        (
            {"duration_estimation": {"campaign_defaults": {"debianize": "long"}}},
            "'duration_estimation.campaign_defaults.debianize'",
        ),
        (
            {"campaign_dependencies": {"a": 3}},
            "'campaign_dependencies.a': expected a list of campaigns",
        ),
        ({"campaign_dependencies": {"a": ["a"]}}, "cannot depend on itself"),
        (["not", "a", "mapping"], "expected a mapping"),
    ],
)
def test_malformed_config_names_file_and_key(tmp_path: Path, data: object, needle: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        create_engine(f"config={path}")
    message = str(info.value)
    assert str(path) in message
    assert needle in message
    assert "\n" not in message


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("scheduling: [1, 2\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: invalid YAML: line \d+, column \d+: "):
        load_config(path)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_a_config_file_selects_the_engine(tmp_path: Path) -> None:
    data = yaml.safe_load(PARITY.read_text())
    data["scheduling"]["first_run_bonus"] = 7.0
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    engine = create_engine(str(path))
    assert engine.config.scheduling.first_run_bonus == 7.0
    assert engine.config.source == str(path)


def test_cli_reports_a_bad_config_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, {"scheduling": {"first_run_bonus": "x"}})
    code = main(["schedule", str(VECTORS / "small"), "--engine", f"new:config={path}"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0
    assert "scheduling.first_run_bonus" in err and str(path) in err


def test_cli_reports_a_dependency_cycle_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(PARITY.read_text())
    data["campaign_dependencies"] = {"a": ["b"], "b": ["c"], "c": ["a"]}
    path = tmp_path / "cycle.yaml"
    path.write_text(yaml.safe_dump(data))
    code = main(["schedule", str(VECTORS / "small"), "--engine", f"new:config={path}"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0
    assert "dependency cycle a → b → c → a" in err
