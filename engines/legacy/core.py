"""The legacy scheduler's algorithm, exact to ``shared/spec/legacy-scheduler.md``.

The algorithm is written once, here; the backends differ only in how they
answer the handful of questions the legacy asks its database
(:class:`LegacyData`). ``memory`` answers them from a Dataset, ``sql`` by
running the legacy's own queries. Every quirk of the production code is kept
on purpose — see the spec — and every place where Python would raise in
production raises the same kind of exception here, captured per candidate.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, cast

from engines.model import (
    US_PER_DAY,
    Dataset,
    Decision,
    ErrorInfo,
    PolicyEntry,
    Run,
    Schedule,
    timedelta_to_us,
)
from engines.queue_sim import QueueOverflow, QueueSimulator

FIRST_RUN_BONUS = 100.0
DEFAULT_ESTIMATED_DURATION_US = 15 * 1_000_000  # 15 seconds, not minutes
DEFAULT_SCHEDULE_OFFSET = -1.0
MINIMUM_COST = 20000.0
MINIMUM_NORMALIZED_CODEBASE_VALUE = 0.1
DEFAULT_NORMALIZED_CODEBASE_VALUE = 0.5
BULK_DEFAULT_OFFSET = 0.0
#: No entry for ``push-derived``: the database enum has it, the legacy does not.
PUBLISH_MODE_VALUE: Mapping[str, int] = {
    "skip": 0,
    "build-only": 0,
    "push": 500,
    "propose": 400,
    "attempt-push": 450,
    "bts": 100,
}
#: Comparison operators PostgreSQL's debversion type defines.
DEBVERSION_OPERATORS = frozenset({"<", "<=", "=", ">=", ">", "<>", "!="})
_OPERATOR_CHARS = frozenset("+-*/<>=~!@#%^&|`?")

PHASE_ITEM = "queue_item_from_candidate_and_publish_policy"
PHASE_SCHEDULE = "do_schedule_regular"
PHASE_BULK = "bulk_add_to_queue"


class LegacyError(Exception):
    """An exception the production legacy would raise, named as it would be."""

    def __init__(self, type_name: str, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.message = message
        self.sqlstate = sqlstate

    def info(self, phase: str) -> ErrorInfo:
        return ErrorInfo(
            type=self.type_name, message=self.message, phase=phase, sqlstate=self.sqlstate
        )


def undefined_operator(op: str) -> LegacyError:
    """What PostgreSQL says when the legacy pastes an unknown operator into SQL."""
    if op and set(op) <= _OPERATOR_CHARS:
        return LegacyError(
            "asyncpg.exceptions.UndefinedFunctionError",
            f"operator does not exist: debversion {op} unknown\n"
            "HINT:  No operator matches the given name and argument types. "
            "You might need to add explicit type casts.",
            sqlstate="42883",
        )
    return LegacyError(
        "asyncpg.exceptions.PostgresSyntaxError",
        f"syntax error at or near {op!r}",
        sqlstate="42601",
    )


def missing_debian_versions_table() -> LegacyError:
    return LegacyError(
        "asyncpg.exceptions.UndefinedTableError",
        'relation "all_debian_versions" does not exist',
        sqlstate="42P01",
    )


@dataclass(frozen=True, slots=True)
class CandidateRow:
    """One row of the legacy's candidate query, plus the key it does not select."""

    codebase: str
    campaign: str
    change_set: str | None
    context: str | None
    value: int | None
    success_chance: float | None
    per_branch_policy: tuple[PolicyEntry, ...] | None
    command: str | None


@dataclass(frozen=True, slots=True)
class RereadRow:
    value: int | None
    success_chance: float | None
    command: str | None
    context: str | None


class LegacyData(Protocol):
    """The questions the legacy asks its database, one method each."""

    def candidate_rows(self) -> Sequence[CandidateRow]:
        """The candidate query's rows, in the order the legacy processed them."""
        ...

    def codebase_values(self) -> Sequence[tuple[str, int | None]]:
        """``SELECT name, value FROM codebase WHERE name IS NOT NULL``."""
        ...

    def reread_candidate(self, codebase: str, campaign: str) -> RereadRow | None:
        """The candidate row with an empty change set (``coalesce(change_set, '') = ''``)."""
        ...

    def runs(self, codebase: str, campaign: str) -> Sequence[Run]:
        """Runs WHERE failure_transient IS NOT TRUE, ORDER BY start_time DESC."""
        ...

    def avg_duration_us(
        self, *, codebase: str | None = None, campaign: str | None = None
    ) -> int | None:
        """``AVG(finish_time - start_time)`` over non-transient runs, as the server rounds it."""
        ...

    def dep_available(self, name: str, version: tuple[str, str] | None) -> bool:
        """Whether ``all_debian_versions`` has ``source = name`` (and ``version <op> v``)."""
        ...

    def known_estimates(self) -> MutableMapping[EstimateKey, Estimate] | None:
        """Where to keep :func:`estimate`'s answers for later runs on the same
        data (``None``: nowhere). An estimate depends on the runs, the Debian
        versions, the candidate and the moment, never on the row order, so a
        backend whose data outlives one run can spare its reruns the work."""
        ...


