"""Test engines for the comparator, found by ``support_engines:FACTORY[:OPTION]``.

``simple`` is a small deterministic scheduler with the legacy's offset formula
(cost ÷ (ncv × probability × value)) over the dataset, so its answers are
known by hand. Its option injects one bug, to check that the comparator
attributes it to the right factor:

* ``prob``: success probability halved;
* ``duration``: estimated duration doubled;
* ``ncv``: normalized codebase value halved (before the 0.1 floor);
* ``value``: candidate value tripled;
* ``offset``: offset × 1.5 with every factor unchanged (a residual);
* ``stale``: probability halved, offset recomputed, ``factors`` left stale
  (a wrapper that forgets to update them);
* ``drop``: the first candidate is not decided (missing);
* ``error``: the first candidate raises ``builtins.KeyError``;
* ``crash``: the engine raises instead of returning a schedule.

Queue ids follow the candidate rows' order, so the order inside a priority
tie depends on it, as it does in the legacy.
"""

from __future__ import annotations

import math

from engines.model import Dataset, Decision, ErrorInfo, QueueItem, Schedule, sorted_queue

DEFAULT_DURATION_US = 900_000_000


def _cost(duration_us: int) -> float:
    return 20_000.0 + duration_us / 1000.0 + (duration_us % 1_000_000) / 1000.0


class SimpleEngine:
    def __init__(self, option: str | None) -> None:
        self.bug = option or ""
        self.name = f"support_engines:simple:{self.bug}" if self.bug else "support_engines:simple"

    def schedule(self, dataset: Dataset) -> Schedule:
        if self.bug == "crash":
            raise RuntimeError("boom")
        values = {c.name: c.value or 0 for c in dataset.codebases}
        top = max(values.values(), default=0) or 1
        rows = dataset.joined_candidates
        decisions: list[Decision] = []
        queue: list[QueueItem] = []
        for index, cand in enumerate(rows):
            if self.bug == "drop" and index == 0:
                continue
            if self.bug == "error" and index == 0:
                decisions.append(
                    Decision(
                        codebase=cand.codebase,
                        campaign=cand.campaign,
                        change_set=cand.change_set,
                        error=ErrorInfo("builtins.KeyError", "'injected'"),
                    )
                )
                continue
            runs = dataset.runs_by_codebase_campaign.get((cand.codebase, cand.campaign), ())
            durations = [r.duration_us for r in runs if r.duration_us is not None]
            duration = sum(durations) // len(durations) if durations else DEFAULT_DURATION_US
            successes = sum(1 for r in runs if r.result_code == "success")
            probability = (successes * 10 + 1) / (len(runs) * 10 + 1)
            ncv = values.get(cand.codebase, 0) / top
            value = float(cand.value if cand.value is not None else 1)
            if self.bug == "prob":
                probability *= 0.5
            if self.bug == "duration":
                duration *= 2
            if self.bug == "ncv":
                ncv *= 0.5
            if self.bug == "value":
                value *= 3
            ncv_eff = max(0.1, ncv)
            cv_eff = value + 100 if not runs else value
            cost = _cost(duration)
            offset = cost / (ncv_eff * probability * cv_eff)
            factors = {
                "cost": cost,
                "normalized_codebase_value_effective": ncv_eff,
                "candidate_value_effective": cv_eff,
                "success_probability": probability,
            }
            if self.bug == "offset":
                offset *= 1.5
            if self.bug == "stale":
                factors = dict(factors, success_probability=probability)
                probability *= 0.5
                offset = cost / (ncv_eff * probability * cv_eff)
            decisions.append(
                Decision(
                    codebase=cand.codebase,
                    campaign=cand.campaign,
                    change_set=cand.change_set,
                    command=cand.command,
                    candidate_value=cand.value,
                    value=value,
                    normalized_codebase_value=ncv,
                    success_probability=probability,
                    estimated_duration_us=duration,
                    total_previous_runs=len(runs),
                    offset=offset,
                    bucket="default",
                    factors=factors,
                    reasons=(f"simple: p={probability:.4f}, duration {duration}us",),
                )
            )
            queue.append(
                QueueItem(
                    id=len(queue) + 1,
                    codebase=cand.codebase,
                    suite=cand.campaign,
                    command=cand.command,
                    priority=math.floor(math.log2(offset)),  # coarse: ties
                    estimated_duration_us=duration,
                    change_set=cand.change_set,
                )
            )
        return Schedule(
            engine=self.name,
            profile=None,
            settings={"bug": self.bug},
            as_of=dataset.as_of,
            decisions=decisions,
            queue=sorted_queue(queue),
            provenance=dataset.provenance,
        )


def simple(option: str | None) -> SimpleEngine:
    return SimpleEngine(option)


# ---------------------------------------------------------------- constructed schedules


def make_decision(
    codebase: str,
    campaign: str = "lintian-fixes",
    *,
    duration_us: int = 10_000_000,
    probability: float = 0.5,
    ncv: float | None = 0.5,
    value: float | None = 100.0,
    runs: int = 3,
    change_set: str | None = None,
    **overrides: object,
) -> Decision:
    """A decision whose offset follows the legacy formula from its own fields."""
    ncv_eff = max(0.1, 0.5 if ncv is None else ncv)
    cv = 1.0 if value is None else (value + 100 if runs == 0 else value)
    offset = _cost(duration_us) / (ncv_eff * probability * cv)
    fields: dict[str, object] = {
        "codebase": codebase,
        "campaign": campaign,
        "change_set": change_set,
        "command": f"{campaign}-cmd",
        "value": value,
        "normalized_codebase_value": ncv,
        "success_probability": probability,
        "estimated_duration_us": duration_us,
        "total_previous_runs": runs,
        "offset": offset,
        "bucket": "default",
    }
    fields.update(overrides)
    return Decision(**fields)  # type: ignore[arg-type]


def make_schedule(
    decisions: list[Decision],
    *,
    engine: str = "constructed",
    priorities: dict[str, int] | None = None,
) -> Schedule:
    """A schedule whose queue holds every decided candidate, ordered by offset
    (priority: ``int(offset)`` unless ``priorities`` gives one per codebase)."""
    from datetime import datetime

    queue: list[QueueItem] = []
    for d in decisions:
        if d.error is not None or d.offset is None or not math.isfinite(d.offset):
            continue
        priority = (priorities or {}).get(d.codebase, int(d.offset))
        queue.append(
            QueueItem(
                id=len(queue) + 1,
                codebase=d.codebase,
                suite=d.campaign,
                command=d.command,
                priority=priority,
                change_set=d.change_set,
            )
        )
    return Schedule(
        engine=engine,
        profile=None,
        settings={},
        as_of=datetime(2026, 1, 1),
        decisions=list(decisions),
        queue=sorted_queue(queue),
    )


def broken_factory(option: str | None) -> SimpleEngine:
    """A factory with a bug of its own: a TypeError raised inside it (not a wrong shape)."""
    return SimpleEngine(option + "x")  # type: ignore[operator]
