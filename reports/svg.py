"""Inline SVG plots for the HTML report, written by hand.

The report must work offline and stay small, so there is no plotting library
and no script: each function returns one ``<svg>`` element as a string, with
axes, ticks, axis labels, a title and an accessible ``<title>``/``<desc>``.
Every piece of text that reaches the markup goes through :func:`esc`, so the
output is well-formed XML whatever the labels contain (campaign and codebase
names are untrusted).

Marks carry ``class="mark"`` so tests can count them: one per point, hexagon,
bar or bar segment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

#: Above this many points a scatter plot draws a hexagonal density grid instead.
MAX_POINTS = 2000

WIDTH = 600
HEIGHT = 380
MARGIN_LEFT = 68
MARGIN_RIGHT = 20
MARGIN_TOP = 40
MARGIN_BOTTOM = 56

AXIS_COLOUR = "#6b7280"
GRID_COLOUR = "#e5e7eb"
TEXT_COLOUR = "#374151"
#: grey is reserved for noise (see reports.view.STATUS_COLOURS): neutral bars
#: are teal, agreement soft green
DEFAULT_BAR = "#0e7490"
AGREE_COLOUR = "#9cc9a8"
#: A and B in plots that show both sides' values
SIDE_COLOURS = ("#1d4ed8", "#c2410c")


@dataclass(frozen=True)
class Category:
    """How a status code is drawn: its legend label and colour."""

    label: str
    colour: str


#: characters XML 1.0 does not allow at all, even escaped
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def esc(text: object) -> str:
    """Escape for XML text and attribute values (both quote kinds); characters
    XML cannot carry (control characters in an untrusted name) become U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", str(text)), quote=True)


def fmt_number(value: float) -> str:
    """A short tick label: ``1.5k``, ``20M``, ``0.001``, ``−3``."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return "∞" if value > 0 else "−∞" if value < 0 else "NaN"
    sign = "−" if value < 0 else ""
    v = abs(value)
    if v >= 1e15:
        return sign + f"{v:.2e}".replace("e+", "e")
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= limit:
            return sign + _trim(f"{v / limit:.3g}") + suffix
    if v >= 1e-3:
        return sign + _trim(f"{v:.3g}")
    return sign + f"{v:.0e}".replace("e-0", "e-")


def _trim(text: str) -> str:
    if "e" in text or "." not in text:
        return text
    return text.rstrip("0").rstrip(".")


def _f(x: float) -> str:
    """A coordinate with one decimal: enough on screen, small in bytes."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------- scales


@dataclass(frozen=True)
class Scale:
    """Maps data values in ``[lo, hi]`` to pixels in ``[p0, p1]``, linearly or
    on a log10 scale."""

    lo: float
    hi: float
    p0: float
    p1: float
    log: bool = False

    def _t(self, v: float) -> float:
        return math.log10(v) if self.log else v

    def __call__(self, v: float) -> float:
        a, b = self._t(self.lo), self._t(self.hi)
        if b == a:
            return (self.p0 + self.p1) / 2
        return self.p0 + (self._t(v) - a) / (b - a) * (self.p1 - self.p0)

    def ticks(self, target: int = 6) -> list[float]:
        return log_ticks(self.lo, self.hi) if self.log else linear_ticks(self.lo, self.hi, target)


def nice_step(span: float, target: int) -> float:
    """A 1-2-5 step giving about ``target`` intervals over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(target, 1)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def linear_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    step = nice_step(hi - lo, target)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    out = [round(i * step, 12) for i in range(first, last + 1)]
    return [0.0 if t == 0 else t for t in out]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten inside ``[lo, hi]``, thinned to at most 8; with 2 and 5
    added when the range spans less than two decades."""
    e0, e1 = math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9)
    decades = list(range(e0, e1 + 1))
    stride = max(1, math.ceil(len(decades) / 8))
    ticks = [10.0**e for e in decades[::stride]]
    if e1 - e0 < 2:
        extra = [m * 10.0**e for e in range(e0 - 1, e1 + 1) for m in (2, 5)]
        ticks = sorted(set(ticks) | {t for t in extra if lo <= t <= hi})
    return ticks


