"""The plan's ``DurationEstimator``: how long will the run take (whole microseconds).

``duration_estimation.method``:

* ``legacy-mean`` — the legacy: the mean of the counted runs (a float sum
  newest first, rounded by ``timedelta``); without counted runs, the
  PostgreSQL AVG of the codebase's runs in all campaigns, then of the
  campaign's runs on all codebases, then the global default;
* ``median`` — the plan: the median (``sorted[n // 2]``) of this codebase and
  campaign's relevant runs when there are at least ``minimum_data_points``,
  then the codebase's median (same threshold), then the campaign's
  configured default, then the global default.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import NamedTuple

from engines.new.aggregates import Aggregates
from engines.new.config import EngineConfig


class DurationEstimate(NamedTuple):
    duration_us: int
    reason: str
    #: The rule that produced it (``mean``, ``codebase-average``, ``median``, ...).
    source: str


_R_MEAN = (
    "duration = mean of the previous runs (float sum newest first, rounded to whole µs, "
    "as the legacy)"
)
_R_CODEBASE_AVG = (
    "duration = no previous runs: PostgreSQL AVG of the codebase's runs in all campaigns"
)
_R_CAMPAIGN_AVG = (
    "duration = no runs of this codebase: PostgreSQL AVG of the campaign's runs on all codebases"
)


def _fmt(us: int) -> str:
    return f"{us / 1e6:.6g} s"


class DurationEstimator:
    def __init__(self, config: EngineConfig) -> None:
        self.method = config.duration_estimation.method
        self.durations = config.duration_estimation
        self.minimum = config.success_estimation.minimum_data_points
        self.default_us = config.scheduling.default_estimated_duration_us
        self.default_minutes = config.scheduling.default_estimated_duration
        self._r_median = (
            "duration = median (sorted[n // 2]) of this codebase and campaign's relevant runs "
            f"(at least {self.minimum})"
        )
        self._r_codebase_median = (
            "duration = median of the codebase's relevant runs in all campaigns (fewer than "
            f"{self.minimum} for this campaign)"
        )
        self._r_global_default = (
            f"duration = the global default, {self.default_minutes:g} minutes "
            f"({self.default_us / 1e6:g} s)"
        )

    def estimate(
        self, agg: Aggregates, group: int | None, codebase: str, campaign: str
    ) -> DurationEstimate:
        if self.method == "legacy-mean":
            return self._legacy(agg, group, codebase, campaign)
        return self._median(agg, group, codebase, campaign)

    def estimate_all(
        self,
        agg: Aggregates,
        groups: Sequence[int | None],
        codebases: Sequence[str],
        campaigns: Sequence[str],
    ) -> list[DurationEstimate]:
        """:meth:`estimate` of many candidates: the usual legacy-mean case (the mean
        of runs that all have times, already worked out) without a call each."""
        if self.method != "legacy-mean":
            return list(map(self.estimate, repeat(agg), groups, codebases, campaigns))
        total, timed, means = agg.total, agg.timed, agg.known_means
        plain = [
            None
            if g is None or not total[g] or timed[g] != total[g] or (m := means.get(g)) is None
            else tuple.__new__(DurationEstimate, (m, _R_MEAN, "mean"))
            for g in groups
        ]
        return [
            self.estimate(agg, g, codebase, campaign) if found is None else found
            for found, g, codebase, campaign in zip(
                plain, groups, codebases, campaigns, strict=True
            )
        ]

    def _default(self, campaign: str) -> DurationEstimate:
        per_campaign = self.durations.campaign_default_us(campaign)
        if per_campaign is not None:
            return DurationEstimate(
                per_campaign,
                f"duration {_fmt(per_campaign)}: configured default for campaign {campaign}",
                "campaign-default",
            )
        return DurationEstimate(
            self.default_us,
            f"duration {_fmt(self.default_us)}: global default ({self.default_minutes:g} minutes)",
            "default",
        )

    def _legacy(
        self, agg: Aggregates, group: int | None, codebase: str, campaign: str
    ) -> DurationEstimate:
        if group is not None and agg.total[group]:
            mean = agg.mean_us(group)
            if mean is not None:
                if agg.timed[group] == agg.total[group]:
                    return DurationEstimate(mean, _R_MEAN, "mean")
                skipped = agg.total[group] - agg.timed[group]
                return DurationEstimate(
                    mean, f"{_R_MEAN} ({skipped} run(s) without times skipped)", "mean"
                )
        avg = agg.codebase_avg_us.get(codebase)
        if avg is not None:
            return DurationEstimate(avg, _R_CODEBASE_AVG, "codebase-average")
        avg = agg.campaign_avg_us.get(campaign)
        if avg is not None:
            return DurationEstimate(avg, _R_CAMPAIGN_AVG, "campaign-average")
        return self._default(campaign)

    def _median(
        self, agg: Aggregates, group: int | None, codebase: str, campaign: str
    ) -> DurationEstimate:
        if group is not None and agg.median_n[group] >= self.minimum:
            value = agg.median_us[group]
            if value is not None:
                return DurationEstimate(value, self._r_median, "median")
        n = agg.codebase_median_n.get(codebase, 0)
        value = agg.codebase_median_us.get(codebase)
        if n >= self.minimum and value is not None:
            return DurationEstimate(value, self._r_codebase_median, "codebase-median")
        return self._default(campaign)
