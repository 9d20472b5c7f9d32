"""Waivers: parsing, matching, expiry, and their effect on the verdict."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from support_engines import make_decision, make_schedule

from harness.comparison.compare import compare_schedules
from harness.comparison.waivers import Waiver, WaiverSet, load_waivers
from harness.errors import ConfigError

WAIVERS = """\
version: 1
waivers:
  - field: success_probability
    campaign: "lintian-*"
    reason: the new engine smooths probabilities
    expires: 2030-01-01
  - field: "*"
    codebase: "c1"
    reason: the offset and the queue follow from the probability change
  - field: presence
    campaign: fresh
    reason: fresh candidates are new in B
    expires: 2020-01-01
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_and_match(tmp_path: Path) -> None:
    waivers = load_waivers(_write(tmp_path, WAIVERS))
    assert [w.id for w in waivers] == ["waivers.yaml#1", "waivers.yaml#2", "waivers.yaml#3"]
    first = waivers[0]
    assert first.expires == date(2030, 1, 1) and first.codebase == "*"
    assert first.matches("success_probability", "lintian-fixes", "anything")
    assert not first.matches("success_probability", "fresh", "anything")
    assert not first.matches("offset", "lintian-fixes", "anything")
    assert waivers[1].matches("queue_priority", "any", "c1")
    assert waivers[2].expired(date(2026, 1, 1)) and not first.expired(date(2026, 1, 1))
    assert not Waiver("w", "*", "*", "*", "r", date(2026, 1, 1)).expired(date(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("waivers:\n  - field: nope\n    reason: r\n", "'field'"),
        ("waivers:\n  - field: offset\n", "'reason'"),
        ("waivers:\n  - field: offset\n    reason: r\n    colour: red\n", "'colour'"),
        ("waivers:\n  - field: offset\n    reason: r\n    expires: soon\n", "'expires'"),
        ("waivers: {}\n", "'waivers'"),
        ("wavers: []\n", "'wavers'"),
        ("version: 7\nwaivers: []\n", "'version'"),
        ("waivers: [\n", "invalid YAML"),
    ],
)
def test_bad_waiver_files_name_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_waivers(path)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_missing_waiver_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_waivers(tmp_path / "absent.yaml")


def test_waiver_set_counts_uses_and_expired_ones_do_not_waive() -> None:
    active = Waiver("a", "offset", "x*", "*", "ok")
    expired = Waiver("e", "offset", "*", "*", "old", date(2000, 1, 1))
    waivers = WaiverSet([expired, active], today=date(2026, 1, 1))
    result = waivers.apply("offset", ["xa", "yb"], ["c", "d"], np.array([True, True]))
    assert result.tolist() == [1, -1]
    uses = {u.id: u for u in waivers.uses()}
    assert uses["e"].expired and uses["e"].matched == 2
    assert not uses["a"].expired and uses["a"].matched == 1


def test_waived_divergences_are_kept_apart(tmp_path: Path) -> None:
    a = [make_decision(f"c{i}") for i in range(4)] + [make_decision("q", "other")]
    b = list(a)
    b[1] = make_decision("c1", probability=0.25)  # probability and offset move: waived
    b[4] = make_decision("q", "other", probability=0.25)  # not covered: real
    b.append(make_decision("n", "fresh"))  # covered only by an expired waiver: real
    waivers = load_waivers(_write(tmp_path, WAIVERS))
    c = compare_schedules(make_schedule(a), make_schedule(b), waivers=waivers)
    by_key = {d.codebase: d for d in c.candidates}
    assert by_key["c1"].status == "waived"
    assert {f.waiver for f in by_key["c1"].fields} >= {"waivers.yaml#1", "waivers.yaml#2"}
    assert set(by_key["c1"].waivers) >= {"waivers.yaml#1", "waivers.yaml#2"}
    assert by_key["q"].status == "real" and by_key["n"].status == "real"
    assert (c.real, c.waived) == (2, 1)
    uses = {u.id: u for u in c.waivers}
    assert uses["waivers.yaml#3"].expired and uses["waivers.yaml#3"].matched == 1
    assert uses["waivers.yaml#1"].matched == 1
    assert c.field_stats("success_probability").waived == 1  # type: ignore[union-attr]
    # waiving everything real makes the gate pass
    all_waived = [Waiver("all", "*", "*", "*", "accepted for this test")]
    passed = compare_schedules(make_schedule(a), make_schedule(b), waivers=all_waived)
    assert passed.verdict == "pass" and passed.real == 0 and passed.waived == 3


def test_waiver_on_errors_and_structure() -> None:
    from engines.model import ErrorInfo

    a = [make_decision("x"), make_decision("y")]
    b = [
        replace(a[0], error=ErrorInfo("builtins.KeyError", "k"), offset=None),
        replace(a[1], command="other"),
    ]
    waivers = [Waiver("e", "error", "*", "x", "known"), Waiver("s", "structure", "*", "y", "known")]
    c = compare_schedules(make_schedule(a), make_schedule(b), waivers=waivers)
    assert c.real == 0 and c.waived == 2
    assert c.error_mismatches[0].status == "waived"