def log_domain(values: Sequence[float]) -> tuple[float, float]:
    """Whole decades around positive ``values`` (``(1, 10)`` if none)."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return 1.0, 10.0
    lo, hi = min(positive), max(positive)
    return 10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi) + 1e-12)


# ---------------------------------------------------------------- frame


class _Canvas:
    """Collects SVG parts for one plot and wraps them with the accessible header."""

    def __init__(self, ident: str, title: str, desc: str, width: int, height: int) -> None:
        self.ident = esc(ident)
        self.title = title
        self.desc = desc
        self.width = width
        self.height = height
        self.parts: list[str] = []

    def add(self, part: str) -> None:
        self.parts.append(part)

    def text(
        self,
        x: float,
        y: float,
        content: object,
        *,
        anchor: str = "middle",
        cls: str = "",
        extra: str = "",
    ) -> None:
        klass = f' class="{cls}"' if cls else ""
        self.add(
            f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{klass}{extra}>'
            f"{esc(content)}</text>"
        )

    def render(self) -> str:
        ident = self.ident
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" '
            f'viewBox="0 0 {self.width} {self.height}" width="{self.width}" height="{self.height}" '
            f'aria-labelledby="{ident}-t {ident}-d" id="{ident}">'
            f'<title id="{ident}-t">{esc(self.title)}</title>'
            f'<desc id="{ident}-d">{esc(self.desc)}</desc>'
            "<style>"
            f"text{{font:12px system-ui,sans-serif;fill:{TEXT_COLOUR}}}"
            ".h{font-size:14px;font-weight:600}.lbl{font-size:12px;fill:#4b5563}"
            ".tk{font-size:11px;fill:#6b7280}.empty{font-size:13px;fill:#9ca3af}"
            "</style>"
        )
        return head + "".join(self.parts) + "</svg>"


def _axes(
    c: _Canvas,
    xs: Scale,
    ys: Scale,
    x_label: str,
    y_label: str,
    *,
    x_ticks: Sequence[float] | None = None,
    y_ticks: Sequence[float] | None = None,
    x_fmt: Callable[[float], str] = fmt_number,
) -> None:
    left, right = min(xs.p0, xs.p1), max(xs.p0, xs.p1)
    bottom, top = max(ys.p0, ys.p1), min(ys.p0, ys.p1)
    grid: list[str] = []
    labels: list[str] = []
    for t in xs.ticks() if x_ticks is None else x_ticks:
        x = xs(t)
        grid.append(f"M{_f(x)} {_f(top)}V{_f(bottom)}")
        labels.append(
            f'<text class="tk" x="{_f(x)}" y="{_f(bottom + 16)}" text-anchor="middle">'
            f"{esc(x_fmt(t))}</text>"
        )
    for t in ys.ticks() if y_ticks is None else y_ticks:
        y = ys(t)
        grid.append(f"M{_f(left)} {_f(y)}H{_f(right)}")
        labels.append(
            f'<text class="tk" x="{_f(left - 6)}" y="{_f(y + 4)}" text-anchor="end">'
            f"{esc(fmt_number(t))}</text>"
        )
    if grid:
        c.add(f'<path d="{"".join(grid)}" stroke="{GRID_COLOUR}" stroke-width="1" fill="none"/>')
    c.add(
        f'<path d="M{_f(left)} {_f(top)}V{_f(bottom)}H{_f(right)}" '
        f'stroke="{AXIS_COLOUR}" stroke-width="1" fill="none"/>'
    )
    c.parts.extend(labels)
    c.text((left + right) / 2, c.height - 12, x_label, cls="lbl")
    mid = (top + bottom) / 2
    c.text(16, mid, y_label, cls="lbl", extra=f' transform="rotate(-90 16 {_f(mid)})"')


def _heading(c: _Canvas, title: str) -> None:
    c.text(MARGIN_LEFT, 22, title, anchor="start", cls="h")


def _legend_width(items: Sequence[Category]) -> float:
    return sum(6.5 * len(item.label) + 24 for item in items)


def _legend(c: _Canvas, items: Sequence[Category], x_right: float, *, y: float = 22) -> None:
    """Swatches right-aligned at ``x_right`` on the line at ``y``."""
    x = x_right
    for item in reversed(items):
        x -= 6.5 * len(item.label) + 24
        c.add(
            f'<rect x="{_f(x)}" y="{_f(y - 9)}" width="10" height="10" rx="2" '
            f'fill="{esc(item.colour)}"/>'
        )
        c.text(x + 14, y, item.label, anchor="start", cls="tk")


def _empty(c: _Canvas, message: str) -> None:
    c.text(c.width / 2, c.height / 2, message, cls="empty")


# ---------------------------------------------------------------- scatter


def _hex_centre(px: float, py: float, r: float) -> tuple[float, float]:
    """The centre of the pointy-top hexagon of circumradius ``r`` containing
    ``(px, py)``: the nearer of the two offset rectangular lattices' points."""
    w = math.sqrt(3) * r
    h = 1.5 * r
    col, row = round(px / w), round(py / (2 * h))
    c1 = (col * w, row * 2 * h)
    col2, row2 = math.floor(px / w), math.floor(py / (2 * h))
    c2 = ((col2 + 0.5) * w, (row2 + 0.5) * 2 * h)
    d1 = (px - c1[0]) ** 2 + (py - c1[1]) ** 2
    d2 = (px - c2[0]) ** 2 + (py - c2[1]) ** 2
    return c1 if d1 <= d2 else c2


