"""Read-only queries for people (`screensync query`): never takes the writer's place.

A read-only open still needs the file to be free (DuckDB keeps other processes out while a
sync writes), so it waits briefly and then says so rather than hanging.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from warehouse.connection import WarehouseError, connect


def run_query(
    path: str | Path, sql: str, *, limit: int = 50, timeout: float = 10.0
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `sql` on a read-only connection; returns (column names, up to `limit` rows)."""
    if not sql.strip():
        raise WarehouseError("empty query")
    if limit < 0:
        raise WarehouseError(f"limit must be >= 0, got {limit}")
    con = connect(path, read_only=True, timeout=timeout)
    try:
        try:
            cur = con.execute(sql)
        except duckdb.Error as exc:
            raise WarehouseError(f"query failed: {exc}") from exc
        if cur.description is None:
            return [], []
        columns = [d[0] for d in cur.description]
        return columns, cur.fetchmany(limit)
    finally:
        con.close()
