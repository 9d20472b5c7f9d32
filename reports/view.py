"""What the HTML template shows, derived from a :class:`Comparison`.

The template should only lay things out, so every choice about *what* to show
lives here: which numbers decide the verdict and how they are toned, which
candidates make the table (the top ``top_n``, whatever the comparison kept, so
the page stays under 5 MB at 100,000 candidates), which plots and how they are
aggregated. Values stay numbers where the template formats them with the
filters of :mod:`reports.html`; the plots arrive as finished SVG
(:class:`markupsafe.Markup`, safe because :mod:`reports.svg` escapes all text).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from harness.comparison.comparison_model import (
    CAUSES,
    FACTORS,
    CampaignSummary,
    CandidateDiff,
    Comparison,
    FactorContribution,
    FieldStats,
    Histogram,
    RankMetrics,
    RunInfo,
    Tolerance,
    WaiverUse,
)
from reports import svg

DEFAULT_TOP_N = 500
#: caps for the smaller lists; their totals are always shown
LIST_CAP = 100
MOVERS_CAP = 50
CAMPAIGN_BARS_CAP = 30
CAMPAIGN_EXAMPLES = 5
#: untrusted engine text is cut to keep one candidate from bloating the page
REASON_CHARS = 400
REASON_LINES = 12
STRUCTURE_LINES = 12
PROVENANCE_CHARS = 4000

#: grey means noise and nothing else; agreement is soft green
STATUS_COLOURS: Mapping[str, str] = {
    "real": "#dc2626",
    "waived": "#d97706",
    "noise": "#94a3b8",
    "equal": "#9cc9a8",
}
#: status codes of PlotData.offset_pairs
STATUS_CODES: Mapping[int, svg.Category] = {
    0: svg.Category("equal / tolerated", STATUS_COLOURS["equal"]),
    1: svg.Category("noise", STATUS_COLOURS["noise"]),
    2: svg.Category("waived", STATUS_COLOURS["waived"]),
    3: svg.Category("real", STATUS_COLOURS["real"]),
}
FACTOR_LABELS: Mapping[str, str] = {
    "duration": "duration",
    "normalized_codebase_value": "codebase value",
    "success_probability": "probability",
    "candidate_value": "candidate value",
    "residual": "residual",
    "run_counts": "run counts",
    "publish_policy": "publish policy",
    "candidate_row": "candidate row",
    "run_data": "run data",
    "dependencies": "dependencies",
    "codebase_values": "codebase values",
    "queue": "queue",
}
FACTOR_COLOURS: Mapping[str, str] = {
    "duration": "#2563eb",
    "normalized_codebase_value": "#7c3aed",
    "success_probability": "#0d9488",
    "candidate_value": "#db2777",
    "residual": "#111827",
    "run_counts": "#65a30d",
    "publish_policy": "#9333ea",
    "candidate_row": "#be185d",
    "run_data": "#0369a1",
    "dependencies": "#a16207",
    "codebase_values": "#6d28d9",
    "queue": "#155e75",
}
CATEGORY_LABELS: Mapping[str, str] = {
    "numeric": "numbers",
    "order": "order only",
    "tie_order": "tie order",
    "presence": "presence",
    "error": "error",
}
RUN_COUNT_LABELS: Mapping[str, str] = {
    "previous_runs": "previous runs (counted)",
    "successes": "successes",
    "ignored_worker_failures": "ignored worker failures",
    "same_context": "same-context match",
    "deps_satisfied_runs": "dependency failures now satisfied",
}
#: short names for the candidate table's "fields" column
FIELD_LABELS: Mapping[str, str] = {
    "offset": "offset",
    "success_probability": "probability",
    "estimated_duration_us": "duration",
    "normalized_codebase_value": "codebase value",
    "value": "value",
    "total_previous_runs": "previous runs",
    "queue_priority": "priority",
    "queue_bucket": "bucket",
    "queue_position": "position",
}
KIND_LABELS: Mapping[str, str] = {
    "value": "values differ",
    "missing": "missing in B",
    "extra": "extra in B",
    "error_vs_value": "A failed",
    "value_vs_error": "B failed",
    "error_mismatch": "errors differ",
}


# ---------------------------------------------------------------- units


def duration_text(us: float | None) -> str:
    """A duration in microseconds as people read it: ``850 ms``, ``14.2 s``,
    ``4 min 12 s``, ``2 h 05 min``, ``3 d 4 h``."""
    if us is None or not math.isfinite(us):
        return "—" if us is None else ("∞" if us > 0 else "−∞") if math.isinf(us) else "NaN"
    sign = "−" if us < 0 else ""
    s = abs(us) / 1e6
    if s < 1:
        return f"{sign}{s * 1000:.0f} ms" if s >= 0.001 or s == 0 else f"{sign}{abs(us):.0f} µs"
    if s < 60:
        return f"{sign}{s:.3g} s"
    if s < 3600:
        m, rest = divmod(round(s), 60)
        return f"{sign}{m} min" + (f" {rest:02d} s" if rest else "")
    if s < 86400:
        h, rest = divmod(round(s / 60), 60)
        return f"{sign}{h} h" + (f" {rest:02d} min" if rest else "")
    d, rest = divmod(round(s / 3600), 24)
    return f"{sign}{d} d" + (f" {rest} h" if rest else "")


def si_text(x: float | None) -> str:
    """A large number in three significant digits with k/M/G/T: ``12.4 k``."""
    if x is None:
        return "—"
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("∞" if x > 0 else "−∞")
    magnitude = abs(x)
    for factor, suffix in ((1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k")):
        if magnitude >= factor:
            return f"{x / factor:.3g}{suffix}".replace("-", "−")
    if magnitude >= 0.01 or x == 0:
        return f"{x:.3g}".replace("-", "−")
    return f"{x:.2e}".replace("-", "−")


def ratio_text(log_ratio: float | None) -> str:
    """``ln(B/A)`` as a factor: ``×2.31`` (B larger), ``÷1.5`` (B smaller), ``×1``."""
    if log_ratio is None or not math.isfinite(log_ratio):
        return "—"
    if abs(log_ratio) < 1e-12:
        return "×1"
    factor = math.exp(abs(log_ratio))
    text = f"{factor:.3g}" if factor < 1000 else si_text(factor).replace(" ", "")
    return ("×" if log_ratio > 0 else "÷") + text


def field_text(field: str, value: float | None) -> str:
    """A field's value with its unit."""
    if value is None:
        return "—"
    if field == "estimated_duration_us":
        return duration_text(value)
    if field in ("offset", "queue_priority") and math.isfinite(value) and abs(value) >= 1e4:
        return si_text(value)
    if field == "queue_bucket" and math.isfinite(value) and 0 <= value < 8:
        from engines.model import BUCKETS

        return BUCKETS[int(value)]
    if field == "queue_position" and math.isfinite(value):
        return f"#{int(value):,}"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}".replace("-", "−")
    return f"{value:.4g}".replace("-", "−") if math.isfinite(value) else si_text(value)