def _hex_path(cx: float, cy: float, r: float) -> str:
    pts = []
    for k in range(6):
        angle = math.pi / 6 + k * math.pi / 3
        pts.append(f"{_f(cx + r * math.cos(angle))},{_f(cy + r * math.sin(angle))}")
    return "M" + "L".join(pts) + "Z"


def loglog_scatter(
    points: Sequence[tuple[float, float, int]],
    *,
    ident: str,
    title: str,
    x_label: str,
    y_label: str,
    categories: Mapping[int, Category],
    desc: str = "",
    max_points: int = MAX_POINTS,
    hex_radius: float = 7.0,
    width: int = 860,
    height: int = 560,
    labels: Sequence[str] | None = None,
) -> str:
    """A log-log scatter of ``(x, y, category)`` with the ``y = x`` line.

    Points that are not positive and finite cannot sit on a log axis and are
    left out (the description says how many). More than ``max_points`` points
    are binned into hexagons coloured by the highest category inside them, with
    opacity growing with the log of the count, so 100,000 points cost a few
    hundred marks.
    """
    names = list(labels) if labels is not None else [""] * len(points)
    keep = [i for i, (x, y, _) in enumerate(points) if _positive(x) and _positive(y)]
    usable = [points[i] for i in keep]
    tips = [names[i] if i < len(names) else "" for i in keep]
    dropped = len(points) - len(usable)
    binned = len(usable) > max_points
    summary = (
        f"{len(usable)} points"
        + (f" in hexagonal bins of radius {hex_radius:g}px" if binned else "")
        + (f"; {dropped} not positive and finite, not drawn" if dropped else "")
    )
    c = _Canvas(ident, title, f"{desc} {summary}.".strip(), width, height)
    _heading(c, title)
    _legend(c, [categories[k] for k in sorted(categories)], width - MARGIN_RIGHT)
    if not usable:
        _empty(c, "no candidate with a positive offset on both sides")
        return c.render()
    lo, hi = log_domain([v for x, y, _ in usable for v in (x, y)])
    xs = Scale(lo, hi, MARGIN_LEFT, width - MARGIN_RIGHT, log=True)
    ys = Scale(lo, hi, height - MARGIN_BOTTOM, MARGIN_TOP, log=True)
    _axes(c, xs, ys, x_label, y_label)
    c.add(
        f'<path d="M{_f(xs(lo))} {_f(ys(lo))}L{_f(xs(hi))} {_f(ys(hi))}" stroke="#111827" '
        'stroke-width="1" stroke-dasharray="4 3" fill="none" opacity="0.55"/>'
    )
    c.text(xs(hi) - 4, ys(hi) + 14, "y = x", anchor="end", cls="tk")
    # worst status drawn last, on top
    order = sorted(range(len(usable)), key=lambda i: usable[i][2])
    ordered = [usable[i] for i in order]
    if not binned:
        for i in order:
            x, y, k = usable[i]
            cat = categories.get(k) or Category(str(k), DEFAULT_BAR)
            tip = f"{tips[i]}: " if tips[i] else ""
            c.add(
                f'<circle class="mark" cx="{_f(xs(x))}" cy="{_f(ys(y))}" r="2.6" '
                f'fill="{esc(cat.colour)}" fill-opacity="0.75"><title>{esc(tip)}A '
                f"{esc(fmt_number(x))}, B {esc(fmt_number(y))} ({esc(cat.label)})</title></circle>"
            )
        return c.render()
    cells: dict[tuple[float, float], list[int]] = {}
    for x, y, k in ordered:
        centre = _hex_centre(xs(x), ys(y), hex_radius)
        cell = cells.setdefault(centre, [0, k])
        cell[0] += 1
        cell[1] = max(cell[1], k)
    peak = max(n for n, _ in cells.values())
    for (cx, cy), (n, k) in sorted(cells.items(), key=lambda item: item[1][1]):
        cat = categories.get(k) or Category(str(k), DEFAULT_BAR)
        opacity = 0.25 + 0.75 * (math.log1p(n) / math.log1p(peak) if peak > 1 else 1.0)
        c.add(
            f'<path class="mark" d="{_hex_path(cx, cy, hex_radius)}" fill="{esc(cat.colour)}" '
            f'fill-opacity="{opacity:.2f}"><title>{n} candidates</title></path>'
        )
    return c.render()


