"""The new scheduling engine: the migration plan's scheduler, in Python.

``create_engine(option)`` is the registry's factory (``--engine new[:OPTION]``):

* ``None`` or ``default`` — the plan's engine (``engines/new/default.yaml``):
  decayed success rate, medians, per-campaign defaults, durations in minutes,
  campaign dependencies;
* ``parity`` — the legacy's numbers bit for bit (``engines/new/parity.yaml``);
* ``config=PATH`` or a path ending in ``.yaml``/``.yml`` — a configuration
  file of your own (validated; see :mod:`engines.new.config`).

Modules: :mod:`~engines.new.config`, :mod:`~engines.new.engine` (the front
door: which way the input is read), :mod:`~engines.new.scoring` (decides), :mod:`~engines.new.success`, :mod:`~engines.new.duration`,
:mod:`~engines.new.dependencies`, :mod:`~engines.new.aggregates` (set-based
data access), :mod:`~engines.new.single` (one candidate from a live
database), :mod:`~engines.new.orchestrator` (new / fallback / shadow),
:mod:`~engines.new.metrics` (Prometheus).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engines.new.engine import NewEngine
    from engines.new.scoring import SchedulingEngine


def create_engine(option: str | None) -> NewEngine:
    """``new``, ``new:parity``, ``new:default``, ``new:config=PATH`` or ``new:PATH.yaml``."""
    from engines.new.config import PROFILES, load_config, load_profile
    from engines.new.engine import NewEngine
    from harness.errors import ConfigError

    option = (option or "default").strip()
    if option in PROFILES:
        return NewEngine(load_profile(option), name=f"new:{option}", profile=option)
    path = option.removeprefix("config=")
    if option.startswith("config=") or path.endswith((".yaml", ".yml")):
        config = load_config(Path(path))
        return NewEngine(config, name=f"new:{option}", profile=Path(path).stem)
    raise ConfigError(
        f"new engine: unknown option {option!r} (use parity, default, config=PATH or a .yaml path)"
    )


def __getattr__(name: str) -> Any:
    """The engine classes, imported when first asked for: a worker process
    (``python -m engines.new.verdict_worker``) runs inside this package and
    needs none of them."""
    if name == "NewEngine":
        from engines.new.engine import NewEngine

        return NewEngine
    if name == "SchedulingEngine":
        from engines.new.scoring import SchedulingEngine

        return SchedulingEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["NewEngine", "SchedulingEngine", "create_engine"]