def delta_text(field: str, value: float | None) -> str:
    if value is None:
        return "—"
    if field == "estimated_duration_us":
        return duration_text(value)
    if field == "queue_position" and math.isfinite(value):
        return f"{int(value):,} places"
    return si_text(value) if abs(value) >= 1e4 else field_text("", value)


# ---------------------------------------------------------------- view types


@dataclass(frozen=True)
class VerdictView:
    label: str
    tone: str  # "pass", "fail", "waived"
    reason: str


@dataclass(frozen=True)
class Headline:
    """One of the numbers that decide the verdict; ``tone`` colours it only
    when it is the reason for a failure (``bad``) or a caveat (``warn``)."""

    label: str
    value: str
    detail: str
    tone: str = "neutral"


@dataclass(frozen=True)
class FactorRow:
    factor: str
    label: str
    colour: str
    a: float | None
    b: float | None
    log_ratio: float
    share: float
    weight: float
    dominant: bool


@dataclass(frozen=True)
class FieldRow:
    field: str
    a: float | None
    b: float | None
    abs_delta: float | None
    rel_delta: float | None
    status: str
    noise: float | None
    waiver: str | None
    a_text: str = ""
    b_text: str = ""
    delta_text: str = ""
    noise_text: str = ""


@dataclass(frozen=True)
class RunCountRow:
    label: str
    a: float | None
    b: float | None
    changed: bool


@dataclass(frozen=True)
class CandidateRow:
    index: int
    label: str
    codebase: str
    campaign: str
    change_set: str | None
    kind: str
    kind_label: str
    status: str
    severity: float
    offset_a: float | None
    offset_b: float | None
    log_ratio: float | None
    rank_a: int | None
    rank_b: int | None
    rank_move: int | None
    dominant: str | None
    dominant_label: str
    dominant_weight: float | None
    attribution_source: str | None
    bar: Markup
    factors: tuple[FactorRow, ...]
    fields: tuple[FieldRow, ...]
    field_names: str
    structure: tuple[str, ...]
    reasons_a: tuple[str, ...]
    reasons_b: tuple[str, ...]
    error_a: str | None
    error_b: str | None
    error_short: str | None
    waivers: tuple[str, ...]
    search: str
    category: str = "numeric"
    category_label: str = ""
    offset_a_text: str = "—"
    offset_b_text: str = "—"
    ratio: str = "—"
    rule_input: str | None = None
    rule_factor: str | None = None
    run_counts: tuple[RunCountRow, ...] = ()
    moved_by: tuple[str, ...] = ()
    moved_by_total: int = 0
    cause: str | None = None


