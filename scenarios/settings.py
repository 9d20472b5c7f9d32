"""The generator's settings, apart from the generator: the command line reads
their defaults without importing numpy."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from harness.errors import InputError
from scenarios.campaigns import CAMPAIGNS

DEFAULT_AS_OF = datetime(2025, 6, 1)
CANDIDATES_PER_CODEBASE = 2.0


@dataclass(frozen=True)
class GeneratorSettings:
    """Everything the output depends on. Same settings → byte-identical output."""

    codebases: int | None = None
    candidates: int | None = None
    runs_per_candidate: float = 18.75
    seed: int = 0
    as_of: datetime = DEFAULT_AS_OF
    campaigns: int = 12
    history_days: int = 700
    zero_run_fraction: float = 0.12
    null_codebase_value_fraction: float = 0.08
    zero_value_fraction: float = 0.0
    null_success_chance_fraction: float = 0.3
    null_policy_fraction: float = 0.01
    orphan_run_codebase_fraction: float = 0.15
    drift_fraction: float = 0.2
    boundary_cases: bool = True
    push_derived_fraction: float = 0.0
    strict_op_fraction: float = 0.0
    changeset_candidate_fraction: float = 0.0
    null_value_fraction: float = 0.0

    def validate(self) -> None:
        """Reject settings that cannot describe a dataset, naming the setting."""
        if self.codebases is not None and self.candidates is not None:
            raise InputError("give either codebases or candidates, not both", field="codebases")
        for name in ("codebases", "candidates"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"must be at least 1, got {value}", field=name)
        if not 1 <= self.campaigns <= len(CAMPAIGNS):
            raise InputError(
                f"must be between 1 and {len(CAMPAIGNS)}, got {self.campaigns}", field="campaigns"
            )
        if not 0 <= self.runs_per_candidate <= 10_000:
            raise InputError(
                f"must be between 0 and 10000, got {self.runs_per_candidate}",
                field="runs_per_candidate",
            )
        if self.history_days < 2:
            raise InputError("must be at least 2", field="history_days")
        if self.as_of.tzinfo is not None:
            raise InputError("expected a naive UTC timestamp", field="as_of")
        for name in (
            "zero_run_fraction",
            "null_codebase_value_fraction",
            "zero_value_fraction",
            "null_success_chance_fraction",
            "null_policy_fraction",
            "orphan_run_codebase_fraction",
            "drift_fraction",
            "push_derived_fraction",
            "strict_op_fraction",
            "changeset_candidate_fraction",
            "null_value_fraction",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"must be a fraction in [0, 1], got {value}", field=name)
        if self.zero_run_fraction >= 1.0 and self.runs_per_candidate > 0:
            raise InputError("must be below 1 when runs are wanted", field="zero_run_fraction")

    @property
    def candidate_count(self) -> int:
        if self.candidates is not None:
            return self.candidates
        return round((self.codebases or 400) * CANDIDATES_PER_CODEBASE)

    @property
    def codebase_count(self) -> int:
        if self.codebases is not None:
            return self.codebases
        wanted = math.ceil(self.candidate_count / CANDIDATES_PER_CODEBASE)
        # Enough codebases that every campaign can hold its share.
        return max(wanted, math.ceil(self.candidate_count / self.campaigns), 2)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["as_of"] = self.as_of.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return out
