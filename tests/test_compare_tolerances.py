"""The tolerances file: defaults, overrides, and validation that names file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.comparison.comparison_model import NUMERIC_FIELDS
from harness.comparison.tolerances import default_settings, load_settings
from harness.errors import ConfigError


def test_defaults_cover_every_field_and_follow_the_plan() -> None:
    settings = default_settings()
    assert set(settings.tolerances) == set(NUMERIC_FIELDS)
    prob = settings.tolerance("success_probability")
    assert (prob.absolute, prob.relative) == (0.01, 0.0)
    assert settings.tolerance("offset").relative > 0 and settings.tolerance("offset").absolute == 0
    assert settings.tolerance("estimated_duration_us").relative > 0
    assert settings.ranking.rbo_p == 0.9 and settings.ranking.top_k == (10, 100, 1000)


def test_a_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "fields:\n  offset: {relative: 0.05}\nnoise: {relative: 3}\nranking: {rbo_p: 0.5}\n"
        "report: {top_n: 7}\n",
        encoding="utf-8",
    )
    settings = load_settings(path)
    assert settings.tolerance("offset").relative == 0.05
    assert settings.tolerance("offset").absolute == default_settings().tolerance("offset").absolute
    assert settings.tolerance("success_probability").absolute == 0.01
    assert settings.noise.relative == 3.0
    assert settings.noise.absolute == default_settings().noise.absolute
    assert settings.ranking.rbo_p == 0.5 and settings.top_n == 7
    assert str(path) in settings.source


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("fields:\n  ofset: {relative: 0.1}\n", "'ofset'"),
        ("fields:\n  offset: {relativ: 0.1}\n", "'relativ'"),
        ("fields:\n  offset: {relative: lots}\n", "'fields.offset.relative'"),
        ("fields:\n  offset: {absolute: -1}\n", "'fields.offset.absolute'"),
        ("fields:\n  offset: {absolute: true}\n", "'fields.offset.absolute'"),
        ("fields:\n  offset: 0.1\n", "'fields.offset'"),
        ("noise: {relative: .nan}\n", "'noise.relative'"),
        ("ranking: {rbo_p: 1.5}\n", "'ranking.rbo_p'"),
        ("ranking: {top_k: [10, 0]}\n", "'ranking.top_k'"),
        ("report: {top_n: 0}\n", "'report.top_n'"),
        ("tolerance: {}\n", "'tolerance'"),
        ("version: 2\n", "'version'"),
        ("- a list\n", "''"),
    ],
)
def test_invalid_files_name_the_file_and_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(str(path)) and key in message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("fields: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_settings(broken)
