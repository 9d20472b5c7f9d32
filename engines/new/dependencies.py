"""Dependencies: campaigns that must come first, and Debian version constraints.

Two kinds, as in the plan's ``DependencyResolver``:

* **campaign dependencies** from the configuration (``campaign_dependencies``):
  a campaign that only makes sense after another one succeeded on the same
  codebase. Campaigns are processed in a topological order; a cycle is a
  configuration error that names the cycle.
* **version constraints** from a run's ``failure_details.relations`` (an
  install-deps failure): satisfied when every alternatives-list has one
  entry available in ``all_debian_versions``, compared with Debian's own
  ordering (APT's, :mod:`engines.legacy.debversion`; versions python-debian
  rejects satisfy nothing) and operators ``<<``, ``<=``, ``=``, ``>=``,
  ``>>``. The SQL spellings the legacy sends (``<``, ``>``, ``<>``) keep
  their SQL meaning (strict). Where the legacy would have failed (it pastes
  ``<<``/``>>`` into SQL, which the ``debversion`` type rejects), the answer
  is still computed and the legacy's failure is reported alongside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, cmp_to_key
from typing import Any

from debian.debian_support import Version

from engines.legacy.debversion import compare_versions
from harness.errors import ConfigError

_TESTS: Mapping[str, Callable[[int], bool]] = {
    "<<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    "=": lambda c: c == 0,
    ">=": lambda c: c >= 0,
    ">>": lambda c: c > 0,
    # SQL spellings, as the legacy sends them to the debversion type
    "<": lambda c: c < 0,
    ">": lambda c: c > 0,
    "<>": lambda c: c != 0,
    "!=": lambda c: c != 0,
}
#: Operators PostgreSQL's debversion type knows; anything else makes the legacy fail.
LEGACY_SQL_OPERATORS = frozenset({"<", "<=", "=", ">=", ">", "<>", "!="})
DEBIAN_OPERATORS = ("<<", "<=", "=", ">=", ">>")
#: Operators whose "any version satisfies" reduces to the smallest or largest version.
_UPWARD = frozenset({">=", ">>", ">"})
_BY_EXTREME = _UPWARD | {"<<", "<=", "<"}
_ENTRY_KEYS = frozenset({"name", "archqual", "arch", "distribution", "version", "restrictions"})


@cache
def version_satisfies(have: str, op: str, wanted: str) -> bool:
    """``have op wanted`` under Debian version ordering; False for an unparseable version."""
    test = _TESTS.get(op)
    if test is None or not valid_version(have) or not valid_version(wanted):
        return False
    return test(compare_versions(have, wanted))


@cache
def valid_version(text: str) -> bool:
    """Whether python-debian (its public ``Version``) accepts ``text`` as a Debian version.

    The new engine answers "not satisfied" for a version dpkg would reject;
    valid versions are then ordered by APT's rules (:func:`compare_versions`),
    on which dpkg and APT agree (``tests/test_debversion.py`` holds them together).
    """
    try:
        Version(text)
    except ValueError:
        return False
    return True


_ORDER = cmp_to_key(compare_versions)


@dataclass(frozen=True, slots=True)
class RelationsVerdict:
    """Whether relations are satisfied now, and what the legacy would have made of them."""

    satisfied: bool
    #: ``None`` when the legacy evaluates them fine; else what it would raise.
    legacy_failure: str | None = None
    #: A malformed relation the new engine could not read (treated as unsatisfied).
    problem: str | None = None


class DependencyResolver:
    """Answers both kinds of dependency questions for one run of the engine."""

    def __init__(
        self,
        campaign_dependencies: Mapping[str, Iterable[str]],
        debian_versions: Mapping[str, tuple[str, ...]] | None,
        *,
        config_file: str = "<config>",
    ) -> None:
        self.campaign_dependencies = {k: tuple(v) for k, v in campaign_dependencies.items()}
        self.debian_versions = debian_versions
        self.config_file = config_file
        self.campaign_order = topological_order(self.campaign_dependencies, config_file)
        self._entries: dict[tuple[str, str | None, str | None], bool] = {}
        self._extreme_cache: dict[str, tuple[str | None, str | None]] = {}

    # ----------------------------------------------------------- campaigns

    def campaign_rank(self, campaign: str) -> int:
        """Position in the topological order (campaigns nobody mentions: 0)."""
        return self.campaign_order.get(campaign, 0)

    def required_campaigns(self, campaign: str) -> tuple[str, ...]:
        return self.campaign_dependencies.get(campaign, ())

    # ------------------------------------------------------------ versions

    def relations_satisfied(self, relations: Any) -> RelationsVerdict:
        """Evaluate ``relations`` in the legacy's order (alternatives in order, short-circuit)."""
        if not isinstance(relations, list | tuple):
            return RelationsVerdict(False, problem=f"relations is not a list: {relations!r:.60}")
        legacy_failure: str | None = None
        available = self.entry_available
        for alternatives in relations:
            if not isinstance(alternatives, list | tuple):
                return RelationsVerdict(
                    False, legacy_failure, f"alternatives is not a list: {alternatives!r:.60}"
                )
            for entry in alternatives:
                if not isinstance(entry, dict) or "name" not in entry:
                    return RelationsVerdict(
                        False, legacy_failure, f"malformed relation entry: {entry!r:.60}"
                    )
                if legacy_failure is None:
                    for key in entry:
                        if key not in _ENTRY_KEYS:
                            legacy_failure = f"TypeError: unexpected keyword argument {key!r}"
                            break
                op: str | None = None
                wanted: str | None = None
                version = entry.get("version")
                if version:
                    if not isinstance(version, list | tuple) or len(version) < 2:
                        return RelationsVerdict(
                            False, legacy_failure, f"malformed version constraint: {version!r:.60}"
                        )
                    op, wanted = str(version[0]), str(version[1])
                    if op not in LEGACY_SQL_OPERATORS and legacy_failure is None:
                        legacy_failure = _undefined_operator(op)
                    if op not in _TESTS:
                        return RelationsVerdict(
                            False, legacy_failure, f"unknown version operator {op!r}"
                        )
                if legacy_failure is None and self.debian_versions is None:
                    legacy_failure = (
                        'UndefinedTableError: relation "all_debian_versions" does not exist'
                    )
                if available(str(entry["name"]), op, wanted):
                    break
            else:
                return RelationsVerdict(False, legacy_failure)
        return RelationsVerdict(True, legacy_failure)

    def relations_verdict(self, relations: Any) -> RelationsVerdict:
        """Like :meth:`relations_satisfied`; a malformed relation also counts as a legacy failure."""
        verdict = self.relations_satisfied(relations)
        if verdict.problem and verdict.legacy_failure is None:
            return RelationsVerdict(
                verdict.satisfied, f"TypeError: {verdict.problem}", verdict.problem
            )
        return verdict

    def verdict(self, relations: Any) -> tuple[bool, str | None]:
        """(satisfied now, what the legacy would raise): :meth:`relations_verdict`, made fast.

        The hot path of a bulk run (one call per install-deps failure). Well-formed
        relations are walked here in the legacy's order with the per-entry
        cache; anything unusual (a malformed entry, an unknown key or operator,
        no ``all_debian_versions``) is handed to :meth:`relations_verdict`,
        which is pure, so starting over there gives the same answer.
        """
        if self.debian_versions is None or type(relations) is not list:
            return self._slow_verdict(relations)
        legacy_failure: str | None = None
        entries = self._entries
        key: tuple[str, str | None, str | None]
        for alternatives in relations:
            if type(alternatives) is not list:
                return self._slow_verdict(relations)
            for entry in alternatives:
                if type(entry) is not dict or not entry.keys() <= _ENTRY_KEYS:
                    return self._slow_verdict(relations)
                name = entry.get("name")
                version = entry.get("version")
                if type(name) is not str:
                    return self._slow_verdict(relations)
                if version:
                    if type(version) is not list or len(version) != 2:
                        return self._slow_verdict(relations)
                    op, wanted = version
                    if type(op) is not str or type(wanted) is not str:
                        return self._slow_verdict(relations)
                    if op not in LEGACY_SQL_OPERATORS:
                        if op not in _TESTS:
                            return self._slow_verdict(relations)
                        if legacy_failure is None:
                            legacy_failure = _undefined_operator(op)
                    key = (name, op, wanted)
                else:
                    key = (name, None, None)
                available = entries.get(key)
                if available is None:
                    available = self.entry_available(*key)
                if available:
                    break
            else:
                return False, legacy_failure
        return True, legacy_failure

    def _slow_verdict(self, relations: Any) -> tuple[bool, str | None]:
        verdict = self.relations_verdict(relations)
        return verdict.satisfied, verdict.legacy_failure

    def _extremes(self, name: str, have: tuple[str, ...]) -> tuple[str | None, str | None]:
        """The smallest and largest parseable version of ``name`` (unparseable ones never match)."""
        cached = self._extreme_cache.get(name)
        if cached is None:
            valid = [v for v in have if valid_version(v)]
            cached = (min(valid, key=_ORDER), max(valid, key=_ORDER)) if valid else (None, None)
            self._extreme_cache[name] = cached
        return cached

    def entry_available(self, name: str, op: str | None, wanted: str | None) -> bool:
        key = (name, op, wanted)
        cached = self._entries.get(key)
        if cached is not None:
            return cached
        have = () if self.debian_versions is None else self.debian_versions.get(name, ())
        if op is None or wanted is None:
            result = bool(have)
        elif op in _BY_EXTREME and valid_version(wanted):
            # Debian ordering is a total preorder: "some version ≥ wanted" is
            # "the largest version ≥ wanted", one comparison instead of one per version.
            low, high = self._extremes(name, have)
            extreme = high if op in _UPWARD else low
            # not version_satisfies: its cache would only duplicate self._entries
            result = extreme is not None and _TESTS[op](compare_versions(extreme, wanted))
        else:
            result = any(version_satisfies(v, op, wanted) for v in have)
        self._entries[key] = result
        return result


def _undefined_operator(op: str) -> str:
    """What PostgreSQL answers when the legacy pastes a Debian-only operator into SQL."""
    return (
        f"UndefinedFunctionError (SQLSTATE 42883): operator does not exist: debversion {op} unknown"
    )


def topological_order(
    dependencies: Mapping[str, tuple[str, ...]], config_file: str = "<config>"
) -> dict[str, int]:
    """Campaign → rank (dependencies first); a cycle raises ConfigError naming it."""
    rank: dict[str, int] = {}
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> int:
        if state.get(node) == 2:
            return rank[node]
        if state.get(node) == 1:
            cycle = [*stack[stack.index(node) :], node]
            raise ConfigError(
                f"{config_file}: key 'campaign_dependencies': dependency cycle " + " → ".join(cycle)
            )
        state[node] = 1
        stack.append(node)
        depth = 0
        for dep in dependencies.get(node, ()):
            depth = max(depth, visit(dep) + 1)
        stack.pop()
        state[node] = 2
        rank[node] = depth
        return depth

    for node in sorted(dependencies):
        visit(node)
    return rank
