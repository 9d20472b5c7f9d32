"""The HTML comparison report: one self-contained file a release engineer reads
before switching engines.

Everything is inline (CSS, the SVG plots, a little vanilla script for the
candidate table), so the file works offline and can be attached to a CI run.
Codebase names, commands, reasons and error messages come from engines and
databases and are untrusted: the Jinja environment autoescapes everything, and
only the SVG from :mod:`reports.svg` (which escapes its own text) is marked
safe, in :mod:`reports.view`.
"""

from __future__ import annotations

import functools
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from harness.comparison.comparison_model import Comparison
from harness.data.atomic import write_atomic
from reports.view import build_view, delta_text, duration_text, ratio_text, si_text

TEMPLATE_DIR = Path(__file__).with_name("templates")


def fmt_num(value: float | int | None, digits: int = 4) -> str:
    """A number for a table cell: thousands separators for integers, ``digits``
    significant digits otherwise, words for the odd values engines produce."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}".replace("-", "−")
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    magnitude = abs(value)
    if value == int(value) and magnitude < 1e15:
        return f"{int(value):,}".replace("-", "−")
    if 1000 <= magnitude < 1e12:
        return f"{value:,.0f}".replace("-", "−")
    if 1e-3 <= magnitude < 1000:
        return f"{value:.{digits}g}".replace("-", "−")
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exponent)}".replace("-", "−")


def fmt_signed(value: float | int | None, digits: int = 3) -> str:
    """With an explicit sign, for deltas and log-ratios."""
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return fmt_num(value)
    text = fmt_num(value, digits)
    return text if text.startswith("−") or value == 0 else "+" + text


def fmt_pct(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    text = f"{value * 100:.{digits}f}%"
    return text[1:] if text.startswith("-") and float(text[:-1]) == 0 else text.replace("-", "−")


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def sort_key(value: float | int | None) -> str:
    """A ``data-`` attribute value the table script sorts numerically; missing
    values sort last whichever way, infinities at the ends."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and math.isinf(value):
        return "1e308" if value > 0 else "-1e308"
    return repr(float(value))


#: Every filter the templates use, registered in one place.
FILTERS: dict[str, Callable[..., Any]] = {
    "num": fmt_num,
    "signed": fmt_signed,
    "pct": fmt_pct,
    "seconds": fmt_seconds,
    "sortkey": sort_key,
    "ratio": ratio_text,
    "duration": duration_text,
    "si": si_text,
    "delta": lambda value, field: delta_text(field, value),
}


@functools.cache
def environment() -> Environment:
    """One environment per process: templates are compiled once."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


#: The report must stay under 5 MB; past this many bytes the candidate table
#: is halved until it fits (engines' reasons are untrusted and can be long).
MAX_BYTES = 4_500_000
MIN_ROWS = 20

_PROTECTED = re.compile(r"(<(pre|script|textarea)\b.*?</\2>)", re.S | re.I)
_NEWLINE_RUN = re.compile(r"[ \t]*\n\s*")


def compact(text: str) -> str:
    """Collapse indentation and blank lines, which browsers ignore, except
    inside ``pre``/``script``/``textarea``: about a quarter of the bytes."""
    parts = _PROTECTED.split(text)
    out: list[str] = []
    # split() yields: text, whole match, tag name, text, whole match, tag name, ...
    for i in range(0, len(parts), 3):
        out.append(_NEWLINE_RUN.sub("\n", parts[i]))
        if i + 1 < len(parts):
            out.append(parts[i + 1])
    return "".join(out)


def render_string(
    comparison: Comparison, *, top_n: int | None = None, backtest: dict[str, Any] | None = None
) -> str:
    """The report as text; the candidate table shrinks if the page would
    otherwise exceed :data:`MAX_BYTES`. ``backtest``: a backtest document
    (``backtest --json``), shown as the report's backtest section."""
    template = environment().get_template("report.html")
    bt = None
    if backtest is not None:
        from reports.backtest_report import backtest_view

        bt = backtest_view(backtest)
    rows = comparison.table_rows if top_n is None else top_n
    while True:
        view = build_view(comparison, top_n=rows)
        text = compact(template.render(v=view, c=comparison, bt=bt))
        if rows <= MIN_ROWS or len(text.encode("utf-8")) <= MAX_BYTES:
            return text
        rows = max(MIN_ROWS, rows // 2)


def render_html(
    comparison: Comparison,
    path: str | os.PathLike[str],
    *,
    top_n: int | None = None,
    backtest: dict[str, Any] | None = None,
) -> None:
    """Write the report to ``path`` (``-``: standard output). A file is written
    to a temporary name in the same directory and renamed, so a reader never
    sees half a report."""
    text = render_string(comparison, top_n=top_n, backtest=backtest)
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_atomic(path, text)


__all__ = ["FILTERS", "render_html", "render_string"]
