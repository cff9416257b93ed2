"""Reading the warehouse while syncs and webhooks write it: open, query, close.

For analysts in Python (docs/analysts.md) and for screensync's own readers (`screensync query`,
`status`, `rejects list`, the demo). On the embedded file each call takes the warehouse's shared
lock, opens the file read-only, runs the query, fetches the result and closes the file, so a writer
is never kept out for longer than the query: a notebook should use these, not a `duckdb.connect` it
keeps open. On a DuckLake (`SCREENSYNC_WAREHOUSE=ducklake:postgres://...`) the same calls attach it
read-only and read the last committed snapshot: they never wait for a writer.

    from warehouse.read import query, query_arrow
    rows = query("SELECT status, count(*) FROM unified.background_checks GROUP BY ALL")
    table = query_arrow("SELECT * FROM checkr.reports")          # .to_pandas() if pandas is installed

Every reader is confined: no file access (read_text/read_csv/glob, COPY, EXPORT, ATTACH of
another database; on a lake, nothing but its data files), no extension install or load, and the
configuration locked so no statement can turn any of it back on. (One configuration for every reader also lets several of them share
one DuckDB instance in a process.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from warehouse.backend import open_backend

READER_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "lock_configuration": True,  # last: nothing above can be SET or RESET afterwards
}
DEFAULT_TIMEOUT_S = 10.0


def _target(path: str | Path | None) -> str | Path:
    if path is not None:
        return path
    from common.settings import warehouse_setting

    return warehouse_setting()


@contextmanager
def read_session(path: str | Path | None = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """A confined read-only connection for several queries; on the file, writers wait until the
    block ends, so keep it short. `path`: a file or a DuckLake URL (default SCREENSYNC_WAREHOUSE)."""
    with open_backend(_target(path)).reading(timeout=timeout, config=READER_CONFIG) as con:
        yield con


def warehouse_exists(path: str | Path | None = None) -> bool:
    """Is there a warehouse to read yet (a file that exists; a lake always is)?"""
    return open_backend(_target(path)).exists()


def query(
    sql: str, params: list[Any] | dict[str, Any] | None = None, *, path: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> list[tuple[Any, ...]]:
    """All rows of `sql` (default warehouse: SCREENSYNC_WAREHOUSE); waits at most `timeout` s for a write."""
    with read_session(path, timeout=timeout) as con:
        return con.execute(sql, params).fetchall()


def query_arrow(
    sql: str, params: list[Any] | dict[str, Any] | None = None, *, path: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> pa.Table:
    """The result as an Arrow table (fetched before the file is closed)."""
    with read_session(path, timeout=timeout) as con:
        return con.execute(sql, params).to_arrow_table()