@dataclass(frozen=True)
class FieldStatsRow:
    stats: FieldStats
    tolerance: str
    divergent_share: float
    max_abs_text: str = "—"


@dataclass(frozen=True)
class CauseShare:
    factor: str
    label: str
    colour: str
    candidates: int
    weight: float
    share: float


@dataclass(frozen=True)
class CampaignView:
    summary: CampaignSummary
    anchor: str
    causes: tuple[CauseShare, ...]
    fields: tuple[tuple[str, int], ...]
    examples: tuple[CandidateRow, ...]
    tone: str


@dataclass(frozen=True)
class Plot:
    key: str
    caption: str
    svg: Markup
    wide: bool = False


@dataclass(frozen=True)
class RankView:
    metrics: RankMetrics
    rows: tuple[tuple[str, str, str], ...]
    movers_total: int
    movers_plot: Plot | None


@dataclass(frozen=True)
class KeyedList:
    """A capped list with the number it was cut from."""

    title: str
    anchor: str
    rows: tuple[Any, ...]
    total: int


@dataclass(frozen=True)
class WaiverRow:
    use: WaiverUse
    state: str  # "active", "expired", "unused"


@dataclass(frozen=True)
class RunView:
    run: RunInfo
    settings: tuple[tuple[str, str], ...]
    timings: tuple[tuple[str, float], ...]
    provenance: str | None


@dataclass(frozen=True)
class HeadRow:
    """One place of the two queue heads side by side."""

    position: int
    a: str | None
    a_other: int | None
    a_moved: bool
    b: str | None
    b_other: int | None
    b_moved: bool


@dataclass(frozen=True)
class ReportView:
    title: str
    comparison: Comparison
    verdict: VerdictView
    headlines: tuple[Headline, ...]
    plots: tuple[Plot, ...]
    fields: tuple[FieldStatsRow, ...]
    structure: tuple[tuple[str, int], ...]
    rows: tuple[CandidateRow, ...]
    rows_total: int
    campaigns: tuple[CampaignView, ...]
    campaign_names: tuple[str, ...]
    ranking: RankView | None
    lists: tuple[KeyedList, ...]
    waivers: tuple[WaiverRow, ...]
    expired_waivers: int
    runs: tuple[RunView, ...]
    tolerances: tuple[tuple[str, str], ...]
    ordering_checks: tuple[tuple[str, float | None, float, bool], ...]
    causes: tuple[CauseShare, ...]
    status_colours: Mapping[str, str]
    factor_colours: Mapping[str, str]
    factor_labels: Mapping[str, str]
    kinds: tuple[tuple[str, str, int, int, int], ...] = ()
    heads: tuple[HeadRow, ...] = ()
    distributions: tuple[Plot, ...] = ()


# ---------------------------------------------------------------- building


def build_view(comparison: Comparison, *, top_n: int | None = None) -> ReportView:
    """Everything the template needs, with every list capped; ``top_n``: rows
    of the candidate table (default: the comparison's ``table_rows``)."""
    c = comparison
    top_n = c.table_rows if top_n is None else top_n
    rows = tuple(_candidate_row(i, d) for i, d in enumerate(c.candidates[:top_n]))
    campaigns = tuple(_campaign_view(s, rows) for s in c.campaigns)
    expired = sum(1 for w in c.waivers if w.expired)
    return ReportView(
        title=f"{c.a.engine} vs {c.b.engine}",
        comparison=c,
        verdict=verdict_view(c),
        headlines=headlines(c),
        plots=plots(c),
        fields=tuple(_field_row(s) for s in c.fields),
        structure=tuple(sorted(c.structure_divergences.items(), key=lambda kv: -kv[1])),
        rows=rows,
        rows_total=c.candidates_total,
        campaigns=campaigns,
        campaign_names=tuple(sorted({r.campaign for r in rows})),
        ranking=_rank_view(c.ranking, c) if c.ranking is not None else None,
        lists=(
            KeyedList(
                "Missing in B", "missing-list", tuple(c.missing[:LIST_CAP]), c.counts.missing
            ),
            KeyedList("Extra in B", "extra-list", tuple(c.extra[:LIST_CAP]), c.counts.extra),
            KeyedList(
                "Error mismatches",
                "errors",
                tuple(c.error_mismatches[:LIST_CAP]),
                c.counts.error_mismatches,
            ),
        ),
        waivers=tuple(
            WaiverRow(w, "expired" if w.expired else "active" if w.matched else "unused")
            for w in c.waivers
        ),
        expired_waivers=expired,
        runs=(_run_view(c.a), _run_view(c.b)),
        tolerances=tuple((t.field, tolerance_text(t, t.field)) for t in c.tolerances),
        ordering_checks=tuple((k, v, t, ok) for k, (v, t, ok) in c.ordering_checks.items()),
        causes=_causes(c.causes, {}),
        status_colours=STATUS_COLOURS,
        factor_colours=FACTOR_COLOURS,
        factor_labels={f: FACTOR_LABELS[f] for f in (*FACTORS, "run_counts")},
        kinds=tuple(
            (k.kind, CATEGORY_LABELS.get(k.kind, k.kind), k.real, k.noise, k.waived)
            for k in c.kinds
        ),
        heads=_heads(c),
        distributions=_distribution_plots(c),
    )


