"""Reading the YAML and JSON files a user hands us, with limits.

Every YAML file the tool reads (scenarios, waivers, tolerances, engine
configurations) and every whole-file JSON document (snapshot manifests,
golden-vector metadata, gate baselines) goes through here, so that hostile
or broken input gets one line naming the file, and never a traceback, a
full machine or a hang:

* **size**: a file larger than its bound is refused before it is parsed;
* **encoding**: text must be UTF-8 (the offending byte's offset is named);
* **values**: at most :data:`MAX_NODES` (PyYAML's nodes are large);
* **nesting**: at most :data:`MAX_DEPTH` levels (20,000 nested ``[`` would
  otherwise end in a RecursionError of thousands of lines);
* **aliases**: PyYAML shares an aliased node instead of copying it, so an
  alias bomb of a kilobyte loads quickly, and then exhausts memory in
  whatever walks it (a JSON dump, a comparison, a report). The loader counts
  the nodes every alias stands for, as if expanded, and refuses more than
  :data:`MAX_ALIAS_NODES`;
* **duplicate keys** in a YAML mapping are an error naming both lines
  (PyYAML keeps the last one silently);
* a YAML syntax error, or a value YAML itself cannot build (``2024-02-30``),
  is one line: file, line, column and the problem.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

from harness.errors import ShadowError

#: Bounds on what one file may hold. A recorded YAML scenario of a few
#: thousand candidates is a few megabytes; a large recording is a snapshot
#: directory, whose tables are not YAML.
MAX_YAML_BYTES = 64 * 1024 * 1024
MAX_JSON_BYTES = 1024 * 1024 * 1024
MAX_DEPTH = 100
MAX_ALIAS_NODES = 200_000
#: PyYAML holds about 700 bytes per node while it builds a document: half a
#: million nodes (a scenario of some 45,000 runs) peak near 400 MB.
MAX_NODES = 500_000

ErrorFactory = Callable[[str], ShadowError]


class _LimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting depth and alias expansion, refusing duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._alias_nodes = 0
        #: id(node) → how many nodes it stands for with every alias under it expanded.
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            mark = self.peek_event().start_mark
            node = super().compose_node(parent, index)
            self._alias_nodes += self._sizes.get(id(node), 1)
            if self._alias_nodes > MAX_ALIAS_NODES:
                raise ComposerError(
                    None,
                    None,
                    f"aliases expand to more than {MAX_ALIAS_NODES:,} values (an alias bomb?)",
                    mark,
                )
            return node
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise ComposerError(
                None,
                None,
                f"more than {MAX_NODES:,} values: too large for a YAML file "
                "(record a snapshot directory instead)",
                self.peek_event().start_mark,
            )
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ComposerError(
                None,
                None,
                f"nested more than {MAX_DEPTH} levels deep",
                self.peek_event().start_mark,
            )
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        sizes = self._sizes
        if isinstance(node, SequenceNode):
            sizes[id(node)] = 1 + sum(sizes.get(id(child), 1) for child in node.value)
        elif isinstance(node, MappingNode):
            sizes[id(node)] = 1 + sum(
                sizes.get(id(k), 1) + sizes.get(id(v), 1) for k, v in node.value
            )
        return node

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # e.g. 2024-02-30, an int of 10,000 digits
            raise ConstructorError(None, None, str(exc), node.start_mark) from exc

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # merged keys may be overridden, as YAML says
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:
                    continue  # unhashable: the constructor reports it
                if first is not key_node:
                    raise ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first at line {first.start_mark.line + 1})",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep)


def _read_bytes(path: Path, limit: int, error: ErrorFactory) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise error(f"larger than {limit:,} bytes: refused")
    return data


def read_text(path: str | os.PathLike[str], error: ErrorFactory, limit: int) -> str:
    """A UTF-8 text file, at most ``limit`` bytes."""
    data = _read_bytes(Path(path), limit, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from exc


def _one_line(exc: yaml.YAMLError) -> str:
    """A PyYAML error as "line L, column C: problem" (its own text spans several lines)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{problem} ({exc.context})"
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return f"{where}{problem}"
    if isinstance(exc, yaml.reader.ReaderError):
        return f"offset {exc.position}: unacceptable character #x{exc.character:04x} ({exc.reason})"
    return " ".join(str(exc).split())


def parse_yaml(text: str, error: ErrorFactory) -> Any:
    """A YAML document (``None`` when empty), under this module's limits."""
    try:
        loader = _LimitedLoader(text)  # checks the characters first
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise error(f"invalid YAML: {_one_line(exc)}") from exc
    except RecursionError as exc:  # not expected under MAX_DEPTH; still one line
        raise error("invalid YAML: nested too deeply") from exc


def load_yaml(
    path: str | os.PathLike[str], error: ErrorFactory, *, limit: int = MAX_YAML_BYTES
) -> Any:
    """Read and parse a YAML file; every problem is ``error(message)``, one line.

    ``error`` builds the caller's exception from a message that does not
    name the file (``lambda m: ConfigError(f"{path}: {m}")``)."""
    return parse_yaml(read_text(path, error, limit), error)


def load_json(
    path: str | os.PathLike[str], error: ErrorFactory, *, limit: int = MAX_JSON_BYTES
) -> Any:
    """Read and parse a JSON document (orjson: UTF-8 only, at most 1024 levels deep)."""
    data = _read_bytes(Path(path), limit, error)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise error(f"invalid JSON: {exc}") from exc
