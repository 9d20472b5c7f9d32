"""Every YAML and JSON file is read with limits: one line naming the file, never a traceback."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engines.new.config import load_config
from harness.comparison.tolerances import load_settings
from harness.comparison.waivers import load_waivers
from harness.data import safe_files
from harness.data.schedule_json import read_schedule
from harness.data.snapshot import load_snapshot
from harness.errors import ConfigError, InputError, ShadowError

ALIAS_BOMB = "\n".join(
    [
        'description: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)

YAML_LOADERS: dict[str, Callable[[Path], Any]] = {
    "scenario": load_snapshot,
    "waivers": load_waivers,
    "tolerances": load_settings,
    "engine configuration": load_config,
}


def one_line_error(load: Callable[[Path], Any], path: Path) -> str:
    with pytest.raises(ShadowError) as caught:
        load(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    return message


@pytest.mark.parametrize("loader", YAML_LOADERS)
def test_alias_bomb_is_refused_quickly(tmp_path: Path, loader: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert path.stat().st_size < 1600
    started = time.perf_counter()
    message = one_line_error(YAML_LOADERS[loader], path)
    assert time.perf_counter() - started < 5
    assert "aliases expand to more than" in message and "line " in message


@pytest.mark.parametrize("loader", YAML_LOADERS)
def test_deep_nesting_is_one_line(tmp_path: Path, loader: str) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("description: " + "[" * 20_000)
    assert "nested more than 100 levels" in one_line_error(YAML_LOADERS[loader], path)


@pytest.mark.parametrize("loader", YAML_LOADERS)
def test_duplicate_keys_name_line_and_key(tmp_path: Path, loader: str) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("description: one\nversion: 1\ndescription: two\n")
    message = one_line_error(YAML_LOADERS[loader], path)
    assert "line 3, column 1: duplicate key 'description' (first at line 1)" in message


@pytest.mark.parametrize("loader", YAML_LOADERS)
def test_syntax_error_is_one_line_with_line_and_column(tmp_path: Path, loader: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("a: [1, 2\nb: 3\n")
    message = one_line_error(YAML_LOADERS[loader], path)
    assert "invalid YAML: line 2, column 2:" in message
    assert "<unicode string>" not in message


@pytest.mark.parametrize("loader", YAML_LOADERS)
def test_non_utf8_is_one_line(tmp_path: Path, loader: str) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("description: caf\xe9\n".encode("latin-1"))
    assert "not UTF-8 text (byte 0xe9 at offset 16)" in one_line_error(YAML_LOADERS[loader], path)


@pytest.mark.parametrize("loader", YAML_LOADERS)
def test_values_yaml_cannot_build_are_one_line(tmp_path: Path, loader: str) -> None:
    path = tmp_path / "date.yaml"
    path.write_text("as_of: 2024-02-30\n")
    assert "line 1, column 8: day is out of range" in one_line_error(YAML_LOADERS[loader], path)
    path.write_text('description: "\x01"\n')
    assert "unacceptable character #x0001" in one_line_error(YAML_LOADERS[loader], path)


def test_size_bound(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("description: " + "x" * 2000 + "\n")
    with pytest.raises(InputError, match=r"big\.yaml: larger than 1,000 bytes: refused"):
        safe_files.load_yaml(path, lambda m: InputError(m, file=str(path)), limit=1000)


def test_aliases_within_the_bound_still_load(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {x: 1, y: [1, 2]}\nmore: *b\nmerged: {<<: *b, x: 2}\n")
    doc = safe_files.load_yaml(path, ConfigError)
    assert doc == {
        "base": {"x": 1, "y": [1, 2]},
        "more": {"x": 1, "y": [1, 2]},
        "merged": {"x": 2, "y": [1, 2]},
    }


def test_deep_json_is_one_line(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text("[" * 20_000)
    assert "invalid JSON: depth limit exceeded" in one_line_error(read_schedule, baseline)
    snapshot = tmp_path / "snap"
    snapshot.mkdir()
    (snapshot / "snapshot.json").write_text("[" * 20_000)
    assert "invalid JSON" in one_line_error(load_snapshot, snapshot)


def test_node_count_bound(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("description: [" + "1, " * (safe_files.MAX_NODES + 10) + "1]\n")
    message = one_line_error(load_snapshot, path)
    assert "more than 500,000 values: too large for a YAML file" in message