def _heads(c: Comparison) -> tuple[HeadRow, ...]:
    out = []
    for k in range(max(len(c.head_a), len(c.head_b))):
        ra = c.head_a[k] if k < len(c.head_a) else None
        rb = c.head_b[k] if k < len(c.head_b) else None
        out.append(
            HeadRow(
                k + 1,
                None if ra is None else ra.label,
                None if ra is None else ra.other,
                bool(ra and ra.moved),
                None if rb is None else rb.label,
                None if rb is None else rb.other,
                bool(rb and rb.moved),
            )
        )
    return tuple(out)


#: round durations (seconds) for a log time axis
TIME_TICKS = (
    1.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    4 * 3600.0,
    86400.0,
    7 * 86400.0,
)


def _seconds_text(seconds: float) -> str:
    return duration_text(seconds * 1e6)


def _distribution_plots(c: Comparison) -> tuple[Plot, ...]:
    out = []
    for i, d in enumerate(c.distributions):
        unit = f" ({d.unit})" if d.unit else ""
        log = d.scale == "log"
        out.append(
            Plot(
                f"dist-{i}",
                f"{d.quantity.capitalize()} under A ({c.a.engine}, left bar of each bin) and "
                f"B ({c.b.engine}, right bar), over the candidates both decided"
                + ("; log scale: each step of the axis is a factor" if log else "")
                + ".",
                Markup(
                    svg.paired_histogram(
                        d.edges,
                        d.counts_a,
                        d.counts_b,
                        ident=f"plot-dist-{i}",
                        title=d.quantity.split(" (")[0].capitalize(),
                        x_label=(d.quantity if d.unit == "s" else f"{d.quantity}{unit}")
                        + (", log scale" if log else ""),
                        log_x=log,
                        desc=f"Distribution of {d.quantity} under A and under B.",
                        labels=("A", "B"),
                        x_fmt=_seconds_text if d.unit == "s" else svg.fmt_number,
                        x_ticks=TIME_TICKS if d.unit == "s" and log else None,
                    )
                ),
            )
        )
    return tuple(out)


def verdict_view(c: Comparison) -> VerdictView:
    if not c.passed:
        return VerdictView("FAIL", "fail", c.verdict_reason)
    if c.waived > 0:
        return VerdictView("PASS WITH WAIVERS", "waived", c.verdict_reason)
    return VerdictView("PASS", "pass", c.verdict_reason)


def headlines(c: Comparison) -> tuple[Headline, ...]:
    """The numbers that decide the verdict, in the order a reader checks them."""
    n = c.counts
    union = n.a + n.extra
    over = c.real > c.budget
    by_kind = " · ".join(f"{CATEGORY_LABELS[k.kind]} {k.real:,}" for k in c.kinds if k.real)
    out = [
        Headline(
            "Candidates compared",
            f"{n.aligned:,}",
            f"of {union:,} keys · A {n.a:,}, B {n.b:,}",
        ),
        Headline(
            "Real divergences (candidates)",
            f"{c.real:,}",
            f"budget {c.budget:,}"
            + (" · over budget" if over else " · within budget")
            + (f" · {by_kind}" if by_kind else ""),
            "bad" if over else "good",
        ),
        Headline(
            "Noise (candidates)",
            f"{c.noise:,}",
            "explained by the reference's own row order or run-to-run noise",
        ),
        Headline(
            "Waived (candidates)",
            f"{c.waived:,}",
            f"{sum(1 for w in c.waivers if not w.expired)} active waiver(s)"
            + (
                f" · {sum(1 for w in c.waivers if w.expired)} expired"
                if any(w.expired for w in c.waivers)
                else ""
            ),
            "warn" if any(w.expired and w.matched for w in c.waivers) else "neutral",
        ),
        Headline(
            "Missing / extra (candidates)",
            f"{n.missing:,} / {n.extra:,}",
            "keys only in A / only in B",
            "bad" if (n.missing or n.extra) and over else "neutral",
        ),
        Headline(
            "Errors mismatched (candidates)",
            f"{n.error_mismatches:,}",
            f"{n.both_error_same:,} failed the same way on both sides",
            "bad" if n.error_mismatches and over else "neutral",
        ),
    ]
    r = c.ranking
    checks = c.ordering_checks
    for label, attr, check in (
        ("Kendall τ-b", "kendall_tau_b", "kendall_tau_b"),
        ("RBO", "rbo", "rbo"),
    ):
        if r is None:
            out.append(Headline(label, "—", "no queue on one side"))
            continue
        value = getattr(r, attr)
        detail = f"over {r.common:,} queued on both sides"
        if attr == "rbo":
            detail = f"p = {r.rbo_p:g} · " + detail
        tone = "neutral"
        if check in checks:
            _, threshold, ok = checks[check]
            detail += f" · threshold {threshold:g}"
            tone = "good" if ok else "bad"
        out.append(Headline(label, "—" if value is None else f"{value:.4f}", detail, tone))
    return tuple(out)


