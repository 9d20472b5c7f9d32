"""Waivers: divergences that are intended, written down with a reason and an expiry.

File format (YAML)::

    version: 1
    waivers:
      - field: success_probability     # a numeric field, presence, error, structure or "*"
        campaign: "lintian-*"          # glob (fnmatch), default "*"
        codebase: "*"                  # glob, default "*"
        reason: "the new engine smooths probabilities (ticket 42)"
        expires: 2027-03-01            # optional; waives through that day, not after

A waiver that has expired waives nothing; it is still matched, so the report
can say "expired waiver W would have waived N divergences". A waiver without
a reason is refused: the point of a waiver is to say why.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.comparison.comparison_model import NUMERIC_FIELDS, PSEUDO_FIELDS, WaiverUse
from harness.data.safe_files import load_yaml
from harness.errors import ConfigError

VERSION = 1
WAIVABLE_FIELDS = (*NUMERIC_FIELDS, *PSEUDO_FIELDS, "*")
_KEYS = ("field", "campaign", "codebase", "reason", "expires")


@dataclass(frozen=True)
class Waiver:
    id: str
    field: str
    campaign: str
    codebase: str
    reason: str
    expires: date | None = None

    def expired(self, today: date) -> bool:
        return self.expires is not None and today > self.expires

    def covers_field(self, name: str) -> bool:
        return self.field in ("*", name)

    def matches(self, name: str, campaign: str, codebase: str) -> bool:
        return (
            self.covers_field(name)
            and fnmatch.fnmatchcase(campaign, self.campaign)
            and fnmatch.fnmatchcase(codebase, self.codebase)
        )


def _string(entry: dict[str, Any], key: str, file: str, where: str, default: str | None) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{file}: {where}: key {key!r}: expected a non-empty string, got {value!r}"
        )
    return value


def parse_waivers(doc: Any, file: str) -> tuple[Waiver, ...]:
    if doc is None:
        return ()
    if not isinstance(doc, dict):
        raise ConfigError(f"{file}: expected a mapping with a 'waivers' list")
    unknown = sorted(str(k) for k in doc if k not in ("version", "waivers"))
    if unknown:
        raise ConfigError(f"{file}: unknown key {unknown[0]!r} (known: version, waivers)")
    if doc.get("version", VERSION) != VERSION:
        raise ConfigError(f"{file}: key 'version': {doc.get('version')!r} is not supported")
    entries = doc.get("waivers")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise ConfigError(f"{file}: key 'waivers': expected a list")
    out = []
    for number, entry in enumerate(entries, start=1):
        where = f"waiver {number}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{file}: {where}: expected a mapping")
        bad = sorted(str(k) for k in entry if k not in _KEYS)
        if bad:
            raise ConfigError(
                f"{file}: {where}: unknown key {bad[0]!r} (known: {', '.join(_KEYS)})"
            )
        name = _string(entry, "field", file, where, None)
        if name not in WAIVABLE_FIELDS:
            raise ConfigError(
                f"{file}: {where}: key 'field': unknown field {name!r} "
                f"(known: {', '.join(WAIVABLE_FIELDS)})"
            )
        expires = entry.get("expires")
        if isinstance(expires, str):
            try:
                expires = date.fromisoformat(expires)
            except ValueError as exc:
                raise ConfigError(f"{file}: {where}: key 'expires': {exc}") from exc
        if expires is not None and not isinstance(expires, date):
            raise ConfigError(
                f"{file}: {where}: key 'expires': expected a date (YYYY-MM-DD), got {expires!r}"
            )
        out.append(
            Waiver(
                id=f"{Path(file).name}#{number}",
                field=name,
                campaign=_string(entry, "campaign", file, where, "*"),
                codebase=_string(entry, "codebase", file, where, "*"),
                reason=_string(entry, "reason", file, where, None),
                expires=expires,
            )
        )
    return tuple(out)


def load_waivers(path: str | os.PathLike[str]) -> tuple[Waiver, ...]:
    file = str(path)
    doc = load_yaml(path, lambda message: ConfigError(f"{file}: {message}"), limit=16 * 1024 * 1024)
    return parse_waivers(doc, file)


class WaiverSet:
    """Matches divergences against waivers and counts what each one did.

    The first matching *active* waiver waives a divergence; every matching
    expired waiver is counted as "would have waived".
    """

    def __init__(self, waivers: Sequence[Waiver], today: date | None = None) -> None:
        self.waivers = tuple(waivers)
        self.today = today or date.today()
        self.matched = [0] * len(self.waivers)
        self._patterns = [
            (
                re.compile(fnmatch.translate(w.campaign)),
                re.compile(fnmatch.translate(w.codebase)),
            )
            for w in self.waivers
        ]

    def __bool__(self) -> bool:
        return bool(self.waivers)

    def apply(
        self,
        name: str,
        campaigns: Sequence[str],
        codebases: Sequence[str],
        mask: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.int64]:
        """For each row where ``mask`` is set, the index of the active waiver that
        waives field ``name`` there (-1: none). Counts uses."""
        result = np.full(len(mask), -1, dtype=np.int64)
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return result
        for number, waiver in enumerate(self.waivers):
            if not waiver.covers_field(name):
                continue
            camp_re, code_re = self._patterns[number]
            camp_ok: dict[str, bool] = {}
            hits = []
            for r in rows.tolist():
                if result[r] >= 0:
                    continue
                campaign = campaigns[r]
                ok = camp_ok.get(campaign)
                if ok is None:
                    ok = camp_ok[campaign] = camp_re.match(campaign) is not None
                if ok and code_re.match(codebases[r]) is not None:
                    hits.append(r)
            self.matched[number] += len(hits)
            if hits and not waiver.expired(self.today):
                result[np.asarray(hits, dtype=np.int64)] = number
        return result

    def apply_one(self, name: str, campaign: str, codebase: str) -> int:
        return int(self.apply(name, [campaign], [codebase], np.ones(1, dtype=bool))[0])

    def uses(self) -> tuple[WaiverUse, ...]:
        return tuple(
            WaiverUse(
                id=w.id,
                field=w.field,
                campaign=w.campaign,
                codebase=w.codebase,
                reason=w.reason,
                expires=w.expires,
                expired=w.expired(self.today),
                matched=count,
            )
            for w, count in zip(self.waivers, self.matched, strict=True)
        )


def describe(uses: Iterable[WaiverUse]) -> list[str]:
    """One line per waiver, expired ones first (they need attention)."""
    lines = []
    for use in sorted(uses, key=lambda u: not u.expired):
        state = f"EXPIRED {use.expires}" if use.expired else f"waived {use.matched}"
        lines.append(
            f"waiver {use.id} [{use.field} {use.campaign}/{use.codebase}]: {state}: {use.reason}"
        )
    return lines
