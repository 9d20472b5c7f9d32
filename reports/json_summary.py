"""The JSON summary of a comparison: a documented, versioned format for CI and tools.

Schema: ``reports/summary.schema.json`` (JSON Schema draft 2020-12; every
property is described there). The document mirrors
:class:`harness.comparison.comparison_model.Comparison` field by field, except that the
offset scatter sample is left out (the HTML report draws it) and
``ordering_checks`` values become ``{value, threshold, passed}`` objects.
Non-finite floats are written as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"`` (JSON has no such numbers); dates are ISO 8601 strings.

``schema_version`` goes up on any change a reader could notice: a reader must
refuse a version it does not know.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from harness.comparison.comparison_model import Comparison
from harness.data.atomic import write_atomic

SCHEMA_NAME = "janitor-shadow/comparison-summary"
SCHEMA_VERSION = 2
SCHEMA_FILE = Path(__file__).with_name("summary.schema.json")


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if math.isnan(value):
            return "NaN"
        return "Infinity" if value > 0 else "-Infinity"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def summary_document(
    comparison: Comparison, backtest: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The summary as plain JSON-ready data (with a backtest document, when given)."""
    doc: dict[str, Any] = {"schema": SCHEMA_NAME, "schema_version": SCHEMA_VERSION}
    for f in dataclasses.fields(comparison):
        name = f.name
        value = getattr(comparison, name)
        if name == "plots":
            doc["histograms"] = _plain(value.histograms)
        elif name == "ordering_checks":
            doc[name] = {
                check: {"value": _plain(v), "threshold": t, "passed": ok}
                for check, (v, t, ok) in value.items()
            }
        else:
            doc[name] = _plain(value)
    if backtest is not None:
        doc["backtest"] = backtest
    return doc


def summary_bytes(comparison: Comparison, backtest: dict[str, Any] | None = None) -> bytes:
    # default=str: engine settings and provenance may hold values JSON has no type for
    data = orjson.dumps(
        summary_document(comparison, backtest),
        option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
        default=str,
    )
    return data + b"\n"


def write_json_summary(
    comparison: Comparison,
    path: str | os.PathLike[str],
    *,
    backtest: dict[str, Any] | None = None,
) -> None:
    """Write the summary (``-``: standard output), atomically for files."""
    data = summary_bytes(comparison, backtest)
    if str(path) == "-":
        print(data.decode("utf-8"), end="")
        return
    write_atomic(path, data)


def load_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(SCHEMA_FILE.read_bytes())
    return loaded
