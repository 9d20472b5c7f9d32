"""The shadow service's HTML report: its history charted, so drift shows at a glance.

One self-contained page (inline CSS and SVG, no script): headline figures
of the last cycle, then over time divergent candidates by status, divergences
per field, per campaign, rank agreement (the new engine's queue against the
legacy's and against production's), and cycle durations; failed cycles are
marked on every chart (red lines; abandoned ones grey), and the latest
cycles are listed with their errors. Records come from
:mod:`harness.service.history`; every string from them is escaped
(autoescaping templates, :func:`reports.svg.esc` in the charts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.data.atomic import write_atomic
from reports.html import compact, environment
from reports.svg import (
    AXIS_COLOUR,
    HEIGHT,
    MARGIN_BOTTOM,
    MARGIN_LEFT,
    MARGIN_RIGHT,
    MARGIN_TOP,
    WIDTH,
    Category,
    Scale,
    _axes,
    _Canvas,
    _empty,
    _f,
    _heading,
    _legend,
    _legend_width,
    esc,
    fmt_number,
    linear_ticks,
)

PALETTE = (
    "#2563eb",
    "#dc2626",
    "#16a34a",
    "#9333ea",
    "#ea580c",
    "#0891b2",
    "#ca8a04",
    "#db2777",
    "#4b5563",
    "#65a30d",
)
FAILED_COLOUR = "#f87171"
ABANDONED_COLOUR = "#9ca3af"
#: As in the comparison report: real red, waived amber, noise slate.
STATUS_COLOURS = {"real": "#b91c1c", "waived": "#b45309", "noise": "#52648c"}
#: Lines per chart: the series with the largest peaks; the rest are summed as "other".
MAX_SERIES = 8
#: Up to this many cycles each point is drawn (with a tooltip); beyond, lines only.
MAX_MARKED_POINTS = 200
TIME_STEPS = (
    60,
    300,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
    30 * 86400,
)


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[float | None, ...]
    colour: str | None = None


def _time(text: object) -> float | None:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _time_ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    step = next((s for s in TIME_STEPS if span / s <= 7), TIME_STEPS[-1])
    first = math.ceil(lo / step) * step
    return [float(t) for t in range(int(first), int(hi) + 1, step)]


def _time_label(span: float) -> Any:
    fmt = "%H:%M" if span <= 86400 else "%m-%d %H:%M" if span <= 4 * 86400 else "%Y-%m-%d"

    def label(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime(fmt)

    return label


def _legend_rows(title: str, cats: list[Category]) -> list[list[Category]]:
    """``[cats]`` itself when the legend fits beside the title, else rows that
    fit the width, to go under it."""
    width = sum(_legend_width([c]) for c in cats)
    if MARGIN_LEFT + 8 * len(title) + 24 + width <= WIDTH - MARGIN_RIGHT:
        return [cats]
    rows: list[list[Category]] = [[]]
    used = 0.0
    for cat in cats:
        w = _legend_width([cat])
        if rows[-1] and used + w > WIDTH - MARGIN_LEFT - MARGIN_RIGHT:
            rows.append([])
            used = 0.0
        rows[-1].append(cat)
        used += w
    return rows


def time_chart(
    times: Sequence[float],
    series: Sequence[Series],
    *,
    ident: str,
    title: str,
    y_label: str,
    failed: Sequence[tuple[float, str]] = (),
    abandoned: Sequence[float] = (),
    y_range: tuple[float, float] | None = None,
    desc: str = "",
) -> str:
    """Lines over time, one per series (``None`` breaks a line); failed cycles
    as red vertical lines, abandoned ones grey. Points carry ``class="mark"``
    (up to :data:`MAX_MARKED_POINTS` cycles), failure lines ``class="failed"``."""
    cats = [Category(s.label, s.colour or PALETTE[i % len(PALETTE)]) for i, s in enumerate(series)]
    rows = _legend_rows(title, cats)
    top = MARGIN_TOP + 18 * len(rows) if rows[0] is not cats else MARGIN_TOP
    c = _Canvas(ident, title, f"{desc} {len(times)} cycles.".strip(), WIDTH, HEIGHT)
    _heading(c, title)
    if rows[0] is cats:
        _legend(c, cats, WIDTH - MARGIN_RIGHT)
    else:
        for k, row in enumerate(rows):
            _legend(c, row, WIDTH - MARGIN_RIGHT, y=42 + 18 * k)
    every = [t for t in times] + [t for t, _ in failed] + list(abandoned)
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    if not every:
        _empty(c, "no cycles yet")
        return c.render()
    x_lo, x_hi = min(every), max(every)
    if x_hi - x_lo < 60:
        x_lo, x_hi = x_lo - 30, x_hi + 30
    if y_range is not None:
        y_lo, y_hi = y_range
    else:
        y_lo, y_hi = 0.0, max(values, default=1.0)
        if y_hi <= y_lo:
            y_hi = y_lo + 1
        ticks = linear_ticks(y_lo, y_hi, 5)
        y_hi = max(y_hi, ticks[-1] if ticks else y_hi)
    xs = Scale(x_lo, x_hi, MARGIN_LEFT, WIDTH - MARGIN_RIGHT)
    ys = Scale(y_lo, y_hi, HEIGHT - MARGIN_BOTTOM, top)
    span = x_hi - x_lo
    _axes(
        c,
        xs,
        ys,
        "cycle start (UTC)",
        y_label,
        x_ticks=_time_ticks(x_lo, x_hi),
        y_ticks=linear_ticks(y_lo, y_hi, 5),
        x_fmt=_time_label(span),
    )
    y0, y1 = ys(y_lo), ys(y_hi)
    for t, why in failed:
        x = _f(xs(t))
        c.add(
            f'<path class="failed" d="M{x} {_f(y0)}V{_f(y1)}" stroke="{FAILED_COLOUR}" '
            f'stroke-width="3" stroke-opacity="0.6"><title>failed: {esc(why)}</title></path>'
        )
    for t in abandoned:
        x = _f(xs(t))
        c.add(
            f'<path class="abandoned" d="M{x} {_f(y0)}V{_f(y1)}" stroke="{ABANDONED_COLOUR}" '
            'stroke-dasharray="3 3"><title>abandoned (stopped)</title></path>'
        )
    marked = len(times) <= MAX_MARKED_POINTS
    for cat, s in zip(cats, series, strict=True):
        path: list[str] = []
        pen_up = True
        points: list[str] = []
        for t, v in zip(times, s.values, strict=True):
            if v is None or not math.isfinite(v):
                pen_up = True
                continue
            px, py = _f(xs(t)), _f(ys(min(max(v, y_lo), y_hi)))
            path.append(f"{'M' if pen_up else 'L'}{px} {py}")
            pen_up = False
            if marked:
                points.append(
                    f'<circle class="mark" cx="{px}" cy="{py}" r="2.5" fill="{cat.colour}">'
                    f"<title>{esc(cat.label)}: {esc(fmt_number(v))}</title></circle>"
                )
        if path:
            c.add(
                f'<path d="{"".join(path)}" fill="none" stroke="{cat.colour}" '
                'stroke-width="1.6" stroke-linejoin="round"/>'
            )
        c.parts.extend(points)
    if not values:
        c.text((MARGIN_LEFT + WIDTH - MARGIN_RIGHT) / 2, (y0 + y1) / 2, "no values", cls="empty")
    c.add(f'<path d="M{MARGIN_LEFT} {_f(y0)}H{WIDTH - MARGIN_RIGHT}" stroke="{AXIS_COLOUR}"/>')
    return c.render()


# ---------------------------------------------------------------- the view


def _top_series(
    ok: Sequence[Mapping[str, Any]], key: str, pick: Any, limit: int = MAX_SERIES
) -> list[Series]:
    """One series per name under ``record[key]`` (the ``limit`` largest peaks,
    then "other"); a cycle without the name counts 0."""
    peaks: dict[str, float] = {}
    for r in ok:
        for name, value in (r.get(key) or {}).items():
            peaks[name] = max(peaks.get(name, 0.0), float(pick(value)))
    names = sorted(peaks, key=lambda n: (-peaks[n], n))
    shown, rest = names[:limit], names[limit:]
    out = [Series(n, tuple(float(pick((r.get(key) or {}).get(n, 0))) for r in ok)) for n in shown]
    if rest:
        out.append(
            Series(
                f"other ({len(rest)})",
                tuple(float(sum(pick((r.get(key) or {}).get(n, 0)) for n in rest)) for r in ok),
            )
        )
    return out


def _get(record: Mapping[str, Any], *path: str) -> Any:
    value: Any = record
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _row(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A record flattened to what the template shows, every key present."""
    if record is None:
        return None
    return {
        "cycle": record.get("cycle"),
        "started_at": record.get("started_at"),
        "status": record.get("status"),
        "as_of": record.get("as_of"),
        "candidates": record.get("candidates"),
        "phase": record.get("phase"),
        "error": record.get("error"),
        "new_error": record.get("new_error"),
        "real": _get(record, "divergences", "real"),
        "waived": _get(record, "divergences", "waived"),
        "tau": _get(record, "rank", "kendall_tau_b"),
        "rbo": _get(record, "rank", "rbo"),
        "production_tau": _get(record, "production", "kendall_tau_b"),
        "production_rbo": _get(record, "production", "rbo"),
        "total_s": _get(record, "durations", "total"),
    }