# ------------------------------------------------------------ the formulas


def value_with_publish_bonus(value: int | None, policy: tuple[PolicyEntry, ...] | None) -> Any:
    """candidate.value + Σ PUBLISH_MODE_VALUE[mode] (spec §2), failing as the legacy does."""
    if policy is None:
        raise LegacyError("builtins.TypeError", "'NoneType' object is not iterable")
    total: Any = value
    for entry in policy:
        # ``value += PUBLISH_MODE_VALUE[mode]``: the lookup runs before the addition.
        bonus = PUBLISH_MODE_VALUE.get(entry.mode) if entry.mode is not None else None
        if bonus is None:
            raise LegacyError("builtins.KeyError", repr(entry.mode))
        if total is None:
            raise LegacyError(
                "builtins.TypeError", "unsupported operand type(s) for +=: 'NoneType' and 'int'"
            )
        total += bonus
    return total


def publish_bonus(policy: tuple[PolicyEntry, ...] | None) -> int | None:
    """The bonus alone, for reports; ``None`` where the legacy could not compute it."""
    if policy is None:
        return None
    total = 0
    for entry in policy:
        if entry.mode is None or entry.mode not in PUBLISH_MODE_VALUE:
            return None
        total += PUBLISH_MODE_VALUE[entry.mode]
    return total


class NormalizedValues:
    """Spec §3: ``min(value / max_value, 1.0)``, computed once per bulk run."""

    def __init__(self, rows: Sequence[tuple[str, int | None]]) -> None:
        self.values = {name: (value or 0) for name, value in rows}
        self.max_value: int | None = max(self.values.values()) if self.values else None

    def for_codebase(self, codebase: str) -> float:
        if self.max_value is None:
            return 1.0
        if self.max_value == 0:
            raise LegacyError("builtins.ZeroDivisionError", "division by zero")
        return min(self.values.get(codebase, 0.0) / self.max_value, 1.0)


def duration_cost(duration_us: int) -> float:
    """Estimated cost in ms; the sub-second part counts twice (spec §6 quirk)."""
    duration = timedelta(microseconds=duration_us)
    return MINIMUM_COST + (1000.0 * duration.total_seconds() + (duration.microseconds / 1000.0))


@dataclass(frozen=True, slots=True)
class Offset:
    offset: float
    cost: float
    worth: float
    ncv_effective: float
    cv_effective: float


def calculate_offset(
    *,
    duration_us: int,
    normalized_codebase_value: float | None,
    probability: float,
    candidate_value: Any,
    total_previous_runs: int,
    codebase: str,
    campaign: str,
) -> Offset:
    """Spec §6, in the legacy's evaluation order (the vectors match bit for bit)."""

    def fail(message: str) -> LegacyError:
        return LegacyError("builtins.AssertionError", f"During {campaign}/{codebase}: {message}")

    ncv = (
        DEFAULT_NORMALIZED_CODEBASE_VALUE
        if normalized_codebase_value is None
        else normalized_codebase_value
    )
    ncv = max(MINIMUM_NORMALIZED_CODEBASE_VALUE, ncv)
    if not ncv > 0.0:
        raise fail(f"normalized codebase value is {ncv}")
    if candidate_value is None:
        cv = 1.0
    elif total_previous_runs == 0:
        cv = candidate_value + FIRST_RUN_BONUS
    else:
        cv = candidate_value
    if not cv > 0.0:
        raise fail(f"candidate value is {cv}")
    if not (probability >= 0.0 and probability <= 1.0):
        raise fail(f"Probability of success: {probability}")
    cost = duration_cost(duration_us)
    if not cost > 0.0:
        raise fail(f"Estimated cost: {cost:f}")
    worth = ncv * probability * cv
    if not worth > 0.0:
        raise fail(
            f"Estimated value: normalized_codebase_value({ncv}) * "
            f"estimated_probability_of_success({probability}) * candidate_value({cv})"
        )
    offset = cost / worth
    if not offset > 0.0:
        raise LegacyError("builtins.AssertionError", "")
    return Offset(BULK_DEFAULT_OFFSET + offset, cost, worth, float(ncv), float(cv))


