"""Connections to a live Janitor database: read only, one consistent snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from harness.errors import SourceError


@contextmanager
def read_only_connection(dsn: str) -> Iterator[psycopg.Connection]:
    """A connection whose queries all run in one READ ONLY REPEATABLE READ transaction.

    Every aggregate query then sees the same snapshot of the database, and
    nothing the engine does can write to it. The transaction is rolled back
    at the end (there is nothing to commit).
    """
    try:
        conn = psycopg.connect(dsn, autocommit=False)
    except psycopg.Error as exc:
        raise SourceError(f"cannot connect to the database: {exc}".strip()) from exc
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        yield conn
    except psycopg.Error as exc:
        raise SourceError(f"database query failed: {exc}".strip()) from exc
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()
