"""The result of comparing two schedules: what every report renders and the gate decides on.

One :class:`Comparison` holds everything a person or a CI system needs; the
renderers (``reports.html``, ``reports.json_summary``, ``reports.junit``) only
read it. It is built by :func:`harness.comparison.compare.compare_schedules` and is
*aggregated*: counts and statistics cover every candidate, while the lists of
individual candidates are capped (``top_n``; the ``*_total`` counts say how
many there were), so a report stays small at 100,000 candidates.

Vocabulary
----------

*A* is the reference run (the legacy, or a stored baseline), *B* the run under
test. A candidate is identified by its key ``(codebase, campaign, change_set)``.

A **divergence** is a field of a candidate whose A and B values differ beyond
the field's tolerance (or a candidate missing on one side, or an error on one
side only / a different error type). Every divergence has a **status**:

* ``"real"``: counts against the budget and fails the gate;
* ``"noise"``: within what the engine does against itself (Diffy's rule, see
  :mod:`harness.comparison.noise`), so not a finding;
* ``"waived"``: an unexpired waiver (:mod:`harness.comparison.waivers`) says it is intended.

A candidate's status is the worst of its divergences' (real > waived > noise).

Numbers: ``float('nan')`` / infinities may appear in the *values* of
:class:`FieldDelta` (they are what the engines produced); statistics never
contain NaN (they are ``None`` when undefined). The JSON summary writes
non-finite values as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

Ranks and positions are 1-based (position 1 is what a worker takes first).

This module is a stable contract for the renderers: fields are only ever
added, never renamed or removed; :data:`MODEL_VERSION` goes up when fields are
added.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from engines.model import CandidateKey

MODEL_VERSION = 2

#: The numeric fields compared per candidate, in report order: first those
#: read from the decisions, then the ``queue_*`` ones, read from the queue rows
#: (matched by key).
DECISION_FIELDS: tuple[str, ...] = (
    "offset",
    "success_probability",
    "estimated_duration_us",
    "normalized_codebase_value",
    "value",
    "total_previous_runs",
)
QUEUE_FIELDS: tuple[str, ...] = ("queue_priority", "queue_bucket", "queue_position")
NUMERIC_FIELDS: tuple[str, ...] = DECISION_FIELDS + QUEUE_FIELDS

#: Pseudo-fields for divergences that are not a numeric field; waivers may name
#: them too. ``presence``: missing/extra candidate; ``error``: error vs value or
#: a different error type; ``structure``: a non-numeric decision field
#: (context, command, bucket, candidate_value, bonuses) found by deepdiff;
#: ``tie_order``: another order inside a tie group.
PSEUDO_FIELDS: tuple[str, ...] = ("presence", "error", "structure", "tie_order")

#: The factors the offset's log-ratio splits into (see :mod:`harness.comparison.attribution`):
#: ``duration`` (the cost, from the estimated duration), ``normalized_codebase_value``
#: (effective, floored), ``success_probability``, ``candidate_value`` (effective,
#: with the first-run bonus), and ``residual``: whatever the four do not explain
#: (an offset that is not cost/worth; zero for a faithful engine).
FACTORS: tuple[str, ...] = (
    "duration",
    "normalized_codebase_value",
    "success_probability",
    "candidate_value",
    "residual",
)

#: What a divergence is blamed on: a factor of the offset, or an input behind
#: several of them. ``run_counts``: which runs counted (previous runs, ignored
#: worker failures, same-context matches) changed, which moves probability and
#: duration together; ``publish_policy``, ``candidate_row``, ``run_data``,
#: ``dependencies``, ``codebase_values``, ``queue``: inputs named by the rule
#: behind an error pair (:func:`harness.comparison.attribution.error_rule`).
CAUSES: tuple[str, ...] = (
    *FACTORS,
    "run_counts",
    "publish_policy",
    "candidate_row",
    "run_data",
    "dependencies",
    "codebase_values",
    "queue",
)

#: The kinds of divergence, each counted and gated on its own. ``numeric``: a
#: number or non-numeric field of the decision (or its queue row's priority or
#: bucket) differs; ``order``: the candidate's own numbers are equal but its
#: queue position moved beyond tolerance; ``tie_order``: same bucket and
#: priority on both sides, but workers take it in another order relative to
#: the others of its tie group; ``presence``: decided on one side only;
#: ``error``: an error on one side only or a different error type.
KINDS: tuple[str, ...] = ("numeric", "order", "tie_order", "presence", "error")

Status = Literal["real", "noise", "waived"]
Verdict = Literal["pass", "fail"]
DiffKind = Literal[
    "value", "missing", "extra", "error_vs_value", "value_vs_error", "error_mismatch"
]


@dataclass(frozen=True)
class RunInfo:
    """Provenance of one side of the comparison (one engine run or a stored baseline).

    ``label`` is ``"A"`` or ``"B"``; ``engine`` the engine name as the schedule
    records it; ``source`` where the schedule came from (``"engine"`` or the
    baseline file path); ``provenance`` the dataset's provenance as JSON
    (``None`` if unknown); ``timings`` seconds per phase; ``decisions``,
    ``errors``, ``queue_rows`` counts.
    """

    label: str
    engine: str
    profile: str | None
    source: str
    as_of: str
    settings: Mapping[str, Any]
    provenance: Mapping[str, Any] | None
    timings: Mapping[str, float]
    notes: tuple[str, ...]
    decisions: int
    errors: int
    queue_rows: int


@dataclass(frozen=True)
class Tolerance:
    """A field's tolerance: a difference is tolerated when ``|a-b| <= absolute``
    **or** ``|a-b| <= relative * max(|a|, |b|)``. ``0``/``0`` means exact."""

    field: str
    absolute: float
    relative: float


@dataclass(frozen=True)
class NoiseRule:
    """Diffy's thresholds (see :mod:`harness.comparison.noise`). With ``raw`` candidates
    whose field differs between A and B beyond tolerance and ``noisy``
    candidates whose field differed between the engine's own runs, the field
    differs beyond noise when ``raw − noisy`` exceeds ``relative × (raw +
    noisy) / 2`` **and** ``absolute × compared``; otherwise its divergences on
    candidates that were noisy themselves are noise. Independently, a divergence no larger than the noise seen for
    that very candidate and field is noise. A field without any noise is never
    excused."""

    relative: float = 0.2
    absolute: float = 0.001


@dataclass(frozen=True)
class Histogram:
    """Counts per bin: ``len(edges) == len(counts) + 1``; ``scale`` is
    ``"linear"`` or ``"symlog"`` (edges are then already in data units).
    ``quantity`` says what is counted, for axis labels."""

    quantity: str
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    scale: str = "linear"


@dataclass(frozen=True)
class FieldStats:
    """One numeric field over all aligned candidates where both sides decided.

    ``compared``: pairs with a value on both sides; ``equal``: bit-equal (NaN
    equals NaN, see :mod:`harness.comparison.compare`); ``within_tolerance``: differ but
    tolerated; ``divergent = real + noise + waived``; ``null_mismatch``: a value
    on one side and ``None`` on the other (counted as divergent);
    ``nonfinite_mismatch``: NaN/inf against something else (divergent).
    Deltas are B − A; the ``*_delta`` statistics cover finite pairs only and are
    ``None`` when there are none. ``rel`` deltas are ``|a-b| / max(|a|,|b|)``.
    ``noise_max_abs`` is the largest noise seen for this field;
    ``noise_candidates`` how many compared candidates the engine moved beyond
    tolerance against itself; ``beyond_noise`` Diffy's verdict for the field
    (all three ``None`` without a noise baseline).
    """

    field: str
    tolerance: Tolerance
    compared: int
    equal: int
    within_tolerance: int
    divergent: int
    real: int
    noise: int
    waived: int
    null_mismatch: int
    nonfinite_mismatch: int
    max_abs_delta: float | None
    mean_abs_delta: float | None
    max_rel_delta: float | None
    p50_rel_delta: float | None
    p95_rel_delta: float | None
    p99_rel_delta: float | None
    noise_max_abs: float | None = None
    noise_candidates: int | None = None
    beyond_noise: bool | None = None


@dataclass(frozen=True)
class FieldDelta:
    """One divergent field of one candidate. ``a``/``b`` are the raw values
    (may be ``None`` or non-finite; ``queue_bucket`` is given as the bucket
    rank, ``bucket_a``/``bucket_b`` on the :class:`CandidateDiff` name it).
    ``abs_delta`` = ``|b-a|``, ``rel_delta`` = ``|b-a| / max(|a|,|b|)`` (``None``
    when undefined); ``noise``: the noise seen for this candidate and field;
    ``waiver``: the id of the waiver that waived it."""

    field: str
    a: float | None
    b: float | None
    abs_delta: float | None
    rel_delta: float | None
    status: Status
    noise: float | None = None
    waiver: str | None = None


@dataclass(frozen=True)
class FactorContribution:
    """One factor's part in ``log(offset_b / offset_a)``.

    ``a``/``b``: the factor's raw values (cost in ms for ``duration``; ``None``
    for ``residual``); ``log_ratio``: its signed contribution (positive pushes B's
    offset up, i.e. later in the queue; cost enters with +, the three worth
    factors with −); ``share``: ``log_ratio / total`` (signed, shares sum to 1;
    0 when the total is 0); ``weight``: ``|log_ratio| / Σ|log_ratio|`` in [0, 1]
    (weights sum to 1), the one to rank causes by.
    """

    factor: str
    a: float | None
    b: float | None
    log_ratio: float
    share: float
    weight: float


@dataclass(frozen=True)
class RunCount:
    """One count of runs behind a candidate's probability and duration, under
    A and under B (``None`` where the engine did not report it): ``previous_runs``
    (the runs that counted), ``successes``, ``ignored_worker_failures`` (worker
    failures old enough to be skipped), ``same_context`` (1 when a counted run
    had the candidate's context: the ×0.1 multiplier), ``deps_satisfied_runs``."""

    name: str
    a: float | None
    b: float | None


@dataclass(frozen=True)
class ErrorRule:
    """Why one engine raised where the other decided: ``input`` names the input
    that makes the difference (in words, with the value where known),
    ``factor`` the cause it belongs to (one of :data:`CAUSES`), ``side`` the
    side that raised (``"A"``, ``"B"`` or ``"both"``)."""

    input: str
    factor: str
    side: str


@dataclass(frozen=True)
class Attribution:
    """Why a candidate's offset moved: ``log_ratio = log(offset_b / offset_a)``
    split into :data:`FACTORS` (the contributions sum to it exactly, the
    residual absorbing anything the formula does not explain). ``dominant``:
    the factor with the largest weight (``None`` when nothing moved);
    ``source``: ``"factors"`` when both engines reported their factors,
    ``"recomputed"`` when rebuilt from the decision fields, ``"mixed"``."""

    log_ratio: float
    contributions: tuple[FactorContribution, ...]
    dominant: str | None
    source: str
    #: the cause to blame (one of :data:`CAUSES`): the dominant factor, or
    #: ``"run_counts"`` when the runs that counted changed and the movement is
    #: in probability and duration (both follow from the same runs)
    cause: str | None = None

    def contribution(self, factor: str) -> FactorContribution | None:
        for c in self.contributions:
            if c.factor == factor:
                return c
        return None


@dataclass(frozen=True)
class CandidateDiff:
    """One candidate with at least one divergence (real, noise or waived).

    ``kind``: ``"value"`` (both decided, fields differ), ``"missing"`` (only in
    A), ``"extra"`` (only in B), ``"error_vs_value"`` (A raised, B decided),
    ``"value_vs_error"``, ``"error_mismatch"`` (both raised, different types).
    ``fields``: the divergent fields; ``structure``: deepdiff's findings on
    the non-numeric fields, as short human-readable lines; ``attribution``:
    the factor breakdown when both offsets are finite and positive;
    ``rank_a``/``rank_b``: 1-based queue positions (``None`` if not queued);
    ``severity``: what the list is sorted by (``|log offset ratio|``, or ``inf``
    for missing/extra/error kinds); ``reasons_a``/``reasons_b``: each engine's
    own explanation; ``error_a``/``error_b``: ``"type: message"`` strings.
    """

    codebase: str
    campaign: str
    change_set: str | None
    kind: DiffKind
    status: Status
    severity: float
    fields: tuple[FieldDelta, ...] = ()
    structure: tuple[str, ...] = ()
    attribution: Attribution | None = None
    offset_a: float | None = None
    offset_b: float | None = None
    rank_a: int | None = None
    rank_b: int | None = None
    bucket_a: str | None = None
    bucket_b: str | None = None
    reasons_a: tuple[str, ...] = ()
    reasons_b: tuple[str, ...] = ()
    error_a: str | None = None
    error_b: str | None = None
    waivers: tuple[str, ...] = ()
    #: the kind of divergence (one of :data:`KINDS`) it is counted under
    category: str = "numeric"
    #: for ``error`` pairs: the rule behind the difference
    rule: ErrorRule | None = None
    #: run counts under A and B, for the drill-down (pairs both engines decided)
    run_counts: tuple[RunCount, ...] = ()
    #: for ``order``/``tie_order``: candidates with changed numbers that moved
    #: past it (at most five labels, largest moves first) and how many there were
    moved_by: tuple[str, ...] = ()
    moved_by_total: int = 0

    @property
    def key(self) -> CandidateKey:
        return CandidateKey(self.codebase, self.campaign, self.change_set)

    @property
    def label(self) -> str:
        return self.key.label()


@dataclass(frozen=True)
class ErrorMismatch:
    """A candidate where the two engines disagree about failing: ``kind`` is
    ``"error_vs_value"``, ``"value_vs_error"`` or ``"error_mismatch"`` (both
    raised, different ``ErrorInfo.type``); ``*_type``/``*_message`` are
    ``None`` on the side that decided."""

    codebase: str
    campaign: str
    change_set: str | None
    kind: DiffKind
    status: Status
    type_a: str | None
    message_a: str | None
    type_b: str | None
    message_b: str | None
    rule: ErrorRule | None = None

    @property
    def key(self) -> CandidateKey:
        return CandidateKey(self.codebase, self.campaign, self.change_set)


@dataclass(frozen=True)
class KeyRef:
    """A candidate present on one side only (``side`` is ``"A"`` or ``"B"``,
    the side it *is* in); ``offset``/``rank`` from that side."""

    codebase: str
    campaign: str
    change_set: str | None
    side: str
    status: Status
    offset: float | None = None
    rank: int | None = None
    error: str | None = None

    @property
    def key(self) -> CandidateKey:
        return CandidateKey(self.codebase, self.campaign, self.change_set)


@dataclass(frozen=True)
class RankMove:
    """A candidate whose queue position changed. ``rank_a``/``rank_b``: its
    1-based position in each whole queue; ``displacement``: its rank among the
    items queued on both sides, B minus A (positive: B runs it later; items
    present on one side only do not shift it). ``tie_a``/``tie_b``: the size of
    its tie group (same bucket and priority) on each side; a move that stays
    inside overlapping tie groups is not a reordering and is not listed."""

    codebase: str
    campaign: str
    change_set: str | None
    rank_a: int
    rank_b: int
    displacement: int
    tie_a: int = 1
    tie_b: int = 1


@dataclass(frozen=True)
class TopKOverlap:
    """``common / effective_k``, where ``effective_k`` is ``k`` capped at the
    longer queue and ``common`` the number of items in both top-``k`` prefixes.
    Tie-aware: a tie group (same bucket and priority) straddling the cut counts
    each member as a fraction (the part of the group inside the cut), and two
    tied groups are matched as well as their tie-breaks allow, so ties never
    count as disagreement; ``common`` is therefore a float."""

    k: int
    effective_k: int
    common: float
    overlap: float


@dataclass(frozen=True)
class RankMetrics:
    """How the two queue orders agree, over the candidates queued on both sides.

    ``kendall_tau_b``/``spearman``: scipy's coefficients on the tie-aware ranks
    (tied = same bucket and priority), ``None`` when undefined (fewer than two
    common items, or all tied); ``*_pvalue`` likewise. ``rbo``: Rank-Biased
    Overlap, extrapolated (Webber, Moffat & Zobel 2010, the form for lists of
    uneven length), tie-aware as described in :mod:`harness.comparison.ranking`, with
    persistence ``rbo_p``; 1.0 is identical, 0.0 disjoint.
    ``common``/``only_a``/``only_b``: queue rows by key. ``displacement_*`` over
    the common items (1-based ranks among the common items). ``movers``: the
    largest ``|displacement|``, at most ``top_n``. ``moved``: items whose rank
    changed and not only within a tie group. ``displacement_histogram``: over
    the common items, a move within a tie group counting as 0.
    """

    common: int
    only_a: int
    only_b: int
    kendall_tau_b: float | None
    kendall_pvalue: float | None
    spearman: float | None
    spearman_pvalue: float | None
    rbo: float
    rbo_p: float
    top_k: tuple[TopKOverlap, ...]
    moved: int
    max_abs_displacement: int
    mean_abs_displacement: float
    movers: tuple[RankMove, ...]
    displacement_histogram: Histogram | None = None


@dataclass(frozen=True)
class CampaignSummary:
    """Aggregates for one campaign. ``candidates``: keys in A ∪ B;
    ``divergent``: candidates with any divergence (= real + noise + waived);
    ``field_divergences``: field → number of *real* divergences;
    ``causes``: factor → number of real divergent candidates whose dominant
    factor it is; ``cause_weight``: factor → sum of weights over those
    candidates (how much of the movement each factor explains);
    ``dominant_cause``: the factor with the largest ``cause_weight`` (``None``
    if none); ``median_log_ratio``: median ``log(offset_b/offset_a)`` over
    candidates with both offsets (``None`` if none)."""

    campaign: str
    candidates: int
    divergent: int
    real: int
    noise: int
    waived: int
    missing: int
    extra: int
    error_mismatches: int
    field_divergences: Mapping[str, int]
    causes: Mapping[str, int]
    cause_weight: Mapping[str, float]
    dominant_cause: str | None
    median_log_ratio: float | None
    #: real divergent candidates per kind (:data:`KINDS`), zeros left out
    kinds: Mapping[str, int] = field(default_factory=dict)
    #: Kendall tau-b of the campaign's candidates queued on both sides (``None``
    #: when undefined), and how many there were
    kendall_tau_b: float | None = None
    queued_common: int = 0


@dataclass(frozen=True)
class NoiseField:
    """Noise of one field: ``candidates_noisy`` candidates differed between the
    engine's own runs, by at most ``max_abs`` (relative: ``max_rel``)."""

    field: str
    candidates_noisy: int
    max_abs: float
    max_rel: float


@dataclass(frozen=True)
class NoiseBaseline:
    """What the reference engine does against itself. ``engine``: its name;
    ``runs``: what was run (``"rerun"``, ``"shuffled candidate rows (seed N)"``);
    ``fields``: per numeric field; ``rank``: the rank metrics of A against its
    noisiest self-run (``None`` if no queue); ``rule``: the Diffy thresholds."""

    engine: str
    runs: tuple[str, ...]
    fields: tuple[NoiseField, ...]
    rule: NoiseRule
    rank: RankMetrics | None = None
    #: the reference re-run with the candidate rows in the order B processed
    #: them (``None`` when B's order was A's): what B should be if it follows
    #: the reference's rules, so differences it reproduces are row order
    order_run: str | None = None
    #: divergent candidates that the reference's own row order explains
    explained_by_order: int = 0


@dataclass(frozen=True)
class WaiverUse:
    """A waiver from the waivers file and what it did. ``id``: ``file#index``
    (1-based); ``expired``: its expiry date has passed (it then waived
    nothing); ``matched``: divergences it waived (or would have, if expired)."""

    id: str
    field: str
    campaign: str
    codebase: str
    reason: str
    expires: date | None
    expired: bool
    matched: int


@dataclass(frozen=True)
class PlotData:
    """Pre-aggregated plot inputs (renderers need not touch 100,000 rows).

    ``offset_pairs``: ``(offset_a, offset_b, status_code)`` for a sample of
    candidates with both offsets finite and positive (all divergent ones first,
    the ``top_n`` most severe, then an even sample of all the others; status_code 0 equal/tolerated,
    1 noise, 2 waived, 3 real); ``histograms``: name → histogram, names
    ``"success_probability_delta"`` (B−A, absolute), ``"duration_ratio"``
    (log₂(B/A)), ``"offset_log_ratio"`` (ln(B/A)), ``"rank_displacement"``
    (rank_b − rank_a)."""

    offset_pairs: tuple[tuple[float, float, int], ...]
    histograms: Mapping[str, Histogram]
    #: candidates with both offsets finite and positive, and the divergent ones
    #: among them (the scatter draws ``offset_pairs``, a sample of these)
    offset_total: int = 0
    offset_divergent: int = 0
    #: ``codebase/campaign`` of each point of ``offset_pairs`` (for tooltips)
    offset_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class KindCount:
    """Candidates of one kind of divergence (:data:`KINDS`), by status."""

    kind: str
    real: int
    noise: int
    waived: int


@dataclass(frozen=True)
class QueueHeadRow:
    """One place of a queue head: position ``position`` (1-based) holds
    ``label`` under this side; ``other``: its position under the other side
    (``None`` when not queued there); ``moved``: the move is not only inside a
    tie group."""

    position: int
    label: str
    priority: int
    bucket: str
    other: int | None
    moved: bool


@dataclass(frozen=True)
class Distribution:
    """A's and B's values of one field over the candidates both decided, on
    the same bins (``scale``: ``"linear"`` or ``"log"``, edges in data units)."""

    quantity: str
    unit: str
    edges: tuple[float, ...]
    counts_a: tuple[int, ...]
    counts_b: tuple[int, ...]
    scale: str = "linear"


@dataclass(frozen=True)
class Counts:
    """Candidate counts: ``a``/``b`` distinct keys per side; ``aligned``: keys on
    both sides; ``missing``: only in A; ``extra``: only in B; ``both_ok``: both
    decided; ``both_error_same``: both raised the same error type (agreement);
    ``error_mismatches``: error vs value or different types; ``identical``:
    aligned candidates without any divergence (noise included as divergence);
    ``duplicate_keys_a``/``_b``: decisions whose key repeated (last wins)."""

    a: int
    b: int
    aligned: int
    missing: int
    extra: int
    both_ok: int
    both_error_same: int
    error_mismatches: int
    identical: int
    duplicate_keys_a: int = 0
    duplicate_keys_b: int = 0


@dataclass(frozen=True)
class Comparison:
    """The whole result.

    ``verdict``: ``"pass"`` when ``real <= budget`` (and no ordering
    threshold is violated), else ``"fail"``; ``verdict_reason``: one line
    that says why. ``real``/``noise``/``waived``: numbers of *candidates*
    (missing/extra included) by their status; ``budget``: the allowed real
    divergences. ``candidates``: the top ``top_n`` divergent candidates, real
    first then by severity; ``candidates_total``: how many there were.
    ``missing``/``extra``/``error_mismatches``: capped lists likewise, with
    their totals in ``counts``. ``fields``: per-field statistics in
    :data:`NUMERIC_FIELDS` order; ``structure_divergences``: non-numeric
    field name → count. ``ranking``: ``None`` if either queue is empty.
    ``campaigns`` sorted by real divergences, descending. ``causes``:
    factor → number of real divergent candidates it dominates (all
    campaigns). ``noise_baseline``: ``None`` when no noise baseline was run.
    ``waivers``: every waiver loaded, with its use. ``ordering_checks``:
    name → (value, threshold, passed) for optional ordering thresholds.
    ``elapsed_s``: compare time; ``created_at``: ISO timestamp (UTC).
    """

    verdict: Verdict
    verdict_reason: str
    budget: int
    real: int
    noise: int
    waived: int
    a: RunInfo
    b: RunInfo
    counts: Counts
    tolerances: tuple[Tolerance, ...]
    noise_rule: NoiseRule
    fields: tuple[FieldStats, ...]
    structure_divergences: Mapping[str, int]
    candidates: tuple[CandidateDiff, ...]
    candidates_total: int
    missing: tuple[KeyRef, ...]
    extra: tuple[KeyRef, ...]
    error_mismatches: tuple[ErrorMismatch, ...]
    ranking: RankMetrics | None
    campaigns: tuple[CampaignSummary, ...]
    causes: Mapping[str, int]
    noise_baseline: NoiseBaseline | None
    waivers: tuple[WaiverUse, ...]
    plots: PlotData
    top_n: int
    created_at: str
    elapsed_s: float
    ordering_checks: Mapping[str, tuple[float | None, float, bool]] = field(default_factory=dict)
    model_version: int = MODEL_VERSION
    #: candidates per kind of divergence, in :data:`KINDS` order
    kinds: tuple[KindCount, ...] = ()
    #: whether tie order is compared (``ranking.ties: ordered``)
    ties_ordered: bool = True
    #: the first places of each queue (``queue_head`` of the settings)
    head_a: tuple[QueueHeadRow, ...] = ()
    head_b: tuple[QueueHeadRow, ...] = ()
    #: A's and B's values per field (offset, probability, duration)
    distributions: tuple[Distribution, ...] = ()
    #: candidate rows the HTML table shows (``report.table_rows``, ``--table-rows``)
    table_rows: int = 500
    #: the common shift of B's queue priorities removed before comparing them
    #: (:func:`harness.comparison.alignment.priority_shift`; 0: none)
    priority_shift: float = 0.0

    def kind(self, name: str) -> KindCount:
        for k in self.kinds:
            if k.kind == name:
                return k
        return KindCount(name, 0, 0, 0)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def field_stats(self, name: str) -> FieldStats | None:
        for stats in self.fields:
            if stats.field == name:
                return stats
        return None