# ------------------------------------------------------- per-candidate estimate


#: What an estimate is asked of: codebase, campaign, context, now (µs).
EstimateKey = tuple[str, str, str | None, int]


@dataclass(frozen=True, slots=True)
class Estimate:
    probability: float
    duration_us: int
    total: int
    successes: int
    multiplier: float
    duration_source: str
    ignored_worker_failures: int
    deps_satisfied_runs: int
    #: a counted run had the candidate's context (what makes the multiplier ×0.1)
    same_context: bool = False


def deps_satisfied(data: LegacyData, relations: Any) -> bool:
    """Every alternatives-list has one available entry (legacy's ``deps_satisfied``)."""
    try:
        iterator = iter(relations)
    except TypeError:
        raise LegacyError(
            "builtins.TypeError", f"'{type(relations).__name__}' object is not iterable"
        ) from None
    for alternatives in iterator:
        if not isinstance(alternatives, list | tuple | str | dict):
            raise LegacyError(
                "builtins.TypeError", f"'{type(alternatives).__name__}' object is not iterable"
            )
        for entry in alternatives:
            if dep_entry_available(data, entry):
                break
        else:
            return False
    return True


_DEP_KEYWORDS = frozenset({"name", "archqual", "arch", "distribution", "version", "restrictions"})


def dep_entry_available(data: LegacyData, entry: Any) -> bool:
    """``dep_available(conn, **entry)``, including its argument errors."""
    if not isinstance(entry, dict):
        raise LegacyError(
            "builtins.TypeError",
            f"schedule.dep_available() argument after ** must be a mapping, not {type(entry).__name__}",
        )
    for key in entry:
        if key not in _DEP_KEYWORDS:
            raise LegacyError(
                "builtins.TypeError", f"dep_available() got an unexpected keyword argument {key!r}"
            )
    if "name" not in entry:
        raise LegacyError(
            "builtins.TypeError", "dep_available() missing 1 required positional argument: 'name'"
        )
    version = entry.get("version")
    constraint: tuple[str, str] | None = None
    if version:
        try:
            op, wanted = version[0], version[1]
        except (IndexError, KeyError, TypeError) as exc:
            raise LegacyError(f"builtins.{type(exc).__name__}", str(exc)) from None
        op = str(op)
        if op not in DEBVERSION_OPERATORS:
            raise undefined_operator(op)
        constraint = (op, str(wanted))
    return data.dep_available(entry["name"], constraint)


def estimate(
    data: LegacyData, codebase: str, campaign: str, context: str | None, now_us: int
) -> Estimate:
    """Spec §5: probability, duration and previous-run count for one candidate."""
    multiplier = 0.5 if context is None else 1.0
    total = success = ignored = deps_ok = 0
    matched = False
    durations: list[int | None] = []
    with_context = bool(context)
    # Unpacked in Run's field order: one step instead of six attribute reads
    # per run, and this loop sees every run of every candidate.
    for _, _, _, code, start, finish, _, instigated, run_context, details in data.runs(
        codebase, campaign
    ):
        if code == "worker-failure":
            if start is None:
                raise LegacyError(
                    "builtins.TypeError",
                    "unsupported operand type(s) for -: 'datetime.datetime' and 'NoneType'",
                )
            if now_us - start >= US_PER_DAY:  # timedelta.days > 0
                ignored += 1
                continue
        durations.append(None if start is None or finish is None else finish - start)
        total += 1
        if code == "success":
            success += 1
        same_context = with_context and context in (instigated, run_context)
        if code == "install-deps-unsatisfied-dependencies" and details:
            if not isinstance(details, dict):
                raise LegacyError(
                    "builtins.AttributeError",
                    f"'{type(details).__name__}' object has no attribute 'get'",
                )
            relations = details.get("relations")
            if relations and deps_satisfied(data, relations):
                success += 1
                deps_ok += 1
                same_context = False
        if same_context:
            multiplier = 0.1
            matched = True
    if total == 0:
        multiplier = 1.0
        duration_us = data.avg_duration_us(codebase=codebase)
        source = "average of the codebase's runs in all campaigns"
        if duration_us is None:
            duration_us = data.avg_duration_us(campaign=campaign)
            source = "average of the campaign's runs on all codebases"
        if duration_us is None:
            duration_us = DEFAULT_ESTIMATED_DURATION_US
            source = "default of 15 seconds"
    else:
        if None in durations:
            raise LegacyError(
                "builtins.AttributeError", "'NoneType' object has no attribute 'total_seconds'"
            )
        seconds = 0.0
        for span in cast(list[int], durations):  # no None: checked above
            seconds += span / 1_000_000  # timedelta.total_seconds(), summed newest first
        duration_us = timedelta_to_us(timedelta(seconds=seconds / len(durations)))
        source = f"mean of {total} runs"
    probability = (success * 10 + 1) / (total * 10 + 1) * multiplier
    return Estimate(
        probability, duration_us, total, success, multiplier, source, ignored, deps_ok, matched
    )