def build_history_view(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Everything the template shows, computed from the records."""
    timed = [(t, r) for r in records if (t := _time(r.get("started_at"))) is not None]
    ok = [r for _, r in timed if r.get("status") == "ok"]
    ok_times = [t for t, r in timed if r.get("status") == "ok"]
    failed = [(t, str(r.get("error") or "")) for t, r in timed if r.get("status") == "failed"]
    abandoned = [t for t, r in timed if r.get("status") == "abandoned"]
    marks: dict[str, Any] = {"failed": failed, "abandoned": abandoned}

    def num(r: Mapping[str, Any], *path: str) -> float | None:
        v = _get(r, *path)
        return None if v is None else float(v)

    rank_series = [
        Series("τ legacy", tuple(num(r, "rank", "kendall_tau_b") for r in ok)),
        Series("RBO legacy", tuple(num(r, "rank", "rbo") for r in ok)),
        Series("τ production", tuple(num(r, "production", "kendall_tau_b") for r in ok)),
        Series("RBO production", tuple(num(r, "production", "rbo") for r in ok)),
    ]
    lowest = min((v for x in rank_series for v in x.values if v is not None), default=0.0)
    rank_floor = min(0.0, math.floor(lowest * 2) / 2)  # τ can be negative: down to -1
    charts = [
        time_chart(
            ok_times,
            [
                Series(name, tuple(num(r, "divergences", name) for r in ok), colour)
                for name, colour in STATUS_COLOURS.items()
            ],
            ident="divergent",
            title="Divergent candidates (legacy vs new)",
            y_label="candidates",
            **marks,
        ),
        time_chart(
            ok_times,
            _top_series(ok, "fields", lambda v: v),
            ident="fields",
            title="Divergences per field",
            y_label="divergent candidates",
            **marks,
        ),
        time_chart(
            ok_times,
            _top_series(
                ok, "campaigns", lambda v: v.get("divergent", 0) if isinstance(v, Mapping) else v
            ),
            ident="campaigns",
            title="Divergent candidates per campaign",
            y_label="divergent candidates",
            **marks,
        ),
        time_chart(
            ok_times,
            rank_series,
            ident="rank",
            title="Rank agreement of the new engine's queue",
            y_label="Kendall τ-b / RBO",
            y_range=(rank_floor, 1.0),
            **marks,
        ),
        time_chart(
            ok_times,
            [
                Series("total", tuple(num(r, "durations", "total") for r in ok)),
                Series("read", tuple(num(r, "durations", "read_s") for r in ok)),
                Series("legacy", tuple(num(r, "durations", "legacy_s") for r in ok)),
                Series("new", tuple(num(r, "durations", "new_s") for r in ok)),
                Series("compare", tuple(num(r, "durations", "compare_s") for r in ok)),
            ],
            ident="durations",
            title="Cycle durations",
            y_label="seconds",
            **marks,
        ),
    ]
    last = records[-1] if records else None
    last_ok = ok[-1] if ok else None
    previous_ok = ok[-2] if len(ok) > 1 else None
    real_now = None if last_ok is None else _get(last_ok, "divergences", "real")
    real_before = None if previous_ok is None else _get(previous_ok, "divergences", "real")
    return {
        "cycles": len(records),
        "ok": len(ok),
        "failed": len(failed),
        "abandoned": len(abandoned),
        "new_failures": sum(1 for r in ok if r.get("new_error")),
        "first": records[0].get("started_at") if records else None,
        "last": _row(last),
        "last_ok": _row(last_ok),
        "real_now": real_now,
        "real_change": None
        if real_now is None or real_before is None
        else int(real_now) - int(real_before),
        "charts": charts,
        "recent": [_row(r) for r in reversed(records[-50:])],
        "source": next((r.get("source") for r in reversed(records) if r.get("source")), None),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def render_history(records: Sequence[Mapping[str, Any]]) -> str:
    template = environment().get_template("shadow_history.html")
    return compact(template.render(h=build_history_view(records)))


def write_history_report(records: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Write the report atomically (temporary file, then rename)."""
    write_atomic(path, render_history(records))
