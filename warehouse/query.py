"""Read-only queries for people (`screensync query`): never takes the writer's place, and never
reaches past the warehouse.

It waits for at most the write transaction in progress (warehouse/access.py), then answers; a
process outside screensync holding the file open makes it wait briefly and then say so.

The connection is confined (warehouse/read.py): the key file, the credential store and every
other file on the machine stay out of reach of whatever SQL is typed here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb

from warehouse.connection import WarehouseError
from warehouse.read import read_session

_CONFINED = "screensync query reads only the warehouse: files, other databases, extensions and settings are off"


def run_query(
    path: str | Path, sql: str, *, limit: int = 50, timeout: float = 10.0, timings: dict[str, float] | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `sql` on a confined read-only connection; returns (column names, up to `limit` rows).
    `timings`, when given, gets `open_s`: how long the connection took (waiting for a writer included)."""
    if not sql.strip():
        raise WarehouseError("empty query")
    if limit < 0:
        raise WarehouseError(f"limit must be >= 0, got {limit}")
    started = time.monotonic()
    with read_session(path, timeout=timeout) as con:
        if timings is not None:
            timings["open_s"] = time.monotonic() - started
        try:
            cur = con.execute(sql)
        except duckdb.PermissionException as exc:
            raise WarehouseError(f"query refused: {_CONFINED} ({exc})") from None
        except duckdb.Error as exc:
            if "configuration has been locked" in str(exc):
                raise WarehouseError(f"query refused: {_CONFINED} ({exc})") from None
            raise WarehouseError(f"query failed: {exc}") from exc
        if cur.description is None:
            return [], []
        columns = [d[0] for d in cur.description]
        return columns, cur.fetchmany(limit)