# ----------------------------------------------------------------- the run


def _multiplier_reason(multiplier: float, context: str | None) -> str:
    if multiplier == 0.1:
        return "×0.1: a previous run had the same context"
    if multiplier == 0.5:
        return "×0.5: the candidate has no context"
    return "×1.0"


def decide_all(
    data: LegacyData, now_us: int, queue: QueueSimulator
) -> tuple[list[Decision], ErrorInfo | None, int | None]:
    """Process every candidate row as the bulk run does; errors are recorded, not raised.

    Returns the decisions, the first error (where the real legacy stopped)
    and the index of the candidate that raised it.
    """
    decisions: list[Decision] = []
    first_error: tuple[ErrorInfo, int] | None = None
    rows = data.candidate_rows()
    normalized: NormalizedValues | None = None
    known = data.known_estimates()
    for index, row in enumerate(rows):
        base: dict[str, Any] = {
            "codebase": row.codebase,
            "campaign": row.campaign,
            "change_set": row.change_set,
            "context": row.context,
            "command": row.command,
            "candidate_value": row.value,
            "publish_bonus": publish_bonus(row.per_branch_policy),
        }
        try:
            value = value_with_publish_bonus(row.value, row.per_branch_policy)
        except LegacyError as exc:
            error = exc.info(PHASE_ITEM)
            decisions.append(Decision(**base, error=error, reasons=(_legacy_raises(error),)))
            first_error = first_error or (error, index)
            continue
        base["value"] = value
        if normalized is None:
            normalized = NormalizedValues(data.codebase_values())
        try:
            ncv = normalized.for_codebase(row.codebase)
        except LegacyError as exc:
            error = exc.info(PHASE_BULK)
            decisions.append(Decision(**base, error=error, reasons=(_legacy_raises(error),)))
            first_error = first_error or (error, index)
            continue
        base["normalized_codebase_value"] = ncv
        try:
            decision = _schedule_regular(data, row, value, ncv, now_us, queue, base, known)
        except LegacyError as exc:
            error = exc.info(PHASE_SCHEDULE)
            decisions.append(Decision(**base, error=error, reasons=(_legacy_raises(error),)))
            first_error = first_error or (error, index)
            continue
        decisions.append(decision)
    if first_error is None:
        return decisions, None, None
    return decisions, first_error[0], first_error[1]


def _legacy_raises(error: ErrorInfo) -> str:
    return (
        f"the legacy raises {error.type}: {error.message.splitlines()[0] if error.message else ''}"
    )


