"""Engines are found by name, by entry point and by module:factory alike."""

from __future__ import annotations

import pytest
from paths import VECTORS

from engines.base import Engine, available_engines, get_engine
from harness.data.snapshot import load_snapshot
from harness.errors import EngineNotFound

SMALL = VECTORS / "small"


def test_builtin_engines_are_entry_points() -> None:
    engines = available_engines()
    assert engines["legacy"] == "engines.legacy:create_engine"
    assert engines["new"] == "engines.new:create_engine"


@pytest.mark.parametrize("spec", ["legacy", "legacy:memory", "legacy:sql"])
def test_legacy_backends_resolve(spec: str) -> None:
    engine = get_engine(spec)
    assert isinstance(engine, Engine)
    assert engine.name == ("legacy:memory" if spec == "legacy" else spec)


def test_external_engine_by_module_and_factory() -> None:
    engine = get_engine("plugin_engine:create:3")
    schedule = engine.schedule(load_snapshot(SMALL))
    legacy = get_engine("legacy").schedule(load_snapshot(SMALL))
    first, reference = schedule.decisions[0], legacy.decisions[0]
    assert first.offset == reference.offset * 3  # type: ignore[operator]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch", "unknown engine 'nosuch'"),
        ("legacy:turbo", "no backend 'turbo'"),
        ("no_such_module:create", "cannot import 'no_such_module'"),
        ("plugin_engine:missing", "has no 'missing'"),
        ("plugin_engine:not_an_engine", "did not return an engine"),
        ("", "empty engine name"),
    ],
)
def test_bad_engine_names_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(EngineNotFound, match=message):
        get_engine(spec)


def test_sql_backend_needs_a_live_source() -> None:
    from harness.errors import SourceError

    with pytest.raises(SourceError, match="postgresql://"):
        get_engine("legacy:sql").schedule(load_snapshot(SMALL))
