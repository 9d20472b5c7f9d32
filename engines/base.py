"""The one interface every engine implements, and how engines are found by name.

An engine turns a :class:`~engines.model.Dataset` into a
:class:`~engines.model.Schedule`. Engines are named ``NAME[:OPTION]``:
``legacy``, ``legacy:sql``, ``new:parity``. ``NAME`` is looked up among the
``janitor_shadow.engines`` entry points (the built-in engines are registered
there too, so an external engine is found exactly like ours); any other
``module:factory[:OPTION]`` is imported directly. A factory takes
the option after the colon (or ``None``) and returns an engine.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from engines.model import Dataset, Schedule
from harness.cli.crash import OWN_PACKAGES, note_external_engine
from harness.errors import EngineNotFound

if TYPE_CHECKING:
    from harness.data.janitor_db import JanitorSession

ENTRY_POINT_GROUP = "janitor_shadow.engines"


@runtime_checkable
class Engine(Protocol):
    #: The name the engine was found by, with its option (``legacy:memory``).
    name: str

    def schedule(self, dataset: Dataset) -> Schedule:
        """Decide every candidate of ``dataset`` and build the resulting queue."""
        ...


@runtime_checkable
class ReadsDatabase(Protocol):
    """An engine that reads a live Janitor database itself (set-based queries).

    The commands hand it the command's session (one exported snapshot, see
    :mod:`harness.data.janitor_db`) instead of loading every run into a Dataset.
    Every connection it opens must join the session's snapshot
    (``session.joined()``), and ``session.rows()`` gives the scheduling rows
    without the runs, read once per command.
    """

    name: str

    def schedule_live(self, session: JanitorSession, *, as_of: datetime | None = None) -> Schedule:
        """Decide the session's candidates; ``as_of`` replaces ``session.moment``."""
        ...


@runtime_checkable
class ReadsSnapshot(Protocol):
    """An engine that reads a snapshot directory itself (columns, not run tuples)."""

    name: str

    def schedule_snapshot(
        self,
        path: str | os.PathLike[str],
        *,
        as_of: datetime | None = None,
        rows: Dataset | None = None,
    ) -> Schedule:
        """Decide the snapshot's candidates; ``as_of`` replaces its recorded moment.

        ``rows``: the snapshot as the caller already loaded it (another engine
        needed it), whose tables other than the runs need not be read again.
        """
        ...


EngineFactory = Callable[[str | None], Engine]

_BUILTIN = {
    "legacy": "engines.legacy:create_engine",
    "new": "engines.new:create_engine",
}


def _load(target: str, spec: str) -> EngineFactory:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineNotFound(f"engine {spec!r}: cannot import {module_name!r}: {exc}") from exc
    try:
        factory: EngineFactory = getattr(module, attribute)
    except AttributeError as exc:
        raise EngineNotFound(
            f"engine {spec!r}: module {module_name!r} has no {attribute!r}"
        ) from exc
    if not callable(factory):
        raise EngineNotFound(f"engine {spec!r}: {target} is not a factory (not callable)")
    if module_name.split(".")[0] not in OWN_PACKAGES:
        note_external_engine(module_name, spec)
    return factory


def _make(factory: EngineFactory, option: str | None, spec: str) -> Engine:
    """Call the factory; one that cannot take the option is the wrong shape (bad input).

    A TypeError raised by the call itself (no frame inside the factory: a
    builtin such as ``os:getcwd``, or a Python function with another
    signature) is the spec's fault; one raised deeper is the factory's bug."""
    try:
        return factory(option)
    except TypeError as exc:
        if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
            raise EngineNotFound(
                f"engine {spec!r}: the factory cannot be called as factory(option): {exc}"
            ) from None
        raise


def available_engines() -> dict[str, str]:
    """Engine names and their factories' import paths (built-ins and entry points)."""
    found = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.value
    return found


def get_engine(spec: str) -> Engine:
    """Resolve ``NAME[:OPTION]`` or ``package.module:factory[:OPTION]`` to an engine."""
    spec = spec.strip()
    if not spec:
        raise EngineNotFound("empty engine name")
    head, _, rest = spec.partition(":")
    engines = available_engines()
    if head in engines:
        engine = _make(_load(engines[head], spec), rest or None, spec)
    elif rest:
        # module:factory[:option], for engines that live outside this repository
        factory_name, _, option = rest.partition(":")
        engine = _make(_load(f"{head}:{factory_name}", spec), option or None, spec)
    else:
        names = ", ".join(sorted(engines))
        raise EngineNotFound(
            f"unknown engine {head!r} (known: {names}; or give package.module:factory)"
        )
    if not isinstance(engine, Engine):
        raise EngineNotFound(f"engine {spec!r}: the factory did not return an engine")
    return engine