def _schedule_regular(
    data: LegacyData,
    row: CandidateRow,
    value: Any,
    ncv: float,
    now_us: int,
    queue: QueueSimulator,
    base: dict[str, Any],
    known: MutableMapping[EstimateKey, Estimate] | None = None,
) -> Decision:
    """``do_schedule_regular`` for one work item (spec §4–7); ``known``: the
    estimates of earlier runs on the same data (:meth:`LegacyData.known_estimates`)."""
    candidate_value, success_chance = value, row.success_chance
    context, command = row.context, row.command
    reasons: list[str] = []
    if candidate_value is None or success_chance is None or command is None:
        reread = data.reread_candidate(row.codebase, row.campaign)
        if reread is None:
            raise LegacyError(
                "janitor.schedule.CandidateUnavailable", repr((row.campaign, row.codebase))
            )
        reasons.append("re-read the candidate row without change set (a field was NULL)")
        if candidate_value is None:
            candidate_value = reread.value
        if success_chance is None:
            success_chance = reread.success_chance
        if context is None:
            context = reread.context
        if command is None:
            command = reread.command
    base.update(context=context, command=command)
    key = (row.codebase, row.campaign, context, now_us)
    est = None if known is None else known.get(key)
    if est is None:
        est = estimate(data, row.codebase, row.campaign, context, now_us)
        if known is not None:  # an estimate that raised is asked again: it raises again
            known[key] = est
    if est.duration_us < 0:
        raise LegacyError(
            "builtins.AssertionError",
            f"{row.codebase}: estimated duration < 0.0: {timedelta(microseconds=est.duration_us)!r}",
        )
    off = calculate_offset(
        duration_us=est.duration_us,
        normalized_codebase_value=ncv,
        probability=est.probability,
        candidate_value=candidate_value,
        total_previous_runs=est.total,
        codebase=row.codebase,
        campaign=row.campaign,
    )
    if not command:
        raise LegacyError("builtins.AssertionError", "")
    try:
        _, bucket, priority = queue.add(
            codebase=row.codebase,
            campaign=row.campaign,
            command=command,
            offset=off.offset,
            bucket="default",
            context=context,
            estimated_duration_us=est.duration_us,
            refresh=False,
            requester="scheduler",
            change_set=None,  # the bulk run never queues a change set
        )
    except QueueOverflow as exc:
        raise LegacyError(
            "asyncpg.exceptions.NumericValueOutOfRangeError", str(exc), sqlstate="22003"
        ) from None
    first_run = FIRST_RUN_BONUS if est.total == 0 and candidate_value is not None else 0.0
    reasons.extend(
        [
            f"value {candidate_value} = candidate value {row.value} + publish bonus "
            f"{base['publish_bonus']}"
            + (f", +{FIRST_RUN_BONUS:g} first-run bonus (no previous runs)" if first_run else ""),
            f"normalized codebase value {ncv:.6g} (floored at 0.1) → {off.ncv_effective:.6g}",
            f"probability ({est.successes}×10+1)/({est.total}×10+1) "
            + _multiplier_reason(est.multiplier, context),
            f"duration: {est.duration_source}",
            f"offset = cost {off.cost:.6g} / worth {off.worth:.6g}; queued at priority {priority}",
        ]
    )
    factors = {
        "cost": off.cost,
        "worth": off.worth,
        "normalized_codebase_value_effective": off.ncv_effective,
        "candidate_value_effective": off.cv_effective,
        "success_probability": est.probability,
        "successes": est.successes,
        "context_multiplier": est.multiplier,
        "ignored_worker_failures": est.ignored_worker_failures,
        "deps_satisfied_runs": est.deps_satisfied_runs,
        "same_context": est.same_context,
        "success_chance": success_chance,
        "priority": priority,
    }
    return Decision(
        **base,
        first_run_bonus=first_run,
        success_probability=est.probability,
        estimated_duration_us=est.duration_us,
        total_previous_runs=est.total,
        offset=off.offset,
        bucket=bucket,
        factors=factors,
        reasons=tuple(reasons),
    )


def run_legacy(
    data: LegacyData,
    dataset: Dataset,
    *,
    engine_name: str,
    backend: str,
) -> Schedule:
    """A whole bulk run on ``data``, starting from ``dataset``'s queue, at ``dataset.as_of``."""
    started = time.perf_counter()
    queue = QueueSimulator(dataset.queue)
    decisions, first_error, error_index = decide_all(data, dataset.as_of_us, queue)
    elapsed = time.perf_counter() - started
    notes = []
    if first_error is not None and error_index is not None:
        failed = decisions[error_index]
        errors = sum(1 for d in decisions if d.error is not None)
        notes.append(
            f"the real legacy would have stopped at candidate #{error_index} "
            f"({failed.key.label()}: {first_error.type}); this port recorded "
            f"{errors} failing candidate(s) and went on"
        )
    return Schedule(
        engine=engine_name,
        profile=backend,
        settings={
            "backend": backend,
            "first_run_bonus": FIRST_RUN_BONUS,
            "default_estimated_duration_seconds": DEFAULT_ESTIMATED_DURATION_US / 1e6,
            "minimum_cost_ms": MINIMUM_COST,
            "publish_mode_value": dict(PUBLISH_MODE_VALUE),
            "bulk_default_offset": BULK_DEFAULT_OFFSET,
        },
        as_of=dataset.as_of,
        decisions=decisions,
        queue=queue.rows(),
        timings={"schedule_seconds": elapsed},
        provenance=dataset.provenance,
        notes=notes,
    )
