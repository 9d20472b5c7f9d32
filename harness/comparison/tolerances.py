"""Comparison settings: per-field tolerances, Diffy's noise thresholds, ranking options.

The defaults live in ``harness/comparison/tolerances.default.yaml`` (documented there); a
user file passed with ``--tolerances`` overrides any subset of them. The file
is validated on load: an unknown key, a wrong type or a negative tolerance is
a :class:`~harness.errors.ConfigError` naming the file and the key, because a
typo in a tolerance would otherwise silently loosen or tighten the gate.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.comparison.comparison_model import NUMERIC_FIELDS, NoiseRule, Tolerance
from harness.data.safe_files import load_yaml
from harness.errors import ConfigError

DEFAULT_FILE = Path(__file__).with_name("tolerances.default.yaml")
VERSION = 1


@dataclass(frozen=True)
class RankingSettings:
    rbo_p: float = 0.9
    top_k: tuple[int, ...] = (10, 100, 1000)
    movers: int = 50
    min_kendall_tau: float | None = None
    min_rbo: float | None = None
    #: ``True``: the order inside a tie group (same bucket and priority) is
    #: compared, as workers take it; ``False``: ties are unordered
    ties_ordered: bool = True


@dataclass(frozen=True)
class Settings:
    """Everything the comparator is configured by; ``source`` names the file(s)."""

    tolerances: Mapping[str, Tolerance]
    noise: NoiseRule = field(default_factory=NoiseRule)
    ranking: RankingSettings = field(default_factory=RankingSettings)
    top_n: int = 1000
    source: str = "defaults"
    #: candidate rows in the HTML report's table
    table_rows: int = 500
    #: places of each queue shown side by side in the HTML report
    queue_head: int = 25
    #: self-runs of the noise baseline with the rows shuffled (besides the rerun)
    noise_shuffles: int = 1

    def tolerance(self, name: str) -> Tolerance:
        return self.tolerances[name]


def _number(value: Any, file: str, key: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{file}: key {key!r}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < minimum:
        raise ConfigError(
            f"{file}: key {key!r}: expected a finite number >= {minimum}, got {value!r}"
        )
    return number


def _integer(value: Any, file: str, key: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{file}: key {key!r}: expected an integer >= {minimum}, got {value!r}")
    return value


def _mapping(value: Any, file: str, key: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{file}: key {key!r}: expected a mapping, got {value!r}")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise ConfigError(
            f"{file}: unknown key {key + '.' if key else ''}{unknown[0]!r} "
            f"(known: {', '.join(allowed)})"
        )
    return value


def _apply(settings: Settings, doc: Any, file: str) -> Settings:
    top = _mapping(doc, file, "", ("version", "fields", "noise", "ranking", "report"))
    version = top.get("version", VERSION)
    if version != VERSION:
        raise ConfigError(
            f"{file}: key 'version': {version!r} is not supported (expected {VERSION})"
        )
    tolerances = dict(settings.tolerances)
    if "fields" in top:
        fields = _mapping(top["fields"], file, "fields", NUMERIC_FIELDS)
        for name, spec in fields.items():
            where = f"fields.{name}"
            spec = _mapping(spec, file, where, ("absolute", "relative"))
            old = tolerances.get(name, Tolerance(name, 0.0, 0.0))
            tolerances[name] = Tolerance(
                name,
                _number(spec.get("absolute", old.absolute), file, f"{where}.absolute"),
                _number(spec.get("relative", old.relative), file, f"{where}.relative"),
            )
    noise = settings.noise
    if "noise" in top:
        spec = _mapping(top["noise"], file, "noise", ("relative", "absolute", "shuffles"))
        if "shuffles" in spec:
            settings = replace(
                settings, noise_shuffles=_integer(spec["shuffles"], file, "noise.shuffles")
            )
        noise = NoiseRule(
            relative=_number(spec.get("relative", noise.relative), file, "noise.relative"),
            absolute=_number(spec.get("absolute", noise.absolute), file, "noise.absolute"),
        )
    ranking = settings.ranking
    if "ranking" in top:
        spec = _mapping(
            top["ranking"],
            file,
            "ranking",
            ("rbo_p", "top_k", "movers", "min_kendall_tau", "min_rbo", "ties"),
        )
        if "ties" in spec:
            if spec["ties"] not in ("ordered", "unordered"):
                raise ConfigError(
                    f"{file}: key 'ranking.ties': expected 'ordered' or 'unordered', "
                    f"got {spec['ties']!r}"
                )
            ranking = replace(ranking, ties_ordered=spec["ties"] == "ordered")
        if "rbo_p" in spec:
            p = _number(spec["rbo_p"], file, "ranking.rbo_p")
            if not 0.0 < p < 1.0:
                raise ConfigError(f"{file}: key 'ranking.rbo_p': must be in (0, 1), got {p!r}")
            ranking = replace(ranking, rbo_p=p)
        if "top_k" in spec:
            ks = spec["top_k"]
            if not isinstance(ks, list) or not ks:
                raise ConfigError(f"{file}: key 'ranking.top_k': expected a list of integers")
            ranking = replace(
                ranking,
                top_k=tuple(_integer(k, file, "ranking.top_k", minimum=1) for k in ks),
            )
        if "movers" in spec:
            ranking = replace(ranking, movers=_integer(spec["movers"], file, "ranking.movers"))
        for name in ("min_kendall_tau", "min_rbo"):
            if name in spec:
                value = spec[name]
                threshold = (
                    None if value is None else _number(value, file, f"ranking.{name}", minimum=-1.0)
                )
                if name == "min_kendall_tau":
                    ranking = replace(ranking, min_kendall_tau=threshold)
                else:
                    ranking = replace(ranking, min_rbo=threshold)
    top_n, table_rows, queue_head = settings.top_n, settings.table_rows, settings.queue_head
    if "report" in top:
        spec = _mapping(top["report"], file, "report", ("top_n", "table_rows", "queue_head"))
        if "top_n" in spec:
            top_n = _integer(spec["top_n"], file, "report.top_n", minimum=1)
        if "table_rows" in spec:
            table_rows = _integer(spec["table_rows"], file, "report.table_rows", minimum=1)
        if "queue_head" in spec:
            queue_head = _integer(spec["queue_head"], file, "report.queue_head", minimum=1)
    source = file if settings.source == "defaults" else f"{settings.source} + {file}"
    return Settings(
        tolerances,
        noise,
        ranking,
        top_n,
        source,
        table_rows,
        queue_head,
        settings.noise_shuffles,
    )


def _read(path: Path) -> Any:
    doc = load_yaml(path, lambda message: ConfigError(f"{path}: {message}"), limit=1024 * 1024)
    return {} if doc is None else doc


_BUILTIN: Settings | None = None


def default_settings() -> Settings:
    """The shipped defaults (``tolerances.default.yaml``)."""
    global _BUILTIN
    if _BUILTIN is None:
        empty = Settings({name: Tolerance(name, 0.0, 0.0) for name in NUMERIC_FIELDS})
        loaded = _apply(empty, _read(DEFAULT_FILE), str(DEFAULT_FILE))
        _BUILTIN = replace(loaded, source="defaults")
    return _BUILTIN


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """The defaults, overridden by ``path`` when given."""
    settings = default_settings()
    if path is None:
        return settings
    file = Path(path)
    return _apply(settings, _read(file), str(file))
