"""Open a DuckDB file, waiting politely when another process holds it.

DuckDB lets one process write a file and keeps every other process out (even readers)
while it is open, so a scheduled sync that starts while an analyst's notebook holds the
file must wait a bounded time and then fail with a message that says which file and why.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import duckdb

from screensync.private_files import make_private

log = logging.getLogger("screensync.warehouse")

_LOCK_MARKERS = ("could not set lock", "conflicting lock")


class WarehouseError(Exception):
    """Base class for warehouse errors the engine and CLI report to people."""


class WarehouseLocked(WarehouseError):
    """Another process kept the warehouse file open for longer than we were willing to wait."""

    def __init__(self, path: Path, waited_s: float, detail: str) -> None:
        self.path = path
        self.waited_s = waited_s
        super().__init__(
            f"warehouse file {path} is locked by another process (waited {waited_s:.1f}s): {detail}. "
            "DuckDB allows one process per file; close other sessions (notebooks, `duckdb` CLI) or retry later."
        )


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return any(m in text for m in _LOCK_MARKERS)


def _lock_detail(exc: duckdb.Error) -> str:
    """The holder's process name/PID from DuckDB's message, without the docs link noise."""
    text = str(exc)
    start = text.find("Conflicting lock")
    detail = text[start:] if start >= 0 else text
    return detail.split(". See also")[0].strip().rstrip(".")


# names DuckDB keeps for itself: a file called e.g. `memory.duckdb` is attached under another name
_RESERVED_CATALOGS = {"memory", "temp", "system", "main"}


def _open(
    path: Path, read_only: bool, row_group_size: int | None, config: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    if read_only or row_group_size is None:
        return duckdb.connect(str(path), read_only=read_only, config=config or {})
    # ROW_GROUP_SIZE is an ATTACH option only: the file is attached to an in-memory session and
    # made the default catalog, named after the file as a plain `duckdb.connect(path)` would.
    con = duckdb.connect()
    try:
        stem = path.stem if path.stem.lower() not in _RESERVED_CATALOGS else f"{path.stem}_warehouse"
        alias = stem.replace('"', '""')
        quoted = str(path).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS \"{alias}\" (ROW_GROUP_SIZE {int(row_group_size)})")
        con.execute(f'USE "{alias}"')
    except BaseException:
        con.close()
        raise
    return con


def connect(
    path: str | Path,
    *,
    read_only: bool = False,
    timeout: float = 30.0,
    initial_delay: float = 0.05,
    max_delay: float = 2.0,
    row_group_size: int | None = None,
    config: dict[str, Any] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Connect, retrying lock conflicts with exponential backoff + jitter until `timeout`.

    `row_group_size` (writers only) sets the size of the row groups new rows are written in;
    `config` (readers) is DuckDB's startup configuration (warehouse/query.py confines readers).
    """
    path = Path(path)
    if read_only and not path.exists():
        raise WarehouseError(f"warehouse file {path} does not exist yet; run a sync first")
    created = not read_only and not path.exists()
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    delay = initial_delay
    warned = False
    while True:
        try:
            con = _open(path, read_only, row_group_size, config)
            if created:  # customer data: owner-only, whatever the caller's umask
                make_private(path, Path(f"{path}.wal"))
            return con
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            now = time.monotonic()
            if now >= deadline:
                raise WarehouseLocked(path, now - started, _lock_detail(exc)) from exc
            if not warned:
                log.warning(
                    "warehouse %s is locked by another process; retrying for up to %.0fs (%s)",
                    path,
                    timeout,
                    _lock_detail(exc),
                )
                warned = True
            sleep = min(delay, max_delay) * random.uniform(0.5, 1.5)
            time.sleep(max(0.0, min(sleep, deadline - now)))
            delay *= 2
