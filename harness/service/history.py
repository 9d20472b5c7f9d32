"""The service's history: one JSON object per cycle, one line each, in a state directory.

JSON Lines because an operator can ``tail``/``jq`` it, and because a line is
appended with a single ``write`` followed by ``fsync``: a service killed at
any moment leaves at worst an incomplete *last* line, which
:func:`read_history` skips (and says so) instead of failing. Pruning rewrites
the file to a temporary name and renames it over the old one, so a reader
sees either the old history or the new one, never a mixture.

Record fields (``version`` 1; absent or ``null`` when the cycle did not get
that far):

``cycle``
    sequence number, counting on from the history's last record;
``started_at``/``finished_at``
    ISO 8601, UTC;
``status``
    ``ok`` (both engines ran or the legacy ran and the new engine's failure
    was caught), ``failed`` (the cycle could not complete: database gone,
    …), ``abandoned`` (stopped by SIGTERM before completing; nothing was
    written but this record);
``phase``/``error``
    where and why a cycle failed or was abandoned (passwords scrubbed);
``source``/``as_of``/``snapshot_id``
    the database (without password), the snapshot's transaction time and
    its exported snapshot id when the reader gives one;
``candidates``, ``durations`` (seconds per phase: ``read_s``, ``engines_s``
    — of which ``legacy_s``, ``new_s``, ``compare_s`` —, ``production_s``,
    ``enqueue_s``, ``total``, and ``cpu``: the service's own CPU seconds,
    which a loaded machine does not inflate),
``new_error`` (the new engine's exception, caught), ``decision_errors``
    (per engine, candidates it raised on);
``comparison_error``
    the comparator's exception, if it raised (the cycle still counts);
``divergences``
    the comparator's candidate counts: ``real``, ``noise``, ``waived``,
    ``missing``, ``extra``, ``error_mismatches``, and its ``verdict``;
``fields``
    field → divergent candidates (real + waived + noise), numeric fields and
    the ``structure`` fields, non-zero ones only;
``campaigns``
    campaign → ``{"divergent": n, "real": n, "candidates": n}``, campaigns with
    a divergence only;
``rank``
    legacy queue against the new engine's: ``kendall_tau_b``, ``spearman``,
    ``rbo``, ``common``, ``only_legacy``, ``only_new``, ``moved``;
``production``
    the queue production holds against the new engine's queue: the same
    measures (``only_production``/``only_new``), plus ``production_queue``
    and ``new_queue`` sizes and ``top_k`` overlaps;
``enqueue``
    what was written where (when enqueue is on);
``rss_bytes``
    the service's resident memory after the cycle.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from harness.data.atomic import atomic_file
from harness.errors import InputError

log = logging.getLogger("harness.service")

HISTORY_VERSION = 1


@dataclass(frozen=True)
class History:
    """The records of a history file, and how many unreadable lines were skipped."""

    records: tuple[dict[str, Any], ...]
    skipped: int = 0


def read_history(path: str | os.PathLike[str], *, last: int | None = None) -> History:
    """Every record of ``path`` (or its ``last`` ones), oldest first.

    An incomplete last line (a write cut short) is skipped; a bad line
    elsewhere means the file is not a history: :class:`InputError` naming it.
    """
    file = Path(path)
    if not file.exists():
        raise InputError("no such history file", file=str(file))
    records: list[dict[str, Any]] = []
    pending: int | None = None  # an unparseable line: fine only if it is the last
    with file.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if pending is not None:
                raise InputError("not a JSON object", file=str(file), record=pending)
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                if line.endswith(b"\n"):
                    raise InputError("not a JSON object", file=str(file), record=number) from None
                pending = number
                continue
            if not isinstance(record, dict) or "cycle" not in record or "status" not in record:
                raise InputError("not a shadow-service cycle record", file=str(file), record=number)
            records.append(record)
            if last is not None and len(records) > 2 * last:
                del records[:-last]
    if pending is not None:
        log.warning("%s: skipped an incomplete last line (line %d)", file, pending)
    if last is not None:
        records = records[-last:]
    return History(tuple(records), 0 if pending is None else 1)


def last_cycle(path: Path) -> int:
    """The last record's cycle number (0 without history)."""
    if not path.exists():
        return 0
    records = read_history(path, last=1).records
    return int(records[-1]["cycle"]) if records else 0


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one record as one line with one ``write``, then ``fsync``."""
    data = orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        _repair_tail(fd)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _repair_tail(fd: int) -> None:
    """Make the file end with a newline before the next record: a last line cut
    short is cut off; a whole record that lost only its newline is kept."""
    size = os.fstat(fd).st_size
    if not size or os.pread(fd, 1, size - 1) == b"\n":
        return
    end = size
    while end > 0:
        start = max(0, end - 65536)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    try:
        orjson.loads(os.pread(fd, size - end, end))
    except orjson.JSONDecodeError:
        os.ftruncate(fd, end)
    else:
        os.write(fd, b"\n")


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def prune(
    path: Path,
    *,
    max_age_s: float | None,
    max_records: int | None,
    now: datetime | None = None,
) -> int:
    """Drop records older than ``max_age_s`` and all but the last ``max_records``;
    the number dropped. The file is replaced atomically, and only when
    something is dropped."""
    if not path.exists() or (max_age_s is None and max_records is None):
        return 0
    history = read_history(path)
    records = list(history.records)
    kept = records
    if max_age_s is not None:
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=max_age_s)
        kept = [
            r
            for r in kept
            if (moment := _parse_time(str(r.get("started_at")))) is None or moment >= cutoff
        ]
    if max_records is not None and len(kept) > max_records:
        kept = kept[-max_records:]
    dropped = len(records) - len(kept)
    if dropped == 0 and history.skipped == 0:
        return 0
    with atomic_file(path) as out:  # a reader sees the old history or the new one
        for record in kept:
            out.write(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
        out.flush()
        os.fsync(out.fileno())  # weeks of history: worth a sync, unlike a report
    return dropped


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