def _clip(
    lines: Sequence[str], chars: int = REASON_CHARS, count: int = REASON_LINES
) -> tuple[str, ...]:
    out = [line if len(line) <= chars else line[: chars - 1] + "…" for line in lines[:count]]
    if len(lines) > count:
        out.append(f"… {len(lines) - count} more")
    return tuple(out)


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _candidate_row(index: int, d: CandidateDiff) -> CandidateRow:
    at = d.attribution
    factors: tuple[FactorRow, ...] = ()
    bar = Markup("")
    dominant = None
    if at is not None:
        dominant = at.dominant
        factors = tuple(_factor_row(fc, at.dominant) for fc in at.contributions)
        bar = Markup(
            svg.contribution_bar(
                [(fc.factor, fc.log_ratio) for fc in at.contributions],
                FACTOR_COLOURS,
                width=84,
                height=12,
            )
        )
    move = None
    if d.rank_a is not None and d.rank_b is not None:
        move = d.rank_b - d.rank_a
    log_ratio = at.log_ratio if at is not None else None
    if log_ratio is None and d.offset_a and d.offset_b and d.offset_a > 0 and d.offset_b > 0:
        log_ratio = _finite(math.log(d.offset_b / d.offset_a))
    reasons_a, reasons_b = _clip(d.reasons_a), _clip(d.reasons_b)
    fields = tuple(
        FieldRow(
            f.field,
            f.a,
            f.b,
            f.abs_delta,
            f.rel_delta,
            f.status,
            f.noise,
            f.waiver,
            field_text(f.field, f.a),
            field_text(f.field, f.b),
            delta_text(f.field, f.abs_delta),
            delta_text(f.field, f.noise) if f.noise is not None else "",
        )
        for f in d.fields
    )
    cause = at.cause if at is not None else None
    if d.rule is not None:
        dominant = d.rule.factor
    elif cause == "run_counts":
        dominant = cause
    names = [f.field for f in d.fields]
    error = d.error_b or d.error_a
    if d.structure:
        names.append("structure")
    search = " ".join(
        [
            d.label,
            d.kind,
            d.status,
            d.category,
            *names,
            dominant or "",
            cause or "",
            d.error_a or "",
            d.error_b or "",
        ]
    ).lower()
    return CandidateRow(
        index=index,
        label=d.label,
        codebase=d.codebase,
        campaign=d.campaign,
        change_set=d.change_set,
        kind=d.kind,
        kind_label=KIND_LABELS.get(d.kind, d.kind),
        status=d.status,
        severity=d.severity,
        offset_a=d.offset_a,
        offset_b=d.offset_b,
        log_ratio=log_ratio,
        rank_a=d.rank_a,
        rank_b=d.rank_b,
        rank_move=move,
        dominant=dominant,
        dominant_label=FACTOR_LABELS.get(dominant, dominant) if dominant else "",
        dominant_weight=next((f.weight for f in factors if f.dominant), None),
        attribution_source=at.source if at is not None else None,
        bar=bar,
        factors=factors,
        fields=fields,
        field_names=", ".join(FIELD_LABELS.get(name, name) for name in names),
        structure=_clip(d.structure, count=STRUCTURE_LINES),
        reasons_a=reasons_a,
        reasons_b=reasons_b,
        error_a=d.error_a,
        error_b=d.error_b,
        error_short=_short(error, 90) if error else None,
        waivers=d.waivers,
        search=search,
        category=d.category,
        category_label=CATEGORY_LABELS.get(d.category, d.category),
        offset_a_text=si_text(d.offset_a),
        offset_b_text=si_text(d.offset_b),
        ratio=ratio_text(log_ratio),
        rule_input=d.rule.input if d.rule is not None else None,
        rule_factor=d.rule.factor if d.rule is not None else None,
        run_counts=tuple(
            RunCountRow(RUN_COUNT_LABELS.get(rc.name, rc.name), rc.a, rc.b, rc.a != rc.b)
            for rc in d.run_counts
        ),
        moved_by=d.moved_by,
        moved_by_total=d.moved_by_total,
        cause=cause or (d.rule.factor if d.rule is not None else None),
    )


