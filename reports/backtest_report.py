"""The backtest's outputs: a versioned JSON document and a self-contained HTML page.

The HTML is rendered from the JSON document (one source of truth), with
Jinja2 (autoescaped: codebase and campaign names come from databases) and
inline SVG from :mod:`reports.backtest_svg`. ``templates/_backtest.html`` is
the section itself, so that another report can include it with a ``bt``
variable; ``templates/backtest.html`` is the standalone page around it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from markupsafe import Markup

from harness.comparison.backtest_run import BacktestResult
from harness.comparison.forecast_scores import CALLED_METRICS, METRICS
from harness.data.atomic import write_atomic
from reports import backtest_svg

FORMAT = "janitor-shadow-backtest"
VERSION = 1
METRIC_LABELS = {
    "brier": "Brier score",
    "log_loss": "log loss",
    "reliability": "reliability (calibration)",
    "resolution": "resolution",
    "uncertainty": "uncertainty",
    "duration_mdae_s": "duration: median |error| (s)",
    "duration_malr": "duration: median |ln ratio|",
}
#: Higher is better for these; lower for every other score.
HIGHER_IS_BETTER = frozenset({"resolution"})


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _scores(result: BacktestResult, grouping: str, index: int) -> dict[str, Any]:
    b = result.bootstrap
    out: dict[str, Any] = {}
    for engine in result.engines:
        out[engine] = {
            m: {
                "value": _num(b.point[grouping][engine][m][index]),
                "low": _num(b.intervals[grouping][engine][m][0][index]),
                "high": _num(b.intervals[grouping][engine][m][1][index]),
            }
            for m in METRICS
        }
    return out


def _differences(result: BacktestResult, grouping: str, index: int) -> list[dict[str, Any]]:
    out = []
    for (a, b), per_metric in result.bootstrap.differences[grouping].items():
        for m in CALLED_METRICS:
            diff, low, high = per_metric[m]
            d, lo, hi = _num(diff[index]), _num(low[index]), _num(high[index])
            called = lo is not None and hi is not None and (lo > 0 or hi < 0)
            better = None
            if called and d is not None:
                better = a if d < 0 else b
            out.append(
                {
                    "a": a,
                    "b": b,
                    "metric": m,
                    "difference": d,
                    "low": lo,
                    "high": hi,
                    "called": called,
                    "better": better,
                }
            )
    return out


def _group_counts(result: BacktestResult, grouping: str, size: int) -> tuple[list[int], list[int]]:
    rows = result.rows
    labels = rows.groups[grouping][0] if grouping != "overall" else np.zeros(len(rows), np.int64)
    scored = np.bincount(labels, minlength=size)
    successes = np.bincount(labels, rows.outcome, minlength=size)
    return scored.tolist(), [int(s) for s in successes.tolist()]


def backtest_document(result: BacktestResult) -> dict[str, Any]:
    """The JSON document (format ``janitor-shadow-backtest``, version 1)."""
    rows = result.rows
    scored, successes = _group_counts(result, "overall", 1)
    camp_scored, camp_success = _group_counts(result, "campaign", len(result.campaigns))
    by_campaign = [
        {
            "campaign": name,
            "scored": camp_scored[i],
            "successes": camp_success[i],
            "engines": _scores(result, "campaign", i),
            "differences": _differences(result, "campaign", i),
        }
        for i, name in enumerate(result.campaigns)
        if camp_scored[i]
    ]
    by_cut = []
    for i, cut in enumerate(result.cuts):
        by_cut.append(
            {
                "cut": cut.cut.isoformat(),
                "candidates_ran": cut.candidates_ran,
                "scored": cut.scored,
                "successes": cut.successes,
                "engines": _scores(result, "cut", i) if cut.scored else {},
                "differences": _differences(result, "cut", i) if cut.scored else [],
                "decisions": {
                    e: {
                        "errors": d.errors,
                        "seconds": d.seconds,
                        "cpu_seconds": d.cpu_seconds,
                        "queued": len(d.queue),
                    }
                    for e, d in cut.decisions.items()
                },
                "replay": {e: r.to_json() for e, r in cut.replays.items()},
                "sampled_in_replay": cut.sampled_in_replay,
                "notes": list(cut.notes),
            }
        )
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": result.source,
        "source_as_of": result.source_as_of.isoformat(),
        "settings": result.settings.to_json(),
        "engines": list(result.engines),
        "overall": {
            "scored": scored[0],
            "candidates": int(rows.cluster.max()) + 1 if len(rows) else 0,
            "successes": successes[0],
            "engines": _scores(result, "overall", 0),
            "within_bin": {
                e: {"variance": _num(v), "covariance": _num(c)}
                for e, (v, c) in result.within_bin.items()
            },
            "differences": _differences(result, "overall", 0),
        },
        "reliability": {
            e: [
                {
                    "lower": b.lower,
                    "upper": b.upper,
                    "count": b.count,
                    "mean_forecast": b.mean_forecast,
                    "observed_rate": b.observed_rate,
                }
                for b in bins
            ]
            for e, bins in result.reliability.items()
        },
        "by_cut": by_cut,
        "by_campaign": by_campaign,
        "assumptions": list(result.assumptions),
        "notes": list(result.notes),
        "timings": dict(result.timings),
    }


def read_backtest_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A backtest document written by ``backtest --json``, checked against its schema."""
    import jsonschema

    from harness.errors import InputError

    try:
        document = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    except orjson.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc}", file=str(path)) from exc
    schema = orjson.loads(Path(__file__).with_name("backtest.schema.json").read_bytes())
    try:
        jsonschema.validate(document, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "document"
        raise InputError(
            f"not a backtest document ({FORMAT} version {VERSION}): {exc.message}",
            file=str(path),
            field=where,
        ) from None
    result: dict[str, Any] = document
    return result


def write_backtest_json(document: dict[str, Any], path: str | os.PathLike[str]) -> None:
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    if str(path) == "-":
        import sys

        sys.stdout.buffer.write(data + b"\n")
        return
    write_atomic(path, data + b"\n")


# ---------------------------------------------------------------- HTML


def fmt(value: float | int | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}".replace("-", "−")


def fmt_ci(score: dict[str, float | None]) -> str:
    if score.get("low") is None or score.get("high") is None:
        return ""
    return f"[{fmt(score['low'])}, {fmt(score['high'])}]"


def headline(document: dict[str, Any]) -> list[str]:
    """One sentence per engine pair: who forecasts better, or that no difference is called."""
    lines = []
    pairs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in document["overall"]["differences"]:
        pairs.setdefault((d["a"], d["b"]), []).append(d)
    for (a, b), diffs in pairs.items():
        called = [d for d in diffs if d["called"]]
        if not called:
            lines.append(f"{a} vs {b}: no difference called (every interval includes 0).")
            continue
        parts = [
            f"{d['better']} better on {METRIC_LABELS[d['metric']]} "
            f"(Δ {fmt(d['difference'])}, CI [{fmt(d['low'])}, {fmt(d['high'])}])"
            for d in called
        ]
        lines.append(f"{a} vs {b}: " + "; ".join(parts) + ".")
    return lines


def backtest_view(document: dict[str, Any]) -> dict[str, Any]:
    """What ``_backtest.html`` reads: the document, its plots and sentences, and the
    number formatters (as functions, so that any environment can render the section)."""
    engines = document["engines"]
    cuts = document["by_cut"]
    return {
        "doc": document,
        "fmt": fmt,
        "ci": fmt_ci,
        "engines": engines,
        "labels": METRIC_LABELS,
        "metrics": list(METRICS),
        "called_metrics": list(CALLED_METRICS),
        "headline": headline(document),
        "reliability_svg": Markup(backtest_svg.reliability_diagram(document["reliability"])),
        "series_svg": Markup(
            backtest_svg.series_plot(
                [c["cut"] for c in cuts],
                {
                    e: [(c["engines"][e]["brier"]["value"] if c["engines"] else None) for c in cuts]
                    for e in engines
                },
                "Brier score per cut point",
            )
        ),
        "replay_svgs": [
            (
                c["cut"],
                Markup(
                    backtest_svg.replay_curves(
                        {e: r["curve"] for e, r in c["replay"].items()},
                        f"value delivered after {c['cut']}",
                    )
                ),
            )
            for c in cuts
        ],
    }


def render_backtest_html(document: dict[str, Any]) -> str:
    from reports.html import environment  # the comparison report's: same templates, escaping

    template = environment().get_template("backtest.html")
    return template.render(bt=backtest_view(document))


def write_backtest_html(document: dict[str, Any], path: str | os.PathLike[str]) -> None:
    write_atomic(path, render_backtest_html(document))