def _positive(v: float) -> bool:
    return v > 0 and math.isfinite(v)


# ---------------------------------------------------------------- histogram


def histogram(
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    ident: str,
    title: str,
    x_label: str,
    y_label: str = "candidates",
    desc: str = "",
    log_counts: bool | None = None,
    colour: str = DEFAULT_BAR,
    mark_zero: bool = True,
    width: int = WIDTH,
    height: int = HEIGHT,
    x_fmt: Callable[[float], str] = fmt_number,
) -> str:
    """Bars over ``edges`` (``len(edges) == len(counts) + 1``), one mark per
    non-empty bin. ``log_counts`` (default: when the tallest bar is over 50
    times the shortest non-empty one) puts counts on a log axis so a spike of
    equal values does not flatten every other bar. With ``mark_zero`` a dashed
    line marks 0 (no difference); a bin holding 0 may still hold small
    differences, so it is not singled out, except when it is the only bin:
    then every value is 0 and the plot says so in words."""
    if len(edges) != len(counts) + 1:
        raise ValueError(f"histogram: {len(edges)} edges for {len(counts)} counts")
    total = sum(counts)
    nonzero = [n for n in counts if n > 0]
    if log_counts is None:
        log_counts = bool(nonzero) and max(nonzero) > 50 * min(nonzero)
    scale_note = ", counts on a log scale" if log_counts else ""
    summary = f"{total} values in {len(counts)} bins from {fmt_number(edges[0])} to {fmt_number(edges[-1])}{scale_note}"
    c = _Canvas(ident, title, f"{desc} {summary}.".strip(), width, height)
    _heading(c, title)
    if not nonzero:
        _axes_empty(c, x_label, y_label)
        _empty(c, "nothing to count")
        return c.render()
    filled = [i for i, n in enumerate(counts) if n > 0]
    # one bar around zero: the engines agree everywhere; draw a slim bar at 0
    # on a neutral axis rather than a block filling the whole plot
    agree = mark_zero and len(filled) == 1 and edges[filled[0]] <= 0 <= edges[filled[0] + 1]
    if agree:
        xs = Scale(-1.0, 1.0, MARGIN_LEFT, width - MARGIN_RIGHT)
        bins: list[tuple[float, float, int]] = [(-0.03, 0.03, counts[filled[0]])]
    else:
        xs = Scale(edges[0], edges[-1], MARGIN_LEFT, width - MARGIN_RIGHT)
        bins = list(zip(edges, edges[1:], counts, strict=False))
    peak = max(nonzero)
    if log_counts:
        # the axis starts at 0.5 so that a bin holding one value stays visible
        ys = Scale(
            0.5,
            max(10.0, 10.0 ** math.ceil(math.log10(peak) + 1e-12)),
            height - MARGIN_BOTTOM,
            MARGIN_TOP,
            log=True,
        )
    else:
        step = nice_step(peak, 5)
        ys = Scale(0, math.ceil(peak / step) * step, height - MARGIN_BOTTOM, MARGIN_TOP)
    y_ticks = [t for t in ys.ticks(5) if t == int(t)]
    y_title = y_label + (" (log)" if log_counts else "")
    _axes(
        c, xs, ys, x_label, y_title, y_ticks=y_ticks, x_ticks=[0.0] if agree else None, x_fmt=x_fmt
    )
    base = ys.p0
    for lo, hi, n in bins:
        if n <= 0:
            continue
        x0, x1 = xs(lo), xs(hi)
        y = ys(n)
        fill = AGREE_COLOUR if agree else colour
        shown = (edges[filled[0]], edges[filled[0] + 1]) if agree else (lo, hi)
        c.add(
            f'<rect class="mark" x="{_f(x0 + 0.5)}" y="{_f(y)}" width="{_f(max(x1 - x0 - 1, 1))}" '
            f'height="{_f(max(base - y, 1))}" fill="{esc(fill)}">'
            f"<title>{esc(x_fmt(shown[0]))} … {esc(x_fmt(shown[1]))}: {n}</title></rect>"
        )
    if mark_zero and not agree and edges[0] < 0 < edges[-1]:
        c.add(
            f'<path d="M{_f(xs(0.0))} {_f(ys.p1)}V{_f(ys.p0)}" stroke="#111827" '
            'stroke-width="1" stroke-dasharray="4 3" opacity="0.55" fill="none"/>'
        )
        c.text(xs(0.0) + 4, ys.p1 + 12, "0", anchor="start", cls="tk")
    if agree:
        c.text(
            xs(0.0) + 18,
            MARGIN_TOP + 40,
            f"all {total:,} at 0: no difference",
            anchor="start",
            cls="h",
        )
    return c.render()


