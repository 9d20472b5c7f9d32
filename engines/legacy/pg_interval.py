"""PostgreSQL 15's ``AVG(interval)`` reproduced in Python, to the microsecond.

The legacy asks the database for ``AVG(finish_time - start_time)``; a backend
that computes it itself must round exactly as the server does:

* ``timestamp - timestamp`` yields an interval whose whole 24-hour days are
  moved into the days field (``interval_justify_hours``);
* ``AVG`` sums the month, day and microsecond fields separately, then divides
  the sum by the count as a double (``interval_div``): the day quotient is
  truncated, its fraction turned into seconds rounded to the microsecond
  (``TSROUND``), and the time field becomes ``rint(time / n + seconds * 1e6)``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence

import numpy as np

US_PER_DAY = 86_400_000_000
SECS_PER_DAY = 86_400.0


def subtract_timestamps(finish_us: int, start_us: int) -> tuple[int, int]:
    """``finish - start`` as PostgreSQL's (days, microseconds) interval fields."""
    span = finish_us - start_us
    days = span // US_PER_DAY if span >= 0 else -(-span // US_PER_DAY)  # C truncation
    return days, span - days * US_PER_DAY


def _tsround(value: float) -> float:
    return round(value * 1_000_000.0) / 1_000_000.0


class IntervalSum:
    """Running state of ``AVG(interval)``: field-wise sums and a count."""

    __slots__ = ("count", "days", "time")

    def __init__(self) -> None:
        self.days = 0
        self.time = 0
        self.count = 0

    def add_span(self, finish_us: int, start_us: int) -> None:
        days, time = subtract_timestamps(finish_us, start_us)
        self.days += days
        self.time += time
        self.count += 1

    def add_spans(self, spans: Sequence[int]) -> None:
        """:meth:`add_span` for many ``finish - start`` differences at once: the
        same integer fields, summed by numpy (a campaign's average reads
        hundreds of thousands of runs). Spans beyond int64 take the slow path."""
        try:
            span = np.asarray(spans, dtype=np.int64)
        except OverflowError:
            for one in spans:
                self.add_span(one, 0)
            return
        days, time = interval_fields(span)
        self.days += sum(days.tolist())  # Python ints: no overflow whatever the count
        self.time += sum(time.tolist())
        self.count += len(span)

    def average_us(self) -> int | None:
        """The average as total microseconds, or ``None`` for no rows (SQL NULL)."""
        if self.count == 0:
            return None
        factor = float(self.count)
        # interval_div with month = 0
        result_day = int(self.days / factor)
        sec_remainder = _tsround((self.days / factor - result_day) * SECS_PER_DAY)
        if abs(sec_remainder) >= SECS_PER_DAY:
            whole = int(sec_remainder / SECS_PER_DAY)
            result_day += whole
            sec_remainder -= whole * SECS_PER_DAY
        result_time = round(float(self.time) / factor + sec_remainder * 1_000_000.0)
        return result_day * US_PER_DAY + result_time


def average_interval_us(spans: Iterable[tuple[int, int]]) -> int | None:
    """AVG over (finish_us, start_us) pairs, as PostgreSQL 15 computes it."""
    total = IntervalSum()
    for finish_us, start_us in spans:
        total.add_span(finish_us, start_us)
    return total.average_us()


def interval_fields(span: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``finish - start`` as PostgreSQL's (days, µs) interval fields (C truncation)."""
    if len(span) == 0 or span.min() >= 0:  # the usual case: floor and truncation agree
        days = span // US_PER_DAY
    else:
        days = np.where(span >= 0, span // US_PER_DAY, -((-span) // US_PER_DAY))
    return days, span - days * US_PER_DAY


def average_of_sums(days: int, time: int, count: int) -> int | None:
    """AVG from its field sums: what the grouped sums below are turned into."""
    total = IntervalSum()
    total.days, total.time, total.count = days, time, count
    return total.average_us()


def grouped_averages(
    group: np.ndarray, days: np.ndarray, time: np.ndarray, mask: np.ndarray, names: list[str]
) -> Mapping[str, int | None]:
    """Exact integer field sums per group, then PostgreSQL's AVG (on first look-up).

    ``np.bincount`` sums in floats, exact below 2**53: the µs field is split
    into 20-bit halves whose sums stay far below that, and joined again as
    Python integers when a name is looked up.
    """
    size = len(names)
    group, days, time = group[mask], days[mask], time[mask]
    counts = np.bincount(group, minlength=size)
    present = np.flatnonzero(counts)
    day_sums = np.bincount(group, weights=days, minlength=size)[present]
    high_sums = np.bincount(group, weights=time >> 20, minlength=size)[present]
    low_sums = np.bincount(group, weights=time & 0xFFFFF, minlength=size)[present]
    run_counts = counts[present]
    position = {names[i]: j for j, i in enumerate(present.tolist())}

    def fields(name: str) -> tuple[int, int, int]:
        j = position[name]
        return int(day_sums[j]), (int(high_sums[j]) << 20) + int(low_sums[j]), int(run_counts[j])

    return LazyAverages(position, fields)


def codebase_and_campaign_averages(
    span: np.ndarray,
    timed: np.ndarray,
    codebase: np.ndarray,
    campaign: np.ndarray,
    codebase_names: list[str],
    campaign_names: list[str],
) -> tuple[Mapping[str, int | None], Mapping[str, int | None]]:
    """``AVG(finish_time - start_time)`` per codebase and per campaign, as the
    legacy's fallbacks ask PostgreSQL: of the ``timed`` runs' spans (µs), each
    run's codebase and campaign given as codes into the name lists."""
    days, time = interval_fields(np.where(timed, span, 0))
    return (
        grouped_averages(codebase, days, time, timed, codebase_names),
        grouped_averages(campaign, days, time, timed, campaign_names),
    )


class LazyAverages(Mapping[str, "int | None"]):
    """Name → PostgreSQL ``AVG(interval)`` in µs, converted when first asked for.

    Only candidates without counted runs fall back to these averages; turning
    every codebase's sums into intervals up front cost more than the rest of
    the aggregation. ``fields(name)`` gives the exact (days, µs, count) sums of
    the name's runs, or raises KeyError for a name without runs.
    """

    def __init__(
        self, names: Collection[str], fields: Callable[[str], tuple[int, int, int]]
    ) -> None:
        self._names = names
        self._fields = fields
        self._done: dict[str, int | None] = {}

    def __getitem__(self, name: str) -> int | None:
        try:
            return self._done[name]
        except KeyError:
            value = self._done[name] = average_of_sums(*self._fields(name))
            return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
