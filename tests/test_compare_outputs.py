"""The JSON summary validates against its schema; the JUnit XML says what failed."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import jsonschema
import orjson
from support_engines import make_decision, make_schedule

from engines.model import ErrorInfo
from harness.comparison.compare import compare_schedules
from harness.comparison.comparison_model import Comparison
from harness.comparison.noise import measure_noise
from harness.comparison.waivers import Waiver
from reports.json_summary import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    load_schema,
    summary_document,
    write_json_summary,
)
from reports.junit import junit_xml


def _rich() -> Comparison:
    """A comparison with every section filled: divergences of every kind,
    noise, a waiver (and an expired one), NaN and infinities."""
    a = [make_decision(f"c{i}", "lintian-fixes" if i % 2 else "fresh") for i in range(12)]
    b = list(a)
    b[0] = make_decision("c0", "fresh", probability=0.1)
    b[1] = replace(a[1], value=math.nan)
    b[2] = replace(a[2], error=ErrorInfo("builtins.KeyError", "'x'"), offset=None)
    b[3] = replace(a[3], command="<script>alert(1)</script>")
    b[4] = replace(a[4], normalized_codebase_value=math.inf)
    del b[5]
    b.append(make_decision("<b>hostile\x01name</b>", "fresh"))
    ref = make_schedule(a)
    profile = measure_noise(ref, [("rerun", make_schedule(a, priorities={"c6": 3}))])
    b[6] = replace(a[6])
    waivers = [
        Waiver("w#1", "value", "*", "c1", "intended"),
        Waiver(
            "w#2", "presence", "*", "*", "stale", expires=__import__("datetime").date(2001, 1, 1)
        ),
    ]
    return compare_schedules(
        ref, make_schedule(b, priorities={"c6": 4}), noise=profile, waivers=waivers
    )


def test_summary_validates_against_the_schema() -> None:
    c = _rich()
    assert c.real and c.noise and c.waived  # every section is exercised
    doc = summary_document(c)
    jsonschema.Draft202012Validator.check_schema(load_schema())
    jsonschema.Draft202012Validator(load_schema()).validate(doc)
    assert doc["schema"] == SCHEMA_NAME and doc["schema_version"] == SCHEMA_VERSION
    assert doc["verdict"] == "fail" and doc["real"] == c.real


def test_non_finite_values_are_strings_and_the_file_is_strict_json(tmp_path: Path) -> None:
    c = _rich()
    path = tmp_path / "summary.json"
    write_json_summary(c, path)
    doc = orjson.loads(path.read_bytes())  # orjson refuses NaN literals
    deltas = {(d["codebase"], f["field"]): f for d in doc["candidates"] for f in d["fields"]}
    assert deltas[("c1", "value")]["b"] == "NaN"
    assert deltas[("c4", "normalized_codebase_value")]["b"] == "Infinity"
    severities = {d["kind"]: d["severity"] for d in doc["candidates"]}
    assert severities["missing"] == "Infinity"
    jsonschema.Draft202012Validator(load_schema()).validate(doc)


def test_schema_rejects_drift() -> None:
    doc = summary_document(_rich())
    validator = jsonschema.Draft202012Validator(load_schema())
    assert not list(validator.iter_errors(doc))
    assert list(validator.iter_errors({**doc, "surprise": 1}))
    assert list(validator.iter_errors({**doc, "verdict": "maybe"}))
    broken = dict(doc)
    broken["candidates"] = [{**doc["candidates"][0], "status": "fine"}]
    assert list(validator.iter_errors(broken))


def test_every_schema_property_is_described() -> None:
    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                assert "description" in sub, f"{path}.{name}"
            for key, sub in node.items():
                walk(sub, f"{path}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}[{i}]")

    walk(load_schema(), "$")


def test_junit_has_one_case_per_check_and_fails_real_divergences() -> None:
    c = _rich()
    root = ET.fromstring(junit_xml(c))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"fields", "kinds", "campaigns", "ordering", "verdict"}
    kinds = {case.get("name"): case for case in suites["kinds"].iter("testcase")}
    assert set(kinds) == {"numeric", "order", "tie_order", "presence", "error"}
    for k in c.kinds:  # each kind fails on its own, with its own count
        failed = kinds[k.kind].find("failure")
        assert (failed is not None) == (k.real > 0)
        if failed is not None:
            assert failed.get("message") == f"{k.real} real {k.kind} divergence(s)"
    assert c.kind("error").real > 0 and c.kind("presence").real > 0
    fields = {case.get("name"): case for case in suites["fields"].iter("testcase")}
    assert set(fields) >= {"offset", "success_probability", "presence", "error", "structure"}
    assert fields["success_probability"].find("failure") is not None
    assert fields["error"].find("failure") is not None
    assert fields["value"].find("failure") is None  # waived, not failed
    prio = c.field_stats("queue_priority")
    assert prio is not None and prio.noise == 1  # c6 wobbles as in the self-run
    assert "noise 1" in (fields["queue_priority"].findtext("system-out") or "")
    campaigns = {case.get("name") for case in suites["campaigns"].iter("testcase")}
    assert campaigns == {"fresh", "lintian-fixes"}
    assert suites["verdict"].find("testcase/failure") is not None
    assert int(root.get("failures", "0")) == sum(1 for _ in root.iter("failure"))
    # hostile text stays text, and characters XML cannot hold are replaced
    text = ET.tostring(root, encoding="unicode")
    assert "<script>" not in text and "\x01" not in text


def test_junit_passes_everything_within_the_budget() -> None:
    a = [make_decision("x"), make_decision("y")]
    b = [a[0], replace(a[1], success_probability=0.9)]
    c = compare_schedules(make_schedule(a), make_schedule(b), budget=5)
    root = ET.fromstring(junit_xml(c))
    assert c.verdict == "pass" and c.real > 0
    assert root.get("failures") == "0"
    out = [e.text or "" for e in root.iter("system-out")]
    assert any("y/lintian-fixes" in text for text in out)