def _factor_row(fc: FactorContribution, dominant: str | None) -> FactorRow:
    return FactorRow(
        factor=fc.factor,
        label=FACTOR_LABELS.get(fc.factor, fc.factor),
        colour=FACTOR_COLOURS.get(fc.factor, svg.DEFAULT_BAR),
        a=fc.a,
        b=fc.b,
        log_ratio=fc.log_ratio,
        share=fc.share,
        weight=fc.weight,
        dominant=fc.factor == dominant,
    )


def tolerance_text(t: Tolerance, field: str = "") -> str:
    """``±0.01``, ``1%``, ``±1 µs or 0.0001%``, ``exact``."""
    if t.absolute == 0 and t.relative == 0:
        return "exact"
    parts = []
    if t.absolute:
        unit = {"estimated_duration_us": " µs", "queue_position": " places"}.get(field, "")
        parts.append(f"±{t.absolute:g}{unit}")
    if t.relative:
        parts.append(f"{t.relative * 100:g}%")
    return " or ".join(parts)


def _field_row(s: FieldStats) -> FieldStatsRow:
    share = s.divergent / s.compared if s.compared else 0.0
    return FieldStatsRow(
        s, tolerance_text(s.tolerance, s.field), share, delta_text(s.field, s.max_abs_delta)
    )


def _causes(counts: Mapping[str, int], weights: Mapping[str, float]) -> tuple[CauseShare, ...]:
    total = sum(weights.values()) or float(sum(counts.values())) or 1.0
    out = []
    for factor in CAUSES:
        n = counts.get(factor, 0)
        w = weights.get(factor, float(n))
        if n == 0 and w == 0:
            continue
        out.append(
            CauseShare(
                factor,
                FACTOR_LABELS.get(factor, factor),
                FACTOR_COLOURS.get(factor, svg.DEFAULT_BAR),
                n,
                w,
                w / total,
            )
        )
    return tuple(sorted(out, key=lambda cs: -cs.weight))


