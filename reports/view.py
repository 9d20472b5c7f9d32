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

from harness.comparison_model import (
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

STATUS_COLOURS: Mapping[str, str] = {
    "real": "#dc2626",
    "waived": "#d97706",
    "noise": "#6b7fa8",
    "equal": "#aab4c3",
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
}
FACTOR_COLOURS: Mapping[str, str] = {
    "duration": "#2563eb",
    "normalized_codebase_value": "#7c3aed",
    "success_probability": "#0d9488",
    "candidate_value": "#db2777",
    "residual": "#4b5563",
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


@dataclass(frozen=True)
class FieldStatsRow:
    stats: FieldStats
    tolerance: str
    divergent_share: float


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


# ---------------------------------------------------------------- building


def build_view(comparison: Comparison, *, top_n: int = DEFAULT_TOP_N) -> ReportView:
    """Everything the template needs, with every list capped."""
    c = comparison
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
            KeyedList("Missing in B", "missing", tuple(c.missing[:LIST_CAP]), c.counts.missing),
            KeyedList("Extra in B", "extra", tuple(c.extra[:LIST_CAP]), c.counts.extra),
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
        tolerances=tuple((t.field, tolerance_text(t)) for t in c.tolerances),
        ordering_checks=tuple((k, v, t, ok) for k, (v, t, ok) in c.ordering_checks.items()),
        causes=_causes(c.causes, {}),
        status_colours=STATUS_COLOURS,
        factor_colours=FACTOR_COLOURS,
        factor_labels=FACTOR_LABELS,
    )


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
    out = [
        Headline(
            "Candidates compared",
            f"{n.aligned:,}",
            f"of {union:,} keys · A {n.a:,}, B {n.b:,}",
        ),
        Headline(
            "Real divergences",
            f"{c.real:,}",
            f"budget {c.budget:,}" + (" · over budget" if over else " · within budget"),
            "bad" if over else "good",
        ),
        Headline("Noise", f"{c.noise:,}", "within the engine's own variation"),
        Headline(
            "Waived",
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
            "Missing / extra",
            f"{n.missing:,} / {n.extra:,}",
            "keys only in A / only in B",
            "bad" if (n.missing or n.extra) and over else "neutral",
        ),
        Headline(
            "Errors mismatched",
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
        FieldRow(f.field, f.a, f.b, f.abs_delta, f.rel_delta, f.status, f.noise, f.waiver)
        for f in d.fields
    )
    names = [f.field for f in d.fields]
    error = d.error_b or d.error_a
    if d.structure:
        names.append("structure")
    search = " ".join(
        [d.label, d.kind, d.status, *names, dominant or "", d.error_a or "", d.error_b or ""]
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


def tolerance_text(t: Tolerance) -> str:
    """``±0.01``, ``1%``, ``±1 or 0.0001%``, ``exact``."""
    if t.absolute == 0 and t.relative == 0:
        return "exact"
    parts = []
    if t.absolute:
        parts.append(f"±{t.absolute:g}")
    if t.relative:
        parts.append(f"{t.relative * 100:g}%")
    return " or ".join(parts)


def _field_row(s: FieldStats) -> FieldStatsRow:
    share = s.divergent / s.compared if s.compared else 0.0
    return FieldStatsRow(s, tolerance_text(s.tolerance), share)


def _causes(counts: Mapping[str, int], weights: Mapping[str, float]) -> tuple[CauseShare, ...]:
    total = sum(weights.values()) or float(sum(counts.values())) or 1.0
    out = []
    for factor in FACTORS:
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
    for t in r.top_k:
        rows.append(
            (
                f"Top-{t.k:,} overlap",
                f"{t.overlap * 100:.1f}%",
                f"{t.common:,.1f} of {t.effective_k:,} in common",
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
                categories={0: svg.Category("moved", "#475569")},
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
    return Markup(
        svg.histogram(
            h.edges,
            h.counts,
            ident=ident,
            title=title,
            x_label=x_label or h.quantity,
            desc=desc,
            colour=colour,
        )
    )


def plots(c: Comparison) -> tuple[Plot, ...]:
    """The figures, in reading order; a figure with no data is left out."""
    out: list[Plot] = []
    pairs = c.plots.offset_pairs
    out.append(
        Plot(
            "offsets",
            "Each dot is a candidate: its offset under A (x) and B (y). On the dashed line "
            "the engines agree; above it B runs the candidate later. Colour is the "
            "candidate's status; every divergent candidate kept is drawn, the rest sampled.",
            Markup(
                svg.loglog_scatter(
                    pairs,
                    ident="plot-offsets",
                    title="Offset, A vs B",
                    x_label=f"offset under A ({c.a.engine})",
                    y_label=f"offset under B ({c.b.engine})",
                    categories=STATUS_CODES,
                    desc="Log-log scatter of queue offsets, A against B, with the line y = x.",
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
            "duration_rel_delta",
            "plot-duration",
            "Estimated duration, relative change",
            "Histogram of (B − A) / A of the estimated duration per candidate.",
            FACTOR_COLOURS["duration"],
        ),
        (
            "offset_log_ratio",
            "plot-logratio",
            "Offset, log(B / A)",
            "Histogram of the natural log of the offset ratio per candidate.",
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
                "success_probability_delta": "How far B's success probabilities are from A's.",
                "duration_rel_delta": "Relative change of the estimated duration (0.5 = 50% longer under B).",
                "offset_log_ratio": "log(B/A) of the offset: 0.69 means B's offset is twice A's.",
                "rank_displacement": "How far candidates moved in the queue; positive: later under B.",
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
    cause_rows = _cap_rows(
        [
            (s.campaign, [float(s.causes.get(f, 0)) for f in FACTORS])
            for s in sorted(c.campaigns, key=lambda s: -sum(s.causes.values()))
            if sum(s.causes.values())
        ]
    )
    if cause_rows:
        out.append(
            Plot(
                "causes",
                "Real divergent offsets per campaign, by the factor that moved them most.",
                Markup(
                    svg.stacked_bars(
                        cause_rows,
                        [svg.Category(FACTOR_LABELS[f], FACTOR_COLOURS[f]) for f in FACTORS],
                        ident="plot-causes",
                        title="What moved the offsets",
                        x_label="candidates, by dominant factor",
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