def _axes_empty(c: _Canvas, x_label: str, y_label: str) -> None:
    xs = Scale(0, 1, MARGIN_LEFT, c.width - MARGIN_RIGHT)
    ys = Scale(0, 1, c.height - MARGIN_BOTTOM, MARGIN_TOP)
    _axes(c, xs, ys, x_label, y_label, x_ticks=(), y_ticks=())


# ---------------------------------------------------------------- bars


def stacked_bars(
    rows: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[Category],
    *,
    ident: str,
    title: str,
    x_label: str,
    desc: str = "",
    width: int = WIDTH,
    row_height: int = 22,
) -> str:
    """Horizontal stacked bars, one row per label (campaign names can be long,
    so they sit on the left, not under the bars). ``rows[i][1][j]`` is the
    value of series ``j``; one mark per non-zero segment."""
    label_width = min(220, max([7 * len(label) for label, _ in rows] + [60]) + 12)
    plot_height = max(row_height * len(rows), row_height)
    beside = MARGIN_LEFT + 8 * len(title) + 24 + _legend_width(series) <= width - MARGIN_RIGHT
    top_margin = MARGIN_TOP if beside else MARGIN_TOP + 18
    height = top_margin + plot_height + MARGIN_BOTTOM
    totals = [sum(values) for _, values in rows]
    c = _Canvas(ident, title, f"{desc} {len(rows)} rows.".strip(), width, height)
    _heading(c, title)
    _legend(c, series, width - MARGIN_RIGHT, y=22 if beside else 42)
    left = label_width
    peak = max(totals, default=0)
    if peak <= 0:
        _empty(c, "nothing to count")
        return c.render()
    step = nice_step(peak, 5)
    xs = Scale(0, math.ceil(peak / step) * step, left, width - MARGIN_RIGHT - 40)
    ys = Scale(0, plot_height, top_margin, top_margin + plot_height)
    grid = "".join(f"M{_f(xs(t))} {top_margin}V{top_margin + plot_height}" for t in xs.ticks(5))
    c.add(f'<path d="{grid}" stroke="{GRID_COLOUR}" fill="none"/>')
    for t in xs.ticks(5):
        c.text(xs(t), top_margin + plot_height + 16, fmt_number(t), cls="tk")
    c.text((left + width - MARGIN_RIGHT) / 2, height - 12, x_label, cls="lbl")
    for i, (label, values) in enumerate(rows):
        y = ys(i * row_height) + 3
        shown = label if len(label) <= 30 else label[:29] + "…"
        c.text(left - 8, y + row_height / 2 + 1, shown, anchor="end", cls="tk")
        x = xs(0)
        for cat, value in zip(series, values, strict=False):
            if value <= 0:
                continue
            w = xs(value) - xs(0)
            c.add(
                f'<rect class="mark" x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 1))}" '
                f'height="{row_height - 6}" fill="{esc(cat.colour)}">'
                f"<title>{esc(label)}: {fmt_number(value)} {esc(cat.label)}</title></rect>"
            )
            x += w
        c.text(x + 4, y + row_height / 2 + 1, fmt_number(totals[i]), anchor="start", cls="tk")
    c.add(f'<path d="M{_f(left)} {top_margin}V{top_margin + plot_height}" stroke="{AXIS_COLOUR}"/>')
    return c.render()