def anchor_for(name: str, prefix: str = "campaign") -> str:
    """A fragment id that is valid whatever the (untrusted) name contains."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:60] or "x"
    digest = sum((i + 1) * ord(ch) for i, ch in enumerate(name)) % 100_000
    return f"{prefix}-{slug}-{digest}"


def _campaign_view(s: CampaignSummary, rows: Sequence[CandidateRow]) -> CampaignView:
    # value divergences with a factor breakdown say more than a list of errors
    # (which the table already puts first), so they lead here
    mine = [r for r in rows if r.campaign == s.campaign]
    mine.sort(key=lambda r: (r.dominant is None, -abs(r.log_ratio or 0.0), r.index))
    examples = tuple(mine[:CAMPAIGN_EXAMPLES])
    tone = "bad" if s.real else "warn" if s.waived else "good"
    return CampaignView(
        summary=s,
        anchor=anchor_for(s.campaign),
        causes=_causes(s.causes, s.cause_weight),
        fields=tuple(sorted(s.field_divergences.items(), key=lambda kv: -kv[1])),
        examples=examples,
        tone=tone,
    )


def _rank_view(r: RankMetrics, c: Comparison) -> RankView:
    def num(v: float | None, digits: int = 4) -> str:
        return "—" if v is None else f"{v:.{digits}f}"

    def pval(v: float | None) -> str:
        if v is None:
            return ""
        return "p-value < 1e-300" if v == 0 else f"p-value {v:.2g}"

    rows = [
        ("Kendall τ-b", num(r.kendall_tau_b), pval(r.kendall_pvalue)),
        ("Spearman ρ", num(r.spearman), pval(r.spearman_pvalue)),
        ("Rank-biased overlap", num(r.rbo), f"persistence p = {r.rbo_p:g}"),
    ]
    seen_whole = False
    for t in r.top_k:
        whole = t.effective_k < t.k
        if whole and seen_whole:
            continue  # a larger k than the queue says the same again
        seen_whole = seen_whole or whole
        common = f"{t.common:,.0f}" if float(t.common).is_integer() else f"{t.common:,.1f}"
        rows.append(
            (
                f"Whole queue ({t.effective_k:,}) overlap" if whole else f"Top-{t.k:,} overlap",
                f"{t.overlap * 100:.1f}%",
                f"{common} of {t.effective_k:,} in both (ties counted as fractions)",
            )
        )
    rows.append(
        (
            "Moved",
            f"{r.moved:,}",
            f"of {r.common:,} · max |Δ| {r.max_abs_displacement:,} · mean |Δ| {r.mean_abs_displacement:.1f}",
        )
    )
    rows.append(("Queued on one side only", f"{r.only_a:,} / {r.only_b:,}", "only A / only B"))
    return RankView(r, tuple(rows), len(r.movers), movers_plot(r, c))


def movers_plot(r: RankMetrics, c: Comparison) -> Plot | None:
    """Where the largest movers sit in each queue (beside the rank metrics)."""
    if not r.movers:
        return None
    total = max(c.a.queue_rows, c.b.queue_rows, 2)
    return Plot(
        "movers",
        f"The {len(r.movers):,} largest movers: position in A's queue against "
        "position in B's. Above the dashed line B runs them later.",
        Markup(
            svg.rank_scatter(
                [(m.rank_a, m.rank_b, 0) for m in r.movers],
                ident="plot-movers",
                title="Largest queue movers",
                total=total,
                desc="Scatter of queue positions under A and B for the largest movers.",
                categories={0: svg.Category("moved", svg.DEFAULT_BAR)},
                labels=[f"{m.codebase}/{m.campaign}" for m in r.movers],
            )
        ),
    )


def _run_view(run: RunInfo) -> RunView:
    provenance = None
    if run.provenance is not None:
        provenance = json.dumps(run.provenance, indent=2, sort_keys=True, default=str)
        if len(provenance) > PROVENANCE_CHARS:
            provenance = provenance[:PROVENANCE_CHARS] + "\n…"
    settings = tuple(
        (str(k), _short(json.dumps(v, default=str) if not isinstance(v, str) else v))
        for k, v in sorted(run.settings.items(), key=lambda kv: str(kv[0]))
    )
    return RunView(
        run=run,
        settings=settings,
        timings=tuple((str(k), float(v)) for k, v in run.timings.items()),
        provenance=provenance,
    )


def _short(text: str, chars: int = 300) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


# ---------------------------------------------------------------- plots


def _times_log2(x: float) -> str:
    """A log₂ ratio tick as a factor: ``×4``, ``÷2``, ``×1``."""
    return ratio_text(x * math.log(2))


#: tick formats of the histograms whose axis is a log ratio
_X_FORMATS = {"duration_ratio": _times_log2, "offset_log_ratio": _times_log2}


def _hist(
    hists: Mapping[str, Histogram],
    name: str,
    ident: str,
    title: str,
    desc: str,
    colour: str,
    x_label: str | None = None,
) -> Markup | None:
    h = hists.get(name)
    if h is None:
        return None
    edges = h.edges
    if name == "offset_log_ratio":
        # ln → log₂, so that the ticks fall on ×2, ×4, ÷2
        edges = tuple(e / math.log(2) for e in edges)
    return Markup(
        svg.histogram(
            edges,
            h.counts,
            ident=ident,
            title=title,
            x_label=x_label or h.quantity,
            desc=desc,
            colour=colour,
            x_fmt=_X_FORMATS.get(name, svg.fmt_number),
        )
    )


def plots(c: Comparison) -> tuple[Plot, ...]:
    """The figures, in reading order; a figure with no data is left out."""
    out: list[Plot] = []
    pairs = c.plots.offset_pairs
    total, divergent = c.plots.offset_total, c.plots.offset_divergent
    if len(pairs) >= total:
        which = f"all {total:,} candidates with both offsets are drawn"
    elif divergent <= c.top_n:
        which = (
            f"all {divergent:,} divergent candidates are drawn, and an even sample of "
            f"{len(pairs) - divergent:,} of the {total - divergent:,} that agree"
        )
    else:
        which = (
            f"the {c.top_n:,} most severe of the {divergent:,} divergent candidates are drawn, "
            f"and an even sample of {len(pairs) - c.top_n:,} of the other "
            f"{total - c.top_n:,} (so the cloud's shape is the whole population's)"
        )
    out.append(
        Plot(
            "offsets",
            "Each dot is a candidate: its offset under A (x) and B (y), log scales. On the "
            "dashed line the engines agree; above it B runs the candidate later. Colour is "
            f"the candidate's status; {which}. Hover a dot for its name.",
            Markup(
                svg.loglog_scatter(
                    pairs,
                    ident="plot-offsets",
                    title="Offset, A vs B",
                    x_label=f"offset under A ({c.a.engine})",
                    y_label=f"offset under B ({c.b.engine})",
                    categories=STATUS_CODES,
                    desc="Log-log scatter of queue offsets, A against B, with the line y = x.",
                    labels=c.plots.offset_labels,
                )
            ),
            wide=True,
        )
    )
    hists = c.plots.histograms
    for name, ident, title, desc, colour in (
        (
            "success_probability_delta",
            "plot-prob",
            "Success probability, B − A",
            "Histogram of the success probability difference per candidate; the dashed line is zero.",
            FACTOR_COLOURS["success_probability"],
        ),
        (
            "duration_ratio",
            "plot-duration",
            "Estimated duration, B ÷ A",
            "Histogram of the ratio of the estimated durations per candidate, on a log scale.",
            FACTOR_COLOURS["duration"],
        ),
        (
            "offset_log_ratio",
            "plot-logratio",
            "Offset, B ÷ A",
            "Histogram of the offset ratio per candidate, on a log scale.",
            svg.DEFAULT_BAR,
        ),
        (
            "rank_displacement",
            "plot-displacement",
            "Queue displacement, B − A",
            "Histogram of each commonly queued candidate's rank change; positive runs later under B.",
            svg.DEFAULT_BAR,
        ),
    ):
        figure = _hist(hists, name, ident, title, desc, colour)
        if figure is not None:
            captions = {
                "success_probability_delta": "How far B's success probabilities are from A's "
                "(absolute difference, B − A).",
                "duration_ratio": "How many times longer (×) or shorter (÷) B estimates each "
                "candidate's duration; log scale, ×1 is no change.",
                "offset_log_ratio": "How many times larger (×: later in the queue) or smaller "
                "(÷: earlier) B's offset is; log scale, ×1 is no change.",
                "rank_displacement": "How many places candidates moved in the queue (moves "
                "inside a tie group count as 0); positive: later under B.",
            }
            out.append(Plot(name, captions[name], figure))
    campaigns = sorted(c.campaigns, key=lambda s: (-(s.real + s.waived + s.noise), s.campaign))
    rows = _cap_rows(
        [
            (s.campaign, [float(s.real), float(s.waived), float(s.noise)])
            for s in campaigns
            if s.divergent
        ]
    )
    if rows:
        out.append(
            Plot(
                "campaigns",
                "Divergent candidates per campaign, by status.",
                Markup(
                    svg.stacked_bars(
                        rows,
                        [
                            svg.Category("real", STATUS_COLOURS["real"]),
                            svg.Category("waived", STATUS_COLOURS["waived"]),
                            svg.Category("noise", STATUS_COLOURS["noise"]),
                        ],
                        ident="plot-campaigns",
                        title="Divergent candidates per campaign",
                        x_label="candidates",
                        desc="Stacked bars of real, waived and noise divergences per campaign.",
                    )
                ),
            )
        )
    used = [f for f in CAUSES if any(s.causes.get(f) for s in c.campaigns)]
    cause_rows = _cap_rows(
        [
            (s.campaign, [float(s.causes.get(f, 0)) for f in used])
            for s in sorted(c.campaigns, key=lambda s: -sum(s.causes.values()))
            if sum(s.causes.values())
        ]
    )
    if cause_rows:
        out.append(
            Plot(
                "causes",
                "Real divergent candidates per campaign, by cause: the factor that moved the "
                "offset most, run counts when the runs that counted changed, or the input "
                "behind an error pair.",
                Markup(
                    svg.stacked_bars(
                        cause_rows,
                        [svg.Category(FACTOR_LABELS[f], FACTOR_COLOURS[f]) for f in used],
                        ident="plot-causes",
                        title="What moved the offsets",
                        x_label="candidates, by cause",
                        desc="Stacked bars per campaign of the dominant factor of each real offset divergence.",
                    )
                ),
            )
        )
    return tuple(out)


def _cap_rows(rows: list[tuple[str, list[float]]]) -> list[tuple[str, Sequence[float]]]:
    if len(rows) <= CAMPAIGN_BARS_CAP:
        return list(rows)
    head, tail = rows[: CAMPAIGN_BARS_CAP - 1], rows[CAMPAIGN_BARS_CAP - 1 :]
    summed = [sum(values[i] for _, values in tail) for i in range(len(tail[0][1]))]
    return [*head, (f"{len(tail)} other campaigns", summed)]


__all__ = [
    "DEFAULT_TOP_N",
    "CandidateRow",
    "ReportView",
    "build_view",
]
