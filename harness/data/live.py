"""The live reader's former home: everything now lives in :mod:`harness.data.janitor_db`.

Kept so that ``from harness.data.live import read_dataset`` (tests, benchmarks,
other people's scripts) goes on working.
"""

from __future__ import annotations

from harness.data.janitor_db import (
    QUEUE_COLUMNS,
    RUN_BATCH,
    connect_read_only,
    queue_item_from_row,
    read_dataset,
    redact_dsn,
)

__all__ = [
    "QUEUE_COLUMNS",
    "RUN_BATCH",
    "connect_read_only",
    "queue_item_from_row",
    "read_dataset",
    "redact_dsn",
]
