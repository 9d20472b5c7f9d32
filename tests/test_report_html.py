"""The HTML report: rendered from real comparisons, checked as text, as XML
fragments and in headless Chromium.

The schedules are built here with known divergences (probability lowered in
one campaign, duration doubled in another, codebase value halved in a third,
noise in a fourth, errors, a missing and an extra candidate, a hostile
codebase name) and compared by the real comparator.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from engines.model import Decision, ErrorInfo, QueueItem, Schedule, sorted_queue
from harness.comparison.attribution import duration_cost
from harness.comparison.compare import compare_schedules
from harness.comparison.comparison_model import Comparison
from harness.comparison.noise import measure_noise
from harness.comparison.waivers import Waiver
from reports.html import MAX_BYTES, compact, fmt_num, render_html, render_string
from reports.view import build_view

HOSTILE = "<script>alert(1)</script>"
CAMPAIGNS = ("lintian-fixes", "fresh-releases", "fresh-snapshots", "multiarch-fixes", "debianize")
CHROMIUM = "/usr/bin/chromium"
AS_OF = datetime(2026, 11, 1, 12, 0)


def _decision(
    codebase: str,
    campaign: str,
    *,
    duration: int,
    p: float,
    ncv: float,
    value: float,
    runs: int,
    tag: str,
) -> Decision:
    cost = duration_cost(duration)
    cv = value + 100 if runs == 0 else value
    offset = cost / (max(0.1, ncv) * p * cv)
    return Decision(
        codebase,
        campaign,
        None,
        command=f"{campaign} --fix",
        candidate_value=int(value),
        value=value,
        normalized_codebase_value=ncv,
        success_probability=p,
        estimated_duration_us=duration,
        total_previous_runs=runs,
        offset=offset,
        bucket="default",
        factors={
            "cost": cost,
            "normalized_codebase_value_effective": max(0.1, ncv),
            "candidate_value_effective": cv,
            "success_probability": p,
        },
        reasons=(
            f"{tag}: probability {p:.3f} from {runs} runs",
            f"{tag}: duration {duration / 1e6:.0f}s from history",
        ),
    )


def build_schedules(n: int, *, seed: int = 7) -> tuple[Schedule, Schedule, Schedule]:
    """``(a, b, a_again)``: reference, run under test, and the reference's
    noisy self-run (probabilities of fresh-snapshots wobble by up to 3%)."""
    rng = random.Random(seed)
    runs: dict[str, list[Decision]] = {"a": [], "b": [], "again": []}
    queues: dict[str, list[QueueItem]] = {"a": [], "b": [], "again": []}
    for i in range(n):
        codebase = HOSTILE if i == 3 else f"pkg{i:06d}"
        campaign = CAMPAIGNS[i % len(CAMPAIGNS)]
        base: dict[str, Any] = {
            "duration": rng.randint(30, 7200) * 1_000_000 + rng.randint(0, 999_999),
            "p": rng.uniform(0.05, 0.95),
            "ncv": rng.uniform(0.0, 1.0),
            "value": float(rng.randint(1, 100)),
            "runs": rng.randint(0, 20),
        }
        wobble = rng.uniform(0.97, 1.03)
        a = _decision(codebase, campaign, tag="A", **base)
        again = a
        b_args = dict(base)
        if campaign == "fresh-releases" and i % 7 == 0:
            b_args["p"] = base["p"] * 0.6
        elif campaign == "lintian-fixes" and i % 11 == 0:
            b_args["duration"] = base["duration"] * 2
        elif campaign == "debianize" and i % 13 == 0:
            b_args["ncv"] = base["ncv"] * 0.5
        elif campaign == "fresh-snapshots" and i % 3 == 0:
            b_args["p"] = min(base["p"] * wobble * 0.99, 1.0)
            again = _decision(codebase, campaign, tag="A", **dict(base, p=base["p"] * wobble))
        b = _decision(codebase, campaign, tag="B", **b_args)
        if i % 500 == 1:
            b = Decision(
                codebase, campaign, None, error=ErrorInfo("builtins.KeyError", repr(codebase))
            )
        decided = {"a": a, "b": b, "again": again}
        for side, d in decided.items():
            if side == "b" and i % 1000 == 2:
                continue  # missing in B
            runs[side].append(d)
            if d.offset is not None:
                queues[side].append(
                    QueueItem(i + 1, codebase, campaign, d.command, priority=int(d.offset))
                )
    extra = _decision(
        "extra-pkg",
        "lintian-fixes",
        duration=60_000_000,
        p=0.5,
        ncv=0.5,
        value=10.0,
        runs=1,
        tag="B",
    )
    runs["b"].append(extra)
    queues["b"].append(QueueItem(n + 1, "extra-pkg", "lintian-fixes", extra.command, priority=1))

    def schedule(side: str, engine: str, settings: dict[str, object]) -> Schedule:
        return Schedule(
            engine,
            "default",
            settings,
            AS_OF,
            runs[side],
            sorted_queue(queues[side]),
            timings={"load": 1.25, "schedule": 3.5 if side != "b" else 0.42},
        )

    return (
        schedule("a", "legacy:memory", {"dialect": "memory"}),
        schedule("b", "new", {"vectorised": True, "note": HOSTILE}),
        schedule("again", "legacy:memory", {"dialect": "memory"}),
    )


WAIVERS = (
    Waiver(
        "waivers.yaml#1",
        "*",
        "lintian-*",
        "*",
        "the new engine uses the median duration, which moves the offsets (ticket 17)",
    ),
    Waiver(
        "waivers.yaml#2",
        "normalized_codebase_value",
        "debianize",
        "*",
        "ncv rescaled; expired on purpose",
        date(2026, 1, 1),
    ),
    Waiver("waivers.yaml#3", "*", "nothing-*", "*", "matches nothing"),
)


def make_comparison(n: int = 3000, *, waivers: bool = True, noise: bool = True) -> Comparison:
    a, b, again = build_schedules(n)
    profile = measure_noise(a, [("rerun", again)]) if noise else None
    return compare_schedules(
        a,
        b,
        noise=profile,
        waivers=WAIVERS if waivers else (),
        today=date(2026, 11, 29),
    )


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    return make_comparison()


@pytest.fixture(scope="module")
def html(comparison: Comparison) -> str:
    return render_string(comparison)


# ---------------------------------------------------------------- content


def test_the_fixture_has_every_kind_of_divergence(comparison: Comparison) -> None:
    assert comparison.verdict == "fail"
    assert comparison.real > 0 and comparison.noise > 0 and comparison.waived > 0
    assert comparison.counts.missing == 3 and comparison.counts.extra == 1
    assert comparison.counts.error_mismatches == 6
    assert any(w.expired and w.matched for w in comparison.waivers)


def test_verdict_and_deciding_numbers_come_first(comparison: Comparison, html: str) -> None:
    body = html[html.index("<body>") :]
    verdict = body.index('id="verdict-label"')
    assert body.index(">FAIL<") > verdict
    assert body.index(">FAIL<") < body.index('id="plots"') < body.index('id="candidates"')
    for label in ("Real divergences", "Noise", "Waived", "Missing / extra", "Errors mismatched"):
        assert label in body[: body.index('id="plots"')]
    assert f">{comparison.real:,}<" in body
    assert "Kendall τ-b" in body and "RBO" in body


def test_pass_and_pass_with_waivers() -> None:
    c = make_comparison(400)
    import dataclasses

    passed = dataclasses.replace(c, verdict="pass", waived=0, budget=10**6)
    waived = dataclasses.replace(c, verdict="pass", budget=10**6)
    assert build_view(passed).verdict.label == "PASS"
    assert build_view(waived).verdict.label == "PASS WITH WAIVERS"
    assert 'class="verdict waived"' in render_string(waived)


def test_hostile_codebase_name_is_text(html: str) -> None:
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the only script element is the report's own table script
    assert html.count("<script") == 1


def test_every_plot_is_wellformed_svg_with_marks(html: str) -> None:
    svgs = re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" class="plot".*?</svg>', html, re.S)
    idents = set()
    for text in svgs:
        root = ET.fromstring(text)
        idents.add(root.get("id"))
        ns = "{http://www.w3.org/2000/svg}"
        assert root.find(f"{ns}title") is not None and root.find(f"{ns}desc") is not None
        marks = [e for e in root.iter() if e.get("class") == "mark"]
        assert marks, root.get("id")
    assert {
        "plot-offsets",
        "plot-prob",
        "plot-duration",
        "plot-displacement",
        "plot-campaigns",
        "plot-causes",
    } <= idents


def test_factor_breakdown_and_reasons_of_both_engines(comparison: Comparison, html: str) -> None:
    ncv = next(
        d
        for d in comparison.candidates
        if d.attribution is not None and d.attribution.dominant == "normalized_codebase_value"
    )
    assert ncv.campaign == "debianize"
    start = html.index(f'data-label="{ncv.label}"')
    row = html[start : html.index('<tbody class="cand"', start + 1)]
    assert "codebase value" in row
    assert "+0.6931" in row  # log 2: ncv halved, offset doubled
    assert "A: probability" in row and "B: probability" in row


def test_expired_waiver_is_flagged(html: str) -> None:
    section = html[html.index('id="waivers"') : html.index('id="provenance"')]
    assert 'class="pill expired"' in section
    assert "(not waived)" in section
    assert 'class="pill unused"' in section and 'class="pill active"' in section


def test_noise_and_provenance_sections(comparison: Comparison, html: str) -> None:
    noise = html[html.index('<section id="noise"') : html.index('<section id="waivers"')]
    assert "legacy:memory" in noise and "rerun" in noise
    prov = html[html.index('<section id="provenance"') :]
    assert "legacy:memory" in prov and "new" in prov and "vectorised" in prov
    assert "2026-11-01T12:00:00" in prov
    assert "3.50 s" in prov and "420 ms" in prov


def test_table_is_capped_at_top_n(comparison: Comparison) -> None:
    text = render_string(comparison, top_n=25)
    assert text.count('<tbody class="cand"') == 25
    assert f"The 25 most severe of {comparison.candidates_total:,}" in text


def test_compact_keeps_pre_and_script() -> None:
    text = (
        "<div>\n    <b>x</b>\n\n  </div><pre>\n  a\n    b</pre><script>\n  if (a < b) {}\n</script>"
    )
    out = compact(text)
    assert out.startswith("<div>\n<b>x</b>\n</div>")
    assert "<pre>\n  a\n    b</pre>" in out and "<script>\n  if (a < b) {}\n</script>" in out


def test_number_formatting() -> None:
    assert fmt_num(53965.911) == "53,966"
    assert fmt_num(0.73991) == "0.7399"
    assert fmt_num(3) == "3" and fmt_num(None) == "—"
    assert fmt_num(float("nan")) == "NaN" and fmt_num(float("-inf")) == "−∞"
    assert fmt_num(2.5e-7) == "2.500e−7"


def test_render_writes_atomically_and_to_stdout(
    comparison: Comparison, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "report.html"
    render_html(comparison, target)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    render_html(comparison, "-")
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_report_stays_small_at_100k_candidates(tmp_path: Path) -> None:
    c = make_comparison(100_000, noise=False)
    assert c.counts.aligned >= 99_000
    target = tmp_path / "big.html"
    render_html(c, target)
    size = target.stat().st_size
    assert size <= 5 * 1024 * 1024, size
    text = target.read_text(encoding="utf-8")
    assert text.count('<tbody class="cand"') == 500


def test_long_reasons_shrink_the_table_under_the_cap(comparison: Comparison) -> None:
    import dataclasses

    long = tuple("x" * 2000 for _ in range(40))
    bloated = dataclasses.replace(
        comparison,
        candidates=tuple(
            dataclasses.replace(d, reasons_a=long, reasons_b=long, structure=long)
            for d in comparison.candidates
        )
        * 3,
    )
    text = render_string(bloated, top_n=2000)
    assert len(text.encode("utf-8")) <= MAX_BYTES


# ---------------------------------------------------------------- browser


def _png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """Width, height and the number of distinct colours of an 8-bit RGB(A) PNG,
    decoded here (zlib + the five PNG filters) so the test needs no imaging library."""
    import struct
    import zlib

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
            channels = 3 if colour_type == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    colours: set[bytes] = set()
    offset = 0
    for _ in range(height):
        kind = raw[offset]
        line = bytearray(raw[offset + 1 : offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                corner = previous[i - channels] if i >= channels else 0
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 255
        if len(colours) < 4096:
            for x in range(0, stride, channels * 7):
                colours.add(bytes(line[x : x + 3]))
        previous = line
    return width, height, len(colours)


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.browser
def test_report_renders_in_headless_chromium(comparison: Comparison, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "headless Chromium is needed at /usr/bin/chromium: install the Debian package 'chromium'"
        )
    page = tmp_path / "report.html"
    render_html(comparison, page)
    png = tmp_path / "shot.png"
    shot = _chromium(
        [f"--screenshot={png}", "--window-size=1400,2200", page.resolve().as_uri()],
        tmp_path / "profile-shot",
    )
    assert png.exists(), shot.stderr[-2000:]
    width, height, colours = _png_size_and_colours(png)
    assert (width, height) == (1400, 2200)
    # a blank page has one colour; the verdict, the metrics and the plots give dozens
    assert colours >= 20, colours
    dom = _chromium(["--dump-dom", page.resolve().as_uri()], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    assert re.search(r'id="verdict-label"[^>]*>FAIL<', text)
    assert text.count("<svg") >= 6
    for ident in ("plot-offsets", "plot-prob", "plot-duration", "plot-campaigns"):
        assert f'id="{ident}"' in text
    # the table script ran: it writes how many rows are shown
    assert re.search(r'id="cand-count">\d+ of \d+ shown<', text)
    assert "alert(1)" not in re.sub(r"&lt;script&gt;alert\(1\)&lt;/script&gt;", "", text)


#: Runs in the page after the report's own script: sorts by log B/A twice
#: (descending), filters by a campaign and a word, opens one "why" row, and
#: writes what it saw into <body data-probe>, which --dump-dom then shows.
PROBE = """<script>
window.addEventListener("load", function () {
  var table = document.getElementById("cand-table");
  var ids = Array.prototype.map.call(document.querySelectorAll("[id]"), function (e) { return e.id; });
  var unique = ids.length === new Set(ids).size;
  var before = document.querySelectorAll("tbody.cand").length;
  var th = table.querySelector('th[data-key="lr"]');
  th.click(); th.click();
  var inTable = Array.prototype.every.call(document.querySelectorAll("tbody.cand"),
    function (b) { return b.parentElement === table; }) &&
    table.querySelectorAll("tbody.cand").length === before && before > 0;
  var kind = document.getElementById("cand-kind");
  kind.value = "presence"; kind.dispatchEvent(new Event("change"));
  var presence = Array.prototype.filter.call(table.querySelectorAll("tbody.cand"),
    function (b) { return !b.hidden; });
  var kindOk = presence.length > 0 && presence.every(function (b) { return b.dataset.category === "presence"; });
  kind.value = ""; kind.dispatchEvent(new Event("change"));
  var order = Array.prototype.map.call(table.querySelectorAll("tbody.cand"),
    function (b) { return b.dataset.lr; }).filter(function (v) { return v !== ""; }).slice(0, 50);
  var sortedDesc = order.every(function (v, i) { return i === 0 || parseFloat(order[i - 1]) >= parseFloat(v); });
  var campaign = document.getElementById("cand-campaign");
  campaign.value = "debianize"; campaign.dispatchEvent(new Event("input"));
  var filter = document.getElementById("cand-filter");
  filter.value = "codebase value"; filter.dispatchEvent(new Event("input"));
  var shown = Array.prototype.filter.call(table.querySelectorAll("tbody.cand"), function (b) { return !b.hidden; });
  var allMatch = shown.every(function (b) { return b.dataset.campaign === "debianize"; });
  var button = shown[0].querySelector("button.more");
  button.click();
  var detail = shown[0].querySelector("tr.detail");
  document.body.setAttribute("data-probe", [th.getAttribute("aria-sort"), sortedDesc, shown.length,
    allMatch, detail.hidden, button.textContent, document.getElementById("cand-count").textContent,
    unique, inTable, kindOk].join("|"));
});
</script></body>"""


@pytest.mark.browser
def test_table_sorts_filters_and_expands_in_chromium(
    comparison: Comparison, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "headless Chromium is needed at /usr/bin/chromium: install the Debian package 'chromium'"
        )
    page = tmp_path / "probe.html"
    page.write_text(render_string(comparison).replace("</body>", PROBE), encoding="utf-8")
    dom = _chromium(["--dump-dom", page.resolve().as_uri()], tmp_path / "profile")
    probe = re.search(r'data-probe="([^"]*)"', dom.stdout)
    assert probe is not None, dom.stderr[-2000:]
    fields = probe.group(1).split("|")
    sort, ordered, shown, all_match, hidden, label, count, unique, in_table, kind_ok = fields
    # one element per id, and sorting keeps every row inside the table
    assert unique == "true" and in_table == "true"
    assert kind_ok == "true"  # the kind filter shows only that kind
    assert sort == "descending" and ordered == "true"
    debianize_ncv = sum(
        1
        for d in comparison.candidates[:500]
        if d.campaign == "debianize"
        and d.attribution is not None
        and d.attribution.dominant == "normalized_codebase_value"
    )
    assert int(shown) >= debianize_ncv > 0
    assert all_match == "true" and hidden == "false" and label == "hide"
    assert count == f"{shown} of {min(500, len(comparison.candidates))} shown"


def test_empty_schedules_render_a_pass_without_queue_section() -> None:
    empty = Schedule("legacy:memory", None, {}, AS_OF, [], [])
    c = compare_schedules(empty, empty)
    text = render_string(c)
    assert ">PASS<" in text
    assert 'id="ordering"' not in text  # no queue on either side
    assert "No divergent candidate." in text


def test_nonfinite_values_are_shown_not_crashed_on() -> None:
    nan, inf = float("nan"), float("inf")
    a = [
        Decision("a", "c", None, offset=nan, success_probability=inf, value=1.0),
        Decision("b", "c", None, offset=5.0),
    ]
    b = [
        Decision("a", "c", None, offset=3.0, success_probability=0.5, value=1.0),
        Decision("b", "c", None, offset=inf),
    ]
    c = compare_schedules(
        Schedule("x", None, {}, AS_OF, a, []), Schedule("y", None, {}, AS_OF, b, [])
    )
    text = render_string(c)
    assert "NaN → 3" in text and "5 → ∞" in text
    for figure in re.findall(
        r'<svg xmlns="http://www.w3.org/2000/svg" class="plot".*?</svg>', text, re.S
    ):
        ET.fromstring(figure)


def test_units_people_read() -> None:
    from reports.view import duration_text, field_text, ratio_text, si_text

    assert [duration_text(v) for v in (5e5, 14.2e6, 60e6, 252e6, 7500e6, 3 * 86_400e6)] == [
        "500 ms",
        "14.2 s",
        "1 min",
        "4 min 12 s",
        "2 h 05 min",
        "3 d",
    ]
    assert si_text(5_586_101_895.0) == "5.59 G" and si_text(12_400.0) == "12.4 k"
    assert ratio_text(0.0) == "×1" and ratio_text(math.log(2.5)) == "×2.5"
    assert ratio_text(-math.log(4)) == "÷4"
    assert field_text("estimated_duration_us", 90e6) == "1 min 30 s"
    assert field_text("queue_position", 12.0) == "#12"


def test_report_labels_what_it_counts_and_has_its_new_parts(comparison: Comparison) -> None:
    text = render_string(comparison)
    assert "Real divergences (candidates)" in text and "field divergences" in text
    assert text.count('id="candidates"') == 1 and 'id="cand-table"' in text
    assert 'id="queue-heads"' in text  # the two queue heads side by side
    assert 'id="plot-dist-0"' in text  # A's and B's distributions
    assert "worker order τ-b" in text  # per-campaign rank agreement
    assert "<title>" in text and "offset under A" in text
    # the scatter's points carry tooltips naming the candidate
    assert re.search(r'<circle class="mark"[^>]*><title>[^<]+/[^<]+: A ', text)
    fewer = render_string(replace(comparison, table_rows=7))
    assert fewer.count('class="cand"') == 7
