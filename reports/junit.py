"""JUnit XML for CI systems: one test case per check, failures for real divergences.

Suites: ``fields`` (one case per numeric field, plus ``presence``, ``error``
and ``structure``), ``campaigns`` (one case per campaign), ``ordering`` (the
rank metrics, and each optional ordering threshold) and ``verdict``. A case
fails when it has real divergences and the comparison as a whole failed (so a
run within its budget shows green everywhere, with the divergences listed in
the case's output); noise and waived divergences are reported, never failed.
Codebase names are untrusted: text is escaped by ElementTree and characters
XML cannot carry at all are replaced.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET

from harness.comparison.comparison_model import CandidateDiff, Comparison
from harness.data.atomic import write_atomic

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
LISTED = 20


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


class _Suite:
    def __init__(self, root: ET.Element, name: str, elapsed: float) -> None:
        self.element = ET.SubElement(root, "testsuite", name=_clean(name))
        self.tests = self.failures = 0
        self.elapsed = elapsed

    def case(self, name: str, *, failure: str | None, output: str) -> None:
        self.tests += 1
        case = ET.SubElement(
            self.element, "testcase", classname=self.element.get("name", ""), name=_clean(name)
        )
        case.set("time", "0")
        if failure is not None:
            self.failures += 1
            failed = ET.SubElement(case, "failure", message=_clean(failure.splitlines()[0]))
            failed.set("type", "divergence")
            failed.text = _clean(failure)
        if output:
            ET.SubElement(case, "system-out").text = _clean(output)

    def close(self) -> None:
        self.element.set("tests", str(self.tests))
        self.element.set("failures", str(self.failures))
        self.element.set("errors", "0")
        self.element.set("time", f"{self.elapsed:.3f}")


def _kind_line(d: CandidateDiff) -> str:
    """What one divergent candidate is, for a JUnit line."""
    if d.rule is not None:
        return f"{d.kind}: {d.rule.input} [{d.rule.factor}]"
    if d.category in ("order", "tie_order"):
        by = f"; moved by {', '.join(d.moved_by)}" if d.moved_by else ""
        return f"position {d.rank_a} → {d.rank_b}{by}"
    if d.attribution is not None and d.attribution.cause:
        return f"{', '.join(f.field for f in d.fields)} (cause: {d.attribution.cause})"
    return ", ".join(f.field for f in d.fields) or d.kind


def junit_xml(comparison: Comparison) -> str:
    c = comparison
    failing = not c.passed
    root = ET.Element("testsuites", name=_clean(f"janitor-shadow {c.a.engine} vs {c.b.engine}"))

    fields = _Suite(root, "fields", c.elapsed_s)
    for stats in c.fields:
        listed = [
            f"{d.label}: {f.a!r} → {f.b!r} ({f.status})"
            for d in c.candidates
            for f in d.fields
            if f.field == stats.field
        ][:LISTED]
        output = (
            f"compared {stats.compared}, equal {stats.equal}, tolerated {stats.within_tolerance}, "
            f"divergent {stats.divergent} (real {stats.real}, noise {stats.noise}, "
            f"waived {stats.waived}); tolerance abs {stats.tolerance.absolute:g} "
            f"rel {stats.tolerance.relative:g}"
        )
        failure = None
        if failing and stats.real:
            failure = f"{stats.real} real divergence(s) in {stats.field}\n" + "\n".join(listed)
        fields.case(stats.field, failure=failure, output=output + "\n" + "\n".join(listed))
    pseudo = {
        "presence": (
            sum(1 for k in (*c.missing, *c.extra) if k.status == "real"),
            [f"{k.key.label()}: only in {k.side} ({k.status})" for k in (*c.missing, *c.extra)],
        ),
        "error": (
            sum(1 for e in c.error_mismatches if e.status == "real"),
            [
                f"{e.key.label()}: {e.kind}: A {e.type_a} / B {e.type_b} ({e.status})"
                + (f"; input: {e.rule.input} [{e.rule.factor}]" if e.rule else "")
                for e in c.error_mismatches
            ],
        ),
        "structure": (
            sum(
                1 for d in c.candidates if d.structure and d.status == "real" and d.kind == "value"
            ),
            [f"{d.label}: {line}" for d in c.candidates for line in d.structure],
        ),
    }
    for name, (real, lines) in pseudo.items():
        text = "\n".join(lines[:LISTED])
        failure = f"{real} real {name} divergence(s)\n{text}" if failing and real else None
        fields.case(name, failure=failure, output=text)
    fields.close()

    campaigns = _Suite(root, "campaigns", c.elapsed_s)
    for s in c.campaigns:
        causes = ", ".join(f"{f} {n}" for f, n in sorted(s.causes.items(), key=lambda x: -x[1]))
        output = (
            f"{s.candidates} candidates, {s.divergent} divergent (real {s.real}, noise {s.noise}, "
            f"waived {s.waived}), missing {s.missing}, extra {s.extra}, "
            f"error mismatches {s.error_mismatches}; causes: {causes or 'none'}"
        )
        failure = None
        if failing and s.real:
            detail = ", ".join(f"{f} {n}" for f, n in s.field_divergences.items())
            failure = (
                f"{s.real} real divergence(s) in campaign {s.campaign}: {detail}; "
                f"dominant cause {s.dominant_cause}"
            )
        campaigns.case(s.campaign, failure=failure, output=output)
    campaigns.close()

    ordering = _Suite(root, "ordering", c.elapsed_s)
    r = c.ranking
    if r is None:
        ordering.case("ordering", failure=None, output="no queue on one side: nothing to order")
    else:
        tops = ", ".join(f"top-{t.k} {t.overlap:.3f}" for t in r.top_k)
        movers = "\n".join(
            f"{m.codebase}/{m.campaign}: {m.rank_a} → {m.rank_b} ({m.displacement:+d})"
            for m in r.movers[:LISTED]
        )
        ordering.case(
            "ordering",
            failure=None,
            output=(
                f"kendall tau-b {r.kendall_tau_b}, spearman {r.spearman}, "
                f"RBO(p={r.rbo_p:g}) {r.rbo:.6f}, {tops}; {r.moved} moved\n{movers}"
            ),
        )
    for name, (value, threshold, ok) in c.ordering_checks.items():
        ordering.case(
            f"min_{name}",
            failure=None if ok else f"{name} {value} below the threshold {threshold}",
            output=f"{name} {value} (threshold {threshold})",
        )
    ordering.close()

    kinds = _Suite(root, "kinds", c.elapsed_s)
    for k in c.kinds:
        of_kind = [d for d in c.candidates if d.category == k.kind]
        lines = [f"{d.label}: {_kind_line(d)} ({d.status})" for d in of_kind[:LISTED]]
        text = (
            f"real {k.real}, noise {k.noise}, waived {k.waived}"
            + ("" if k.kind != "tie_order" or c.ties_ordered else " (ties unordered: not gated)")
            + ("\n" + "\n".join(lines) if lines else "")
        )
        failure = (
            f"{k.real} real {k.kind} divergence(s)\n" + "\n".join(lines)
            if failing and k.real
            else None
        )
        kinds.case(k.kind, failure=failure, output=text)
    kinds.close()

    verdict = _Suite(root, "verdict", c.elapsed_s)
    verdict.case(
        "verdict",
        failure=None if c.passed else c.verdict_reason,
        output=f"{c.verdict}: {c.verdict_reason}",
    )
    verdict.close()

    suites = [fields, kinds, campaigns, ordering, verdict]
    root.set("tests", str(sum(s.tests for s in suites)))
    root.set("failures", str(sum(s.failures for s in suites)))
    root.set("errors", "0")
    root.set("time", f"{c.elapsed_s:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(comparison: Comparison, path: str | os.PathLike[str]) -> None:
    write_atomic(path, junit_xml(comparison))
