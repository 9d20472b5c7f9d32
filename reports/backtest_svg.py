"""Inline SVG for the backtest section: reliability diagram, per-cut series, replay curves.

Plain line plots on a shared frame; text goes through :func:`reports.svg.esc`
(engine names and campaign names are untrusted), ticks through its tick
helpers, so the figures look like the comparison report's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from reports.svg import esc, fmt_number, linear_ticks

WIDTH, HEIGHT = 520, 340
LEFT, RIGHT, TOP, BOTTOM = 60, 130, 34, 46
#: One colour per engine, in the order the engines were given (colour-blind safe).
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


class _Frame:
    """Axes from data ranges to the plot area, and the SVG being written."""

    def __init__(self, title: str, x: tuple[float, float], y: tuple[float, float]) -> None:
        self.x0, self.x1 = x if x[1] > x[0] else (x[0], x[0] + 1.0)
        self.y0, self.y1 = y if y[1] > y[0] else (y[0], y[0] + 1.0)
        self.parts: list[str] = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{esc(title)}" '
            'font-family="system-ui, sans-serif" font-size="11">',
            f'<text x="{LEFT}" y="18" font-size="13" font-weight="600">{esc(title)}</text>',
        ]

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return HEIGHT - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)

    def axes(self, x_label: str, y_label: str, x_ticks: Sequence[tuple[float, str]]) -> None:
        p = self.parts
        bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
        for t in linear_ticks(self.y0, self.y1, 5):
            y = self.py(t)
            p.append(
                f'<line x1="{LEFT}" x2="{right}" y1="{_f(y)}" y2="{_f(y)}" stroke="#e5e5e5"/>'
                f'<text x="{LEFT - 6}" y="{_f(y + 4)}" text-anchor="end">{esc(fmt_number(t))}</text>'
            )
        for value, label in x_ticks:
            x = self.px(value)
            p.append(
                f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{bottom}" y2="{bottom + 4}" stroke="#555"/>'
                f'<text x="{_f(x)}" y="{bottom + 16}" text-anchor="middle">{esc(label)}</text>'
            )
        p.append(
            f'<line x1="{LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#555"/>'
            f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{bottom}" stroke="#555"/>'
            f'<text x="{(LEFT + right) / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle">{esc(x_label)}</text>'
            f'<text transform="translate(14 {(TOP + bottom) / 2:.0f}) rotate(-90)" '
            f'text-anchor="middle">{esc(y_label)}</text>'
        )

    def line(
        self, points: Sequence[tuple[float, float]], colour: str, *, dash: bool = False
    ) -> None:
        if not points:
            return
        d = " ".join(
            f"{'M' if i == 0 else 'L'}{_f(self.px(x))},{_f(self.py(y))}"
            for i, (x, y) in enumerate(points)
        )
        extra = ' stroke-dasharray="4 3"' if dash else ""
        self.parts.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"{extra}/>')

    def dots(self, points: Sequence[tuple[float, float, str]], colour: str) -> None:
        for x, y, title in points:
            self.parts.append(
                f'<circle cx="{_f(self.px(x))}" cy="{_f(self.py(y))}" r="3.5" fill="{colour}">'
                f"<title>{esc(title)}</title></circle>"
            )

    def legend(self, names: Sequence[str]) -> None:
        x = WIDTH - RIGHT + 12
        for i, name in enumerate(names):
            y = TOP + 8 + i * 18
            colour = PALETTE[i % len(PALETTE)]
            self.parts.append(
                f'<rect x="{x}" y="{y - 8}" width="12" height="4" fill="{colour}"/>'
                f'<text x="{x + 16}" y="{y - 3}">{esc(name)}</text>'
            )

    def empty(self, message: str) -> None:
        self.parts.append(
            f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT / 2:.0f}" text-anchor="middle" '
            f'fill="#777">{esc(message)}</text>'
        )

    def svg(self) -> str:
        return "".join([*self.parts, "</svg>"])


def reliability_diagram(bins_by_engine: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """Observed success rate against mean forecast per bin; the diagonal is perfect calibration."""
    frame = _Frame("Reliability diagram", (0.0, 1.0), (0.0, 1.0))
    ticks = [(t, fmt_number(t)) for t in linear_ticks(0.0, 1.0, 5)]
    frame.axes("predicted success probability", "observed success rate", ticks)
    frame.line([(0.0, 0.0), (1.0, 1.0)], "#999", dash=True)
    names = list(bins_by_engine)
    any_point = False
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        points = [
            (b["mean_forecast"], b["observed_rate"])
            for b in bins_by_engine[name]
            if b["count"] and b["mean_forecast"] is not None and b["observed_rate"] is not None
        ]
        any_point = any_point or bool(points)
        frame.line(points, colour)
        frame.dots(
            [
                (
                    b["mean_forecast"],
                    b["observed_rate"],
                    f"{name}: {b['count']} runs, forecast {b['mean_forecast']:.3f}, "
                    f"observed {b['observed_rate']:.3f}",
                )
                for b in bins_by_engine[name]
                if b["count"] and b["mean_forecast"] is not None and b["observed_rate"] is not None
            ],
            colour,
        )
    if not any_point:
        frame.empty("nothing scored")
    frame.legend(names)
    return frame.svg()


def series_plot(
    labels: Sequence[str], values: Mapping[str, Sequence[float | None]], title: str
) -> str:
    """One score per cut point and engine."""
    finite = [v for vs in values.values() for v in vs if v is not None and math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    pad = (hi - lo) * 0.1 or 0.01
    frame = _Frame(title, (0.0, max(len(labels) - 1, 1)), (max(0.0, lo - pad), hi + pad))
    frame.axes("cut point", "score", [(i, label[:10]) for i, label in enumerate(labels)])
    names = list(values)
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        points = [(x, v) for x, v in enumerate(values[name]) if v is not None and math.isfinite(v)]
        frame.line(points, colour)
        frame.dots([(x, v, f"{name} {labels[x]}: {v:.4f}") for x, v in points], colour)
    if not finite:
        frame.empty("nothing scored")
    frame.legend(names)
    return frame.svg()


def replay_curves(curves: Mapping[str, Sequence[Sequence[float]]], title: str) -> str:
    """Cumulative value delivered by successful runs against hours since the cut."""
    xs = [p[0] for c in curves.values() for p in c]
    ys = [p[1] for c in curves.values() for p in c]
    frame = _Frame(title, (0.0, max(xs, default=1.0)), (0.0, max(ys, default=1.0) * 1.05 or 1.0))
    ticks = [(t, fmt_number(t)) for t in linear_ticks(0.0, max(xs, default=1.0), 6)]
    frame.axes("hours after the cut", "value delivered", ticks)
    names = list(curves)
    for i, name in enumerate(names):
        frame.line([(p[0], p[1]) for p in curves[name]], PALETTE[i % len(PALETTE)])
    if not ys or max(ys) == 0:
        frame.empty("no successful run in the horizon")
    frame.legend(names)
    return frame.svg()
