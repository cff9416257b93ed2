"""Read-only queries for people (`screensync query`): never takes the writer's place, and never
reaches past the warehouse.

A read-only open still needs the file to be free (DuckDB keeps other processes out while a
sync writes), so it waits briefly and then says so rather than hanging.

The connection is confined at startup: no file access (read_text/read_csv/glob, COPY, EXPORT,
ATTACH of another database), no extension install or load, and the configuration locked so no
statement can turn any of it back on. The key file, the credential store and every other file
on the machine stay out of reach of whatever SQL is typed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from warehouse.connection import WarehouseError, connect

READER_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "lock_configuration": True,  # last: nothing above can be SET or RESET afterwards
}
_CONFINED = "screensync query reads only the warehouse: files, other databases, extensions and settings are off"


def run_query(
    path: str | Path, sql: str, *, limit: int = 50, timeout: float = 10.0
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `sql` on a confined read-only connection; returns (column names, up to `limit` rows)."""
    if not sql.strip():
        raise WarehouseError("empty query")
    if limit < 0:
        raise WarehouseError(f"limit must be >= 0, got {limit}")
    con = connect(path, read_only=True, timeout=timeout, config=READER_CONFIG)
    try:
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
    finally:
        con.close()
