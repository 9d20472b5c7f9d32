"""The new engine's configuration: YAML, validated on load, one dataclass per section.

Units are part of each key's name or documentation because the plan and the
legacy disagree: the plan counts ``default_estimated_duration`` in **minutes**
while the legacy's constant is 15 **seconds** (the parity profile therefore
says 0.25). Every key is documented in :data:`KEY_DOCS`; a malformed file
raises :class:`~harness.errors.ConfigError` naming the file and the dotted key.

Layout (the plan's sections, YAML instead of TOML)::

    scheduling:          first_run_bonus, default_estimated_duration (minutes),
                         default_schedule_offset, bulk_schedule_offset,
                         minimum_cost_ms, minimum_normalized_codebase_value,
                         default_normalized_codebase_value, queue_legacy_failures
    publish_mode_values: {mode: bonus}  (push-derived included; '_' = '-')
    success_estimation:  method, ignore_worker_failures_older_than_days,
                         historical_data_window_days, minimum_data_points,
                         half_life_days, default_success_probability,
                         prior_weight, transient_result_codes,
                         no_context_multiplier, same_context_multiplier,
                         count_satisfied_dependencies_as_success
    duration_estimation: method, campaign_defaults ({campaign: minutes})
    campaign_dependencies: {campaign: [campaigns that must have succeeded first]}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.model import PUBLISH_MODES
from harness.data.safe_files import load_yaml
from harness.errors import ConfigError

SUCCESS_METHODS = ("legacy", "decayed")
#: The plan's table plus ``push-derived`` (which the legacy lacks), valued like ``push``.
DEFAULT_PUBLISH_MODE_VALUES: Mapping[str, float] = {
    "skip": 0.0,
    "build-only": 0.0,
    "push": 500.0,
    "propose": 400.0,
    "attempt-push": 450.0,
    "bts": 100.0,
    "push-derived": 500.0,
}
DURATION_METHODS = ("legacy-mean", "median")
US_PER_MINUTE = 60_000_000

KEY_DOCS: Mapping[str, str] = {
    "scheduling.first_run_bonus": "added to the candidate value when it has no previous runs",
    "scheduling.default_estimated_duration": "global default duration, in MINUTES (legacy: 15 s = 0.25)",
    "scheduling.default_schedule_offset": "offset for manual/control scheduling (not the bulk run)",
    "scheduling.bulk_schedule_offset": "offset added in the bulk run (legacy: 0.0)",
    "scheduling.minimum_cost_ms": "fixed overhead of every run, in milliseconds",
    "scheduling.minimum_normalized_codebase_value": "floor of the normalized codebase value",
    "scheduling.default_normalized_codebase_value": "normalized codebase value when none is known",
    "scheduling.queue_legacy_failures": "queue candidates on which the legacy would raise (they are always decided)",
    "publish_mode_values": "bonus per publish mode of the policy's entries (push-derived included)",
    "success_estimation.method": "legacy: (10s+1)/(10t+1)×context; decayed: half-life weighted rate",
    "success_estimation.ignore_worker_failures_older_than_days": "worker failures at least this old are ignored",
    "success_estimation.historical_data_window_days": "only runs this recent count (null: all)",
    "success_estimation.minimum_data_points": "runs needed before a codebase+campaign median is trusted",
    "success_estimation.half_life_days": "a run this old weighs half as much as one from now",
    "success_estimation.default_success_probability": "probability without any data, and the prior",
    "success_estimation.prior_weight": "weight of the prior (in runs) in the decayed rate",
    "success_estimation.transient_result_codes": "result codes ignored as transient failures",
    "success_estimation.no_context_multiplier": "factor when the candidate has no context",
    "success_estimation.same_context_multiplier": "factor when a previous run had the same context",
    "success_estimation.count_satisfied_dependencies_as_success": "an unsatisfied-dependencies failure whose dependencies are now available counts as a success",
    "duration_estimation.method": "legacy-mean: the legacy's mean and AVG fallbacks; median: the plan's",
    "duration_estimation.campaign_defaults": "per-campaign default duration, in MINUTES",
    "campaign_dependencies": "campaign → campaigns that must have succeeded on the codebase first",
}


@dataclass(frozen=True)
class SchedulingSettings:
    first_run_bonus: float = 100.0
    #: Minutes, as in the plan (the legacy's 15 s is 0.25).
    default_estimated_duration: float = 15.0
    default_schedule_offset: float = -1.0
    bulk_schedule_offset: float = 0.0
    minimum_cost_ms: float = 20000.0
    minimum_normalized_codebase_value: float = 0.1
    default_normalized_codebase_value: float = 0.5
    #: Queue candidates on which the legacy would raise (parity: no, so queues compare).
    queue_legacy_failures: bool = True

    @property
    def default_estimated_duration_us(self) -> int:
        return round(self.default_estimated_duration * US_PER_MINUTE)


@dataclass(frozen=True)
class SuccessEstimation:
    method: str = "decayed"
    ignore_worker_failures_older_than_days: float = 1.0
    historical_data_window_days: float | None = 365.0
    minimum_data_points: int = 5
    half_life_days: float = 90.0
    default_success_probability: float = 0.5
    prior_weight: float = 1.0
    transient_result_codes: tuple[str, ...] = ()
    no_context_multiplier: float = 0.5
    same_context_multiplier: float = 0.1
    count_satisfied_dependencies_as_success: bool = True


@dataclass(frozen=True)
class DurationEstimation:
    method: str = "median"
    #: Minutes per campaign.
    campaign_defaults: Mapping[str, float] = field(default_factory=dict)

    def campaign_default_us(self, campaign: str) -> int | None:
        minutes = self.campaign_defaults.get(campaign)
        return None if minutes is None else round(minutes * US_PER_MINUTE)


@dataclass(frozen=True)
class EngineConfig:
    """The whole configuration; ``source`` names the file it came from."""

    scheduling: SchedulingSettings = field(default_factory=SchedulingSettings)
    publish_mode_values: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_PUBLISH_MODE_VALUES)
    )
    success_estimation: SuccessEstimation = field(default_factory=SuccessEstimation)
    duration_estimation: DurationEstimation = field(default_factory=DurationEstimation)
    campaign_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "<defaults>"

    def settings(self) -> dict[str, Any]:
        """The configuration as reported in ``Schedule.settings``, units spelled out."""
        s, e, d = self.scheduling, self.success_estimation, self.duration_estimation
        return {
            "config_file": self.source,
            "first_run_bonus": s.first_run_bonus,
            "default_estimated_duration_minutes": s.default_estimated_duration,
            "default_estimated_duration_seconds": s.default_estimated_duration_us / 1e6,
            "default_schedule_offset": s.default_schedule_offset,
            "bulk_schedule_offset": s.bulk_schedule_offset,
            "minimum_cost_ms": s.minimum_cost_ms,
            "minimum_normalized_codebase_value": s.minimum_normalized_codebase_value,
            "default_normalized_codebase_value": s.default_normalized_codebase_value,
            "queue_legacy_failures": s.queue_legacy_failures,
            "publish_mode_value": dict(self.publish_mode_values),
            "success_estimation": {
                "method": e.method,
                "ignore_worker_failures_older_than_days": e.ignore_worker_failures_older_than_days,
                "historical_data_window_days": e.historical_data_window_days,
                "minimum_data_points": e.minimum_data_points,
                "half_life_days": e.half_life_days,
                "default_success_probability": e.default_success_probability,
                "prior_weight": e.prior_weight,
                "transient_result_codes": list(e.transient_result_codes),
                "no_context_multiplier": e.no_context_multiplier,
                "same_context_multiplier": e.same_context_multiplier,
                "count_satisfied_dependencies_as_success": e.count_satisfied_dependencies_as_success,
            },
            "duration_estimation": {
                "method": d.method,
                "campaign_defaults_minutes": dict(d.campaign_defaults),
            },
            "campaign_dependencies": {k: list(v) for k, v in self.campaign_dependencies.items()},
            "units": {"default_estimated_duration": "minutes", "campaign_defaults": "minutes"},
        }


# ------------------------------------------------------------------ validation


class _Checker:
    """Reads one mapping of the YAML file, failing with the dotted key and the file."""

    def __init__(self, data: Any, path: str, file: str) -> None:
        self.file = file
        self.path = path
        if not isinstance(data, dict):
            raise self.error(path or "(top level)", f"expected a mapping, got {_kind(data)}")
        self.data = data

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.file}: key {key!r}: {message}")

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def reject_unknown(self, allowed: set[str]) -> None:
        for name in self.data:
            if name not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.error(self.key(str(name)), f"unknown key (known here: {known})")

    def number(
        self,
        name: str,
        default: float,
        check: Callable[[float], bool] = math.isfinite,
        what: str = "a finite number",
    ) -> float:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(self.key(name), f"expected a number, got {_kind(value)}")
        if not math.isfinite(value) or not check(float(value)):
            raise self.error(self.key(name), f"must be {what}, got {value!r}")
        return float(value)

    def optional_number(
        self, name: str, default: float | None, check: Callable[[float], bool], what: str
    ) -> float | None:
        if self.data.get(name, default) is None:
            return None
        return self.number(name, 0.0 if default is None else default, check, what)

    def integer(self, name: str, default: int, minimum: int) -> int:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(self.key(name), f"expected an integer, got {_kind(value)}")
        if value < minimum:
            raise self.error(self.key(name), f"must be at least {minimum}, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            raise self.error(self.key(name), f"expected true or false, got {_kind(value)}")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.data.get(name, default)
        if value not in allowed:
            raise self.error(self.key(name), f"must be one of {', '.join(allowed)}, got {value!r}")
        return str(value)

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(self.key(name), f"expected a list of strings, got {_kind(value)}")
        return tuple(value)

    def section(self, name: str) -> _Checker:
        return _Checker(self.data.get(name, {}), self.key(name), self.file)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _non_negative(x: float) -> bool:
    return x >= 0


def _positive(x: float) -> bool:
    return x > 0


def _unit(x: float) -> bool:
    return 0.0 <= x <= 1.0


def config_from_mapping(data: Any, file: str = "<mapping>") -> EngineConfig:
    """Validate a decoded YAML document; every problem names ``file`` and the key."""
    if data is None:
        data = {}
    top = _Checker(data, "", file)
    top.reject_unknown(
        {
            "scheduling",
            "publish_mode_values",
            "success_estimation",
            "duration_estimation",
            "campaign_dependencies",
        }
    )
    sch = top.section("scheduling")
    sch.reject_unknown(set(SchedulingSettings.__dataclass_fields__))
    d = SchedulingSettings()
    scheduling = SchedulingSettings(
        first_run_bonus=sch.number("first_run_bonus", d.first_run_bonus),
        default_estimated_duration=sch.number(
            "default_estimated_duration", d.default_estimated_duration, _positive, "> 0 (minutes)"
        ),
        default_schedule_offset=sch.number("default_schedule_offset", d.default_schedule_offset),
        bulk_schedule_offset=sch.number("bulk_schedule_offset", d.bulk_schedule_offset),
        minimum_cost_ms=sch.number("minimum_cost_ms", d.minimum_cost_ms, _positive, "> 0"),
        minimum_normalized_codebase_value=sch.number(
            "minimum_normalized_codebase_value",
            d.minimum_normalized_codebase_value,
            lambda x: 0 < x <= 1,
            "in (0, 1]",
        ),
        default_normalized_codebase_value=sch.number(
            "default_normalized_codebase_value",
            d.default_normalized_codebase_value,
            _unit,
            "in [0, 1]",
        ),
        queue_legacy_failures=sch.boolean("queue_legacy_failures", d.queue_legacy_failures),
    )

    modes = top.section("publish_mode_values")
    publish: dict[str, float] = {}
    for raw in modes.data:
        name = str(raw).replace("_", "-")
        if name not in PUBLISH_MODES:
            raise modes.error(
                modes.key(str(raw)), f"unknown publish mode (known: {', '.join(PUBLISH_MODES)})"
            )
        publish[name] = modes.number(str(raw), 0.0)
    missing = [m for m in PUBLISH_MODES if m not in publish]
    if missing and modes.data:
        raise modes.error("publish_mode_values", f"missing value for mode(s) {', '.join(missing)}")

    est = top.section("success_estimation")
    est.reject_unknown(set(SuccessEstimation.__dataclass_fields__))
    e = SuccessEstimation()
    success = SuccessEstimation(
        method=est.choice("method", e.method, SUCCESS_METHODS),
        ignore_worker_failures_older_than_days=est.number(
            "ignore_worker_failures_older_than_days",
            e.ignore_worker_failures_older_than_days,
            _non_negative,
            ">= 0",
        ),
        historical_data_window_days=est.optional_number(
            "historical_data_window_days", e.historical_data_window_days, _positive, "> 0 or null"
        ),
        minimum_data_points=est.integer("minimum_data_points", e.minimum_data_points, 1),
        half_life_days=est.number("half_life_days", e.half_life_days, _positive, "> 0"),
        default_success_probability=est.number(
            "default_success_probability", e.default_success_probability, _unit, "in [0, 1]"
        ),
        prior_weight=est.number("prior_weight", e.prior_weight, _positive, "> 0"),
        transient_result_codes=est.strings("transient_result_codes"),
        no_context_multiplier=est.number(
            "no_context_multiplier", e.no_context_multiplier, _unit, "in [0, 1]"
        ),
        same_context_multiplier=est.number(
            "same_context_multiplier", e.same_context_multiplier, _unit, "in [0, 1]"
        ),
        count_satisfied_dependencies_as_success=est.boolean(
            "count_satisfied_dependencies_as_success", e.count_satisfied_dependencies_as_success
        ),
    )

    dur = top.section("duration_estimation")
    dur.reject_unknown(set(DurationEstimation.__dataclass_fields__))
    defaults_section = dur.section("campaign_defaults")
    campaign_defaults = {
        str(name): defaults_section.number(str(name), 0.0, _positive, "> 0 (minutes)")
        for name in defaults_section.data
    }
    duration = DurationEstimation(
        method=dur.choice("method", DurationEstimation.method, DURATION_METHODS),
        campaign_defaults=campaign_defaults,
    )

    deps_section = top.section("campaign_dependencies")
    dependencies: dict[str, tuple[str, ...]] = {}
    for name in deps_section.data:
        value = deps_section.data[name]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise deps_section.error(
                deps_section.key(str(name)), f"expected a list of campaigns, got {_kind(value)}"
            )
        if str(name) in value:
            raise deps_section.error(
                deps_section.key(str(name)), "a campaign cannot depend on itself"
            )
        dependencies[str(name)] = tuple(value)

    from engines.new.dependencies import topological_order

    topological_order(dependencies, file)  # a cycle is a configuration error, found on load
    return EngineConfig(
        scheduling=scheduling,
        publish_mode_values=publish or dict(DEFAULT_PUBLISH_MODE_VALUES),
        success_estimation=success,
        duration_estimation=duration,
        campaign_dependencies=dependencies,
        source=file,
    )


def load_config(path: str | Path) -> EngineConfig:
    """Read and validate a YAML configuration file."""
    file = str(path)
    data = load_yaml(path, lambda message: ConfigError(f"{file}: {message}"), limit=1024 * 1024)
    return config_from_mapping(data, file)


PROFILE_DIR = Path(__file__).resolve().parent
PROFILES = ("parity", "default")


def load_profile(name: str) -> EngineConfig:
    """A bundled profile (``parity`` or ``default``)."""
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
    return load_config(PROFILE_DIR / f"{name}.yaml")