# ---------------------------------------------------------------- ranks


def rank_scatter(
    moves: Sequence[tuple[int, int, int]],
    *,
    ident: str,
    title: str,
    total: int,
    desc: str = "",
    categories: Mapping[int, Category] | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    labels: Sequence[str] | None = None,
) -> str:
    """Position in A (x) against position in B (y) for ``(rank_a, rank_b,
    category)`` triples, on linear axes from 1 to ``total``, with ``y = x``:
    points above the line run later under B. Binned like :func:`loglog_scatter`
    past :data:`MAX_POINTS`."""
    c = _Canvas(ident, title, f"{desc} {len(moves)} candidates.".strip(), width, height)
    _heading(c, title)
    cats = categories or {0: Category("moved", DEFAULT_BAR)}
    if len(cats) > 1:
        _legend(c, [cats[k] for k in sorted(cats)], width - MARGIN_RIGHT)
    top = max([total, *(max(a, b) for a, b, _ in moves)], default=1)
    top = max(top, 2)
    xs = Scale(1, top, MARGIN_LEFT, width - MARGIN_RIGHT)
    ys = Scale(1, top, height - MARGIN_BOTTOM, MARGIN_TOP)
    _axes(c, xs, ys, "position in A's queue", "position in B's queue")
    c.add(
        f'<path d="M{_f(xs(1))} {_f(ys(1))}L{_f(xs(top))} {_f(ys(top))}" stroke="#111827" '
        'stroke-dasharray="4 3" opacity="0.55" fill="none"/>'
    )
    if not moves:
        _empty(c, "no candidate changed position")
        return c.render()
    if len(moves) > MAX_POINTS:
        cells: dict[tuple[float, float], list[int]] = {}
        for a, b, k in moves:
            cell = cells.setdefault(_hex_centre(xs(a), ys(b), 7.0), [0, k])
            cell[0] += 1
            cell[1] = max(cell[1], k)
        peak = max(n for n, _ in cells.values())
        for (cx, cy), (n, k) in cells.items():
            cat = cats.get(k) or Category(str(k), DEFAULT_BAR)
            opacity = 0.25 + 0.75 * (math.log1p(n) / math.log1p(peak) if peak > 1 else 1.0)
            c.add(
                f'<path class="mark" d="{_hex_path(cx, cy, 7.0)}" fill="{esc(cat.colour)}" '
                f'fill-opacity="{opacity:.2f}"/>'
            )
        return c.render()
    names = list(labels) if labels is not None else []
    for i, (a, b, k) in enumerate(moves):
        cat = cats.get(k) or Category(str(k), DEFAULT_BAR)
        name = f"{names[i]}: " if i < len(names) else ""
        c.add(
            f'<circle class="mark" cx="{_f(xs(a))}" cy="{_f(ys(b))}" r="2.8" '
            f'fill="{esc(cat.colour)}" fill-opacity="0.75"><title>{esc(name)}#{a:,} under A, '
            f"#{b:,} under B</title></circle>"
        )
    return c.render()


