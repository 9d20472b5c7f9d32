"""The hand-written SVG plots: well-formed XML, the right number of marks,
escaped labels, and scales and ticks that land where they should."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports import svg

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert('x') & \"y\"</script>"
CATS = {
    0: svg.Category("equal", "#cbd5e1"),
    3: svg.Category("real", "#dc2626"),
}


def parse(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{NS}svg"
    return root


def marks(root: ET.Element) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == "mark"]


def texts(root: ET.Element) -> list[str]:
    return ["".join(e.itertext()) for e in root.iter(f"{NS}text")]


def accessible(root: ET.Element) -> tuple[str, str]:
    title, desc = root.find(f"{NS}title"), root.find(f"{NS}desc")
    assert title is not None and desc is not None
    labelled = (root.get("aria-labelledby") or "").split()
    assert labelled == [title.get("id"), desc.get("id")]
    assert root.get("role") == "img"
    return title.text or "", desc.text or ""


# ---------------------------------------------------------------- scatter


def test_scatter_draws_one_circle_per_positive_point_and_the_diagonal() -> None:
    points = [(10.0 * (i + 1), 12.0 * (i + 1), 3 if i % 4 == 0 else 0) for i in range(40)]
    points += [(0.0, 5.0, 0), (5.0, -1.0, 0), (math.nan, 5.0, 3), (math.inf, 1.0, 0)]
    root = parse(
        svg.loglog_scatter(
            points,
            ident="s1",
            title="Offsets",
            x_label="A",
            y_label="B",
            categories=CATS,
            desc="test",
        )
    )
    circles = marks(root)
    assert len(circles) == 40
    assert all(c.tag == f"{NS}circle" for c in circles)
    title, desc = accessible(root)
    assert title == "Offsets"
    assert "40 points" in desc and "4 not positive and finite" in desc
    assert "y = x" in texts(root)
    # real points are drawn last, on top of the agreeing ones
    fills = [c.get("fill") for c in circles]
    assert fills[-10:] == ["#dc2626"] * 10


def test_scatter_point_positions_follow_the_log_scale() -> None:
    root = parse(
        svg.loglog_scatter(
            [(10.0, 10.0, 0), (1000.0, 1000.0, 0), (100.0, 100.0, 0)],
            ident="s2",
            title="t",
            x_label="x",
            y_label="y",
            categories=CATS,
        )
    )
    cx = sorted(float(c.get("cx", "nan")) for c in marks(root))
    # 10, 100, 1000 are evenly spaced on a log axis
    assert cx[1] - cx[0] == pytest.approx(cx[2] - cx[1], abs=0.11)
    ticks = texts(root)
    for label in ("10", "100", "1k"):
        assert label in ticks


def test_scatter_bins_into_hexagons_past_the_point_cap() -> None:
    n = 100_000
    points = [
        (1.0 + i, (1.0 + i) * (1.5 if i % 1000 == 0 else 1.0), 3 if i % 1000 == 0 else 0)
        for i in range(n)
    ]
    text = svg.loglog_scatter(
        points, ident="s3", title="t", x_label="x", y_label="y", categories=CATS, hex_radius=7
    )
    root = parse(text)
    hexes = marks(root)
    assert all(h.tag == f"{NS}path" for h in hexes)
    assert 10 < len(hexes) < 2000
    assert sum(int((h.findtext(f"{NS}title") or "0").split()[0]) for h in hexes) == n
    assert any(h.get("fill") == "#dc2626" for h in hexes)
    assert len(text) < 400_000
    _, desc = accessible(root)
    assert "hexagonal bins" in desc


def test_scatter_without_usable_points_says_so() -> None:
    root = parse(
        svg.loglog_scatter(
            [(0.0, 0.0, 0)], ident="s4", title="t", x_label="x", y_label="y", categories=CATS
        )
    )
    assert marks(root) == []
    assert any("no candidate" in t for t in texts(root))


def test_hex_centres_are_the_nearest_lattice_points() -> None:
    r = 7.0
    for px, py in [(0.0, 0.0), (3.1, 9.7), (100.3, 55.5), (6.06, 10.5), (-20.0, 14.0)]:
        cx, cy = svg._hex_centre(px, py, r)
        # a point is inside its hexagon: no farther than the circumradius
        assert math.hypot(px - cx, py - cy) <= r + 1e-9


# ---------------------------------------------------------------- histogram


def test_histogram_one_bar_per_nonempty_bin() -> None:
    edges = [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]
    counts = [3, 0, 1000, 7, 2]
    root = parse(svg.histogram(edges, counts, ident="h1", title="Δp", x_label="B − A", desc="d"))
    bars = marks(root)
    assert len(bars) == 4
    title, desc = accessible(root)
    assert title == "Δp"
    assert "1012 values in 5 bins" in desc
    # the spike makes the counts logarithmic; a dashed line marks zero
    assert "counts on a log scale" in desc
    assert {b.get("fill") for b in bars} == {svg.DEFAULT_BAR}
    zero = [p for p in root.iter(f"{NS}path") if p.get("stroke-dasharray")]
    assert len(zero) == 1
    heights = [float(b.get("height", "0")) for b in bars]
    assert max(heights) == heights[1]


def test_histogram_linear_counts_are_proportional() -> None:
    root = parse(
        svg.histogram(
            [0.0, 1.0, 2.0, 3.0], [10, 20, 40], ident="h2", title="t", x_label="x", log_counts=False
        )
    )
    h = [float(b.get("height", "0")) for b in marks(root)]
    assert h[1] / h[0] == pytest.approx(2, rel=0.02)
    assert h[2] / h[0] == pytest.approx(4, rel=0.02)


def test_histogram_rejects_mismatched_edges_and_handles_empty() -> None:
    with pytest.raises(ValueError):
        svg.histogram([0.0, 1.0], [1, 2], ident="h3", title="t", x_label="x")
    root = parse(svg.histogram([0.0, 1.0], [0], ident="h4", title="t", x_label="x"))
    assert marks(root) == []


# ---------------------------------------------------------------- bars


def test_stacked_bars_one_segment_per_nonzero_value_and_escaped_labels() -> None:
    rows = [
        (HOSTILE, [3.0, 0.0, 1.0]),
        ("lintian-fixes", [0.0, 2.0, 0.0]),
        ("empty", [0.0, 0.0, 0.0]),
    ]
    series = [
        svg.Category("real", "#f00"),
        svg.Category("waived", "#fa0"),
        svg.Category("noise", "#999"),
    ]
    text = svg.stacked_bars(rows, series, ident="b1", title="Per campaign", x_label="candidates")
    assert "<script>" not in text
    root = parse(text)
    assert len(marks(root)) == 3
    labels = texts(root)
    assert any(label.startswith("<script>alert") for label in labels)  # shown as text
    accessible(root)
    # segments of one row start where the previous one ended
    first = [m for m in marks(root) if HOSTILE in (m.findtext(f"{NS}title") or "")]
    x0, w0 = float(first[0].get("x", "0")), float(first[0].get("width", "0"))
    assert float(first[1].get("x", "0")) == pytest.approx(x0 + w0, abs=0.11)


def test_stacked_bars_legend_moves_below_a_long_title() -> None:
    series = [svg.Category(f"factor number {i}", "#123456") for i in range(5)]
    text = svg.stacked_bars(
        [("c", [1.0] * 5)], series, ident="b2", title="A rather long title for a plot", x_label="x"
    )
    root = parse(text)
    legend_y = {float(e.get("y", "0")) for e in root.iter(f"{NS}rect") if e.get("class") != "mark"}
    assert legend_y == {33.0}


# ---------------------------------------------------------------- ranks


def test_rank_scatter_marks_and_axes() -> None:
    moves = [(i, i + 50, 0) for i in range(1, 31)]
    root = parse(svg.rank_scatter(moves, ident="r1", title="Movers", total=200))
    assert len(marks(root)) == 30
    labels = texts(root)
    assert "position in A's queue" in labels and "position in B's queue" in labels
    accessible(root)


def test_rank_scatter_bins_many_moves() -> None:
    moves = [(i, (i * 7) % 5000 + 1, 0) for i in range(1, 5001)]
    root = parse(svg.rank_scatter(moves, ident="r2", title="Movers", total=5000))
    assert 0 < len(marks(root)) < 5000


def test_contribution_bar_splits_around_the_centre() -> None:
    text = svg.contribution_bar(
        [("duration", 0.6), ("success_probability", -0.2), ("residual", 0.0)],
        {"duration": "#00f", "success_probability": "#0f0"},
        width=100,
    )
    root = parse(text)
    bars = marks(root)
    assert len(bars) == 2
    right = next(b for b in bars if b.get("fill") == "#00f")
    left = next(b for b in bars if b.get("fill") == "#0f0")
    assert float(right.get("x", "0")) == 50
    assert float(right.get("width", "0")) == pytest.approx(50, abs=0.11)
    assert float(left.get("x", "0")) + float(left.get("width", "0")) == pytest.approx(50, abs=0.11)


# ---------------------------------------------------------------- invariants


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.floats(min_value=1e-6, max_value=1e9, allow_nan=False),
)
def test_linear_ticks_are_inside_and_evenly_spaced(lo: float, span: float) -> None:
    hi = lo + span
    ticks = svg.linear_ticks(lo, hi)
    step = svg.nice_step(span, 6)
    tolerance = 1e-9 * max(abs(lo), abs(hi), step)
    assert all(lo - tolerance <= t <= hi + tolerance for t in ticks)
    assert 1 <= len(ticks) <= 13
    for a, b in itertools.pairwise(ticks):
        assert b - a == pytest.approx(step, rel=1e-6, abs=tolerance)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True, width=32),
            st.floats(allow_nan=True, allow_infinity=True, width=32),
            st.sampled_from([0, 1, 2, 3]),
        ),
        max_size=60,
    ),
    st.text(max_size=20),
)
def test_any_input_gives_wellformed_svg(points: list[tuple[float, float, int]], label: str) -> None:
    cats = {k: svg.Category(f"{label}{k}", "#000") for k in range(4)}
    root = parse(
        svg.loglog_scatter(
            points, ident="p", title=label, x_label=label, y_label=label, categories=cats
        )
    )
    positive = [
        p for p in points if p[0] > 0 and p[1] > 0 and math.isfinite(p[0]) and math.isfinite(p[1])
    ]
    assert len(marks(root)) == len(positive)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_fmt_number_is_short(value: float) -> None:
    assert 1 <= len(svg.fmt_number(value)) <= 9


def test_histogram_of_pure_agreement_says_so() -> None:
    root = parse(svg.histogram([-1e-12, 1e-12], [10], ident="h5", title="t", x_label="x"))
    bars = marks(root)
    assert len(bars) == 1 and bars[0].get("fill") == svg.AGREE_COLOUR
    # a slim bar, not a block across the plot
    assert float(bars[0].get("width", "0")) < 30
    assert "all 10 at 0: no difference" in texts(root)
