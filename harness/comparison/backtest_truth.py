"""The ``truth`` engine: the generator's latent model, scheduled like the legacy.

On generated data (``janitor-shadow generate`` writes ``truth.jsonl.gz``) the
probability that a candidate's next non-transient run succeeds is known: its
logit moves linearly from ``success_probability_start`` (``history_days``
before the generator's ``as_of``) to ``success_probability`` (at ``as_of``).
This engine takes another engine's schedule at a cut, replaces each decided
candidate's success probability by the truth at the cut and its duration by
the truth's expected duration, prices it with the legacy's offset formula
(spec §6, the same normalized and candidate values) and rebuilds the queue.
It is the ceiling a backtest can be read against, and the engine the
backtest's own tests expect to win.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

from engines.legacy.core import duration_cost
from engines.model import CandidateKey, Decision, Schedule
from engines.queue_sim import QueueOverflow, QueueSimulator
from scenarios.generator import Truth


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    return math.log(p / (1.0 - p))


def truth_probabilities(truth: Truth, cut: datetime) -> dict[CandidateKey, float]:
    """Each candidate's true success probability at ``cut`` (drift interpolated on the logit)."""
    history_days = float(truth.settings.get("history_days") or 700)
    age = (truth.as_of - cut).total_seconds() / (history_days * 86400.0)
    age = min(max(age, 0.0), 1.0)
    out = {}
    for key, row in truth.candidates.items():
        end = _logit(row.success_probability)
        start = _logit(row.success_probability_start)
        out[key] = 1.0 / (1.0 + math.exp(-(end + (start - end) * age)))
    return out


def truth_schedule(base: Schedule, truth: Truth, cut: datetime) -> Schedule:
    """``base`` with the truth's probabilities and durations, re-priced and re-queued."""
    probabilities = truth_probabilities(truth, cut)
    queue = QueueSimulator()
    decisions: list[Decision] = []
    for d in base.decisions:
        row = truth.candidates.get(d.key)
        ncv = d.factors.get("normalized_codebase_value_effective")
        cv = d.factors.get("candidate_value_effective")
        if d.error is not None or row is None or ncv is None or cv is None:
            decisions.append(d)
            continue
        p = probabilities[d.key]
        duration = max(row.expected_duration_us, 1)
        worth = float(ncv) * p * float(cv)
        offset = duration_cost(duration) / worth if worth > 0 else math.inf
        bucket = None
        if d.bucket is not None and math.isfinite(offset):
            try:
                _, bucket, _ = queue.add(
                    codebase=d.codebase,
                    campaign=d.campaign,
                    command=d.command or "",
                    offset=offset,
                    context=d.context,
                    estimated_duration_us=duration,
                    requester="scheduler",
                )
            except QueueOverflow:
                bucket = None
        decisions.append(
            replace(
                d,
                success_probability=p,
                estimated_duration_us=duration,
                offset=offset,
                bucket=bucket,
                reasons=(
                    "probability and duration: the generator's truth at the cut "
                    "(logit drift interpolated); offset by the legacy's formula",
                ),
            )
        )
    return Schedule(
        engine="truth",
        profile=base.engine,
        settings={"based_on": base.engine},
        as_of=cut,
        decisions=decisions,
        queue=queue.rows(),
        provenance=base.provenance,
    )