def contribution_bar(
    parts: Sequence[tuple[str, float]],
    colours: Mapping[str, str],
    *,
    width: int = 160,
    height: int = 14,
    limit: float | None = None,
) -> str:
    """A tiny diverging bar of signed contributions around a centre line (the
    factor breakdown in the candidate table): right of centre pushes the
    offset up. ``limit`` is the |value| that fills half the width (default:
    the larger of the positive and negative sums). One mark per non-zero
    part; no title or axes, the table row says what it is."""
    pos = sum(v for _, v in parts if v > 0)
    neg = -sum(v for _, v in parts if v < 0)
    half = width / 2
    reach = limit if limit and limit > 0 else max(pos, neg)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cbar" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-hidden="true">'
    ]
    if reach > 0:
        scale = half / reach
        right, left = half, half
        for name, value in parts:
            if value == 0 or not math.isfinite(value):
                continue
            w = min(abs(value) * scale, half)
            if value > 0:
                x = right
                right += w
            else:
                left -= w
                x = left
            out.append(
                f'<rect class="mark" x="{_f(x)}" y="2" width="{_f(max(w, 0.8))}" '
                f'height="{height - 4}" fill="{esc(colours.get(name, DEFAULT_BAR))}"/>'
            )
    out.append(f'<path d="M{_f(half)} 0V{height}" stroke="#374151" stroke-width="1"/></svg>')
    return "".join(out)


# ---------------------------------------------------------------- A and B


def paired_histogram(
    edges: Sequence[float],
    counts_a: Sequence[int],
    counts_b: Sequence[int],
    *,
    ident: str,
    title: str,
    x_label: str,
    log_x: bool = False,
    desc: str = "",
    labels: tuple[str, str] = ("A", "B"),
    width: int = WIDTH,
    height: int = HEIGHT,
    x_fmt: Callable[[float], str] = fmt_number,
    x_ticks: Sequence[float] | None = None,
) -> str:
    """A's and B's values on the same bins, side by side in each bin (A left,
    B right), on a log x axis when the values span orders of magnitude."""
    total_a, total_b = sum(counts_a), sum(counts_b)
    summary = (
        f"{total_a} values of {labels[0]} and {total_b} of {labels[1]} in {len(counts_a)} bins "
        f"from {fmt_number(edges[0])} to {fmt_number(edges[-1])}" + (", log scale" if log_x else "")
    )
    c = _Canvas(ident, title, f"{desc} {summary}.".strip(), width, height)
    _heading(c, title)
    _legend(
        c,
        [Category(labels[0], SIDE_COLOURS[0]), Category(labels[1], SIDE_COLOURS[1])],
        width - MARGIN_RIGHT,
    )
    peak = max([*counts_a, *counts_b, 0])
    if peak == 0:
        _axes_empty(c, x_label, "candidates")
        _empty(c, "nothing to count")
        return c.render()
    xs = Scale(edges[0], edges[-1], MARGIN_LEFT, width - MARGIN_RIGHT, log=log_x)
    step = nice_step(peak, 5)
    ys = Scale(0, math.ceil(peak / step) * step, height - MARGIN_BOTTOM, MARGIN_TOP)
    _axes(
        c,
        xs,
        ys,
        x_label,
        "candidates",
        y_ticks=[t for t in ys.ticks(5) if t == int(t)],
        x_fmt=x_fmt,
        x_ticks=None
        if x_ticks is None
        else [t for t in x_ticks if edges[0] <= t <= edges[-1]] or None,
    )
    base = ys.p0
    for lo, hi, na, nb in zip(edges, edges[1:], counts_a, counts_b, strict=False):
        x0, x1 = xs(lo), xs(hi)
        mid = (x0 + x1) / 2
        for n, left, colour, who in ((na, x0, SIDE_COLOURS[0], 0), (nb, mid, SIDE_COLOURS[1], 1)):
            if n <= 0:
                continue
            y = ys(n)
            c.add(
                f'<rect class="mark" x="{_f(left + 0.3)}" y="{_f(y)}" '
                f'width="{_f(max(mid - x0 - 0.6, 0.8))}" height="{_f(max(base - y, 1))}" '
                f'fill="{colour}" fill-opacity="0.85"><title>{esc(labels[who])}: '
                f"{esc(x_fmt(lo))} … {esc(x_fmt(hi))}: {n}</title></rect>"
            )
    return c.render()
