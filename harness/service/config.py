"""The shadow service's settings: a YAML file (``--config``), then command-line flags.

Every key is documented in ``harness/service.sample.yaml`` and in the README.
A service runs unattended for weeks, so a typo must not silently fall back to
a default: an unknown key or a wrong type is a
:class:`~harness.errors.ConfigError` naming the file and the key. The value
of ``dsn`` and ``enqueue.to`` is never echoed in an error (it may hold a
password).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from harness.data.safe_files import load_yaml
from harness.errors import ConfigError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
ENQUEUE_ENGINES = ("legacy", "new")


def parse_duration(value: object, where: str) -> float:
    """Seconds from ``300``, ``"300s"``, ``"5m"``, ``"2h"`` or ``"90d"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration such as 30s, 5m, 2h or 90d, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ConfigError(
                f"{where}: expected a duration such as 30s, 5m, 2h or 90d, got {value!r}"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{where}: expected a duration >= 0, got {value!r}")
    return seconds


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the service is configured by (field names: the flat form of the keys)."""

    dsn: str | None = None
    interval_s: float = 300.0
    state_dir: Path = Path("shadow-state")
    campaign: str | None = None
    legacy_engine: str = "legacy:memory"
    new_engine: str = "new:default"
    tolerances: str | None = None
    waivers: str | None = None
    report_path: Path | None = None
    report_every_cycle: bool = True
    report_max_records: int = 2000
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    retention_max_age_s: float | None = 90 * 86400.0
    retention_max_records: int | None = 50_000
    backoff_initial_s: float = 5.0
    backoff_max_s: float = 300.0
    enqueue_to: str | None = None
    enqueue_engine: str = "legacy"
    log_json: bool = False
    max_cycles: int | None = None

    @property
    def history_path(self) -> Path:
        return self.state_dir / "history.jsonl"

    @property
    def report_file(self) -> Path:
        return self.report_path or self.state_dir / "report.html"


# ---------------------------------------------------------------- parsers

Parser = Callable[[Any, str], Any]


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {type(value).__name__}")
    return value


def _secret_text(value: Any, where: str) -> str:
    # never echo the value: a DSN or a Redis URL may carry a password
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {type(value).__name__}")
    return value


def _optional(parser: Parser) -> Parser:
    def parse(value: Any, where: str) -> Any:
        return None if value is None else parser(value, where)

    return parse


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _count(minimum: int) -> Parser:
    def parse(value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{where}: expected an integer >= {minimum}, got {value!r}")
        return value

    return parse


def _port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(f"{where}: expected a port number 1-65535, got {value!r}")
    return value


def _positive_duration(value: Any, where: str) -> float:
    seconds = parse_duration(value, where)
    if seconds <= 0:
        raise ConfigError(f"{where}: expected a duration > 0, got {value!r}")
    return seconds


def _path(value: Any, where: str) -> Path:
    return Path(_text(value, where))


def _choice(choices: tuple[str, ...]) -> Parser:
    def parse(value: Any, where: str) -> str:
        if value not in choices:
            raise ConfigError(f"{where}: expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return parse


#: YAML key (dotted: section.key) → (ServiceConfig field, parser).
KEYS: dict[str, tuple[str, Parser]] = {
    "dsn": ("dsn", _optional(_secret_text)),
    "interval": ("interval_s", _positive_duration),
    "state_dir": ("state_dir", _path),
    "campaign": ("campaign", _optional(_text)),
    "engines.legacy": ("legacy_engine", _text),
    "engines.new": ("new_engine", _text),
    "comparison.tolerances": ("tolerances", _optional(_text)),
    "comparison.waivers": ("waivers", _optional(_text)),
    "report.path": ("report_path", _optional(_path)),
    "report.every_cycle": ("report_every_cycle", _bool),
    "report.max_records": ("report_max_records", _count(1)),
    "metrics.port": ("metrics_port", _optional(_port)),
    "metrics.address": ("metrics_address", _text),
    "retention.max_age": ("retention_max_age_s", _optional(_positive_duration)),
    "retention.max_records": ("retention_max_records", _optional(_count(1))),
    "backoff.initial": ("backoff_initial_s", _positive_duration),
    "backoff.max": ("backoff_max_s", _positive_duration),
    "enqueue.to": ("enqueue_to", _optional(_secret_text)),
    "enqueue.engine": ("enqueue_engine", _choice(ENQUEUE_ENGINES)),
    "logging.json": ("log_json", _bool),
}
SECTIONS = sorted({key.split(".")[0] for key in KEYS if "." in key})
_FIELDS = {f.name for f in fields(ServiceConfig)}


def _flatten(doc: Mapping[Any, Any], file: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        name = str(key)
        if name in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{file}: key {name!r}: expected a mapping of settings")
            for sub, subvalue in value.items():
                flat[f"{name}.{sub}"] = subvalue
        else:
            flat[name] = value
    return flat


def load_config(path: str | Path | None) -> ServiceConfig:
    """The defaults, overridden by the file at ``path`` (when given)."""
    config = ServiceConfig()
    if path is None:
        return config
    file = str(path)
    doc = load_yaml(path, lambda message: ConfigError(f"{file}: {message}"), limit=1024 * 1024)
    if doc is None:
        return config
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{file}: expected a mapping of settings at the top level")
    changes: dict[str, Any] = {}
    for key, value in _flatten(doc, file).items():
        if key not in KEYS:
            raise ConfigError(f"{file}: unknown key {key!r} (known: {', '.join(KEYS)})")
        name, parse = KEYS[key]
        changes[name] = parse(value, f"{file}: key {key!r}")
    return replace(config, **changes)


def override(config: ServiceConfig, **flags: Any) -> ServiceConfig:
    """``config`` with every flag that was given (not ``None``) replacing its key."""
    unknown = set(flags) - _FIELDS
    if unknown:
        raise ValueError(f"not service settings: {sorted(unknown)}")
    return replace(config, **{k: v for k, v in flags.items() if v is not None})


def validate(config: ServiceConfig) -> ServiceConfig:
    """Cross-key checks once file and flags are merged."""
    if not config.dsn:
        raise ConfigError("no database: give DSN on the command line or 'dsn' in --config")
    if not config.dsn.startswith(("postgresql://", "postgres://")):
        raise ConfigError("DSN: expected a postgresql:// URL")
    if config.backoff_max_s < config.backoff_initial_s:
        raise ConfigError("backoff.max must be >= backoff.initial")
    if config.enqueue_to is not None and not config.enqueue_to.startswith(
        ("redis://", "rediss://", "postgresql://", "postgres://")
    ):
        raise ConfigError("enqueue.to: expected a redis://, rediss:// or postgresql:// URL")
    return config
