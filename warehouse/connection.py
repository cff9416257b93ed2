"""Open the DuckDB file itself, waiting politely when a process outside screensync holds it.

Every screensync process takes the warehouse's readers-writer lock first (warehouse/rwlock.py), so
between them DuckDB's own file lock is always free. A process that does not take it (a notebook
or the `duckdb` CLI holding the file open) still keeps everyone else out, readers too: opening
then retries with backoff for a bounded time and fails with a message naming the holder.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from common.private_files import make_private

log = logging.getLogger("screensync.warehouse")

_LOCK_MARKERS = ("could not set lock", "conflicting lock")
T = TypeVar("T")


class WarehouseError(Exception):
    """Base class for warehouse errors the engine and CLI report to people."""


class WarehouseLocked(WarehouseError):
    """Another process kept the warehouse for longer than we were willing to wait."""

    def __init__(self, path: Path, waited_s: float, detail: str) -> None:
        self.path = path
        self.waited_s = waited_s
        self.detail = detail
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


def catalog_name(path: Path) -> str:
    """The name the file is attached under: its stem, as a plain `duckdb.connect(path)` would use."""
    return path.stem if path.stem.lower() not in _RESERVED_CATALOGS else f"{path.stem}_warehouse"


def _retrying(path: Path, deadline: float, open_once: Callable[[], T]) -> T:
    """`open_once()`, retrying DuckDB's lock conflicts with exponential backoff + jitter until `deadline`."""
    started = time.monotonic()
    delay = 0.05
    warned = False
    while True:
        try:
            return open_once()
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            now = time.monotonic()
            if now >= deadline:
                raise WarehouseLocked(path, now - started, _lock_detail(exc)) from exc
            if not warned:
                log.warning("warehouse %s is held open by a process outside screensync; retrying for up to %.0fs (%s)",
                            path, deadline - started, _lock_detail(exc))
                warned = True
            time.sleep(max(0.0, min(min(delay, 2.0) * random.uniform(0.5, 1.5), deadline - now)))
            delay *= 2


def attach_writer(
    con: duckdb.DuckDBPyConnection, path: Path, *, row_group_size: int, deadline: float
) -> tuple[str, bool]:
    """Attach `path` for writing to the in-memory session `con` and make it the default catalog;
    returns (the name it is attached under, whether the file was created now).

    ROW_GROUP_SIZE is an ATTACH option only, hence an in-memory session rather than
    `duckdb.connect(path)`; attaching again to the same session is also ~3x cheaper than a new one."""
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    alias = catalog_name(path)
    quoted_alias = alias.replace('"', '""')
    quoted_path = str(path).replace("'", "''")

    def attach() -> str:
        con.execute(f"ATTACH '{quoted_path}' AS \"{quoted_alias}\" (ROW_GROUP_SIZE {int(row_group_size)})")
        con.execute(f'USE "{quoted_alias}"')
        return alias

    _retrying(path, deadline, attach)
    if created:  # customer data: owner-only, whatever the caller's umask
        make_private(path, wal_path(path))
    return alias, created


def wal_path(path: Path) -> Path:
    return Path(f"{path}.wal")


def wal_bytes(path: Path) -> int:
    """The size of the file's write-ahead log (0 when it has none)."""
    try:
        return wal_path(path).stat().st_size
    except FileNotFoundError:
        return 0


# What the checkpoint at detach may use. DuckDB keeps rows UPDATEd since the last checkpoint in
# memory and pins them to write them out: a held writer's updates of wide records (bench/
# warehouse_load.py --wide: 3,000 of them) made the detach's checkpoint fail within the writes' 48 MB,
# invalidating the session (its WAL was replayed at the next attach; nothing was lost, but every
# such detach cost a failed checkpoint and a reopen). Only the checkpoint gets more.
CHECKPOINT_MEMORY = os.environ.get("SCREENSYNC_WAREHOUSE_CHECKPOINT_MEMORY", "256MB")


def detach_writer(con: duckdb.DuckDBPyConnection, alias: str, *, memory_limit: str | None = None,
                  vacuum_memory: str | None = None) -> bool:
    """Detach (DuckDB checkpoints the file and lets go of it), the checkpoint allowed CHECKPOINT_MEMORY;
    `memory_limit` (the session's, as SET) is put back after. `vacuum_memory`: vacuum first, in a
    checkpoint of its own within that limit (`_vacuum`; warehouse/vacuum_copy.py does so on a copy).
    False when that was too little for the vacuum: the file is detached all the same, nothing lost."""
    con.execute("USE memory")
    if memory_limit:
        con.execute(f"SET memory_limit = '{CHECKPOINT_MEMORY}'")
    vacuumed = True
    try:
        if vacuum_memory:
            vacuumed = _vacuum(con, alias, vacuum_memory)
        con.execute(f'DETACH "{_quoted(alias)}"')
    finally:
        if memory_limit:
            con.execute(f"SET memory_limit = {memory_limit}")
    return vacuumed


# A vacuum reads every small row group of every table, and DuckDB keeps what it reads cached up to
# its memory limit, so it runs in a checkpoint of its own within a small one (warehouse/vacuum_copy.py
# VACUUM_MEMORY_STEPS says how small, and what was measured).
VACUUM_MARK = "_screensync.vacuumed"


def _vacuum(con: duckdb.DuckDBPyConnection, alias: str, vacuum_memory: str) -> bool:
    """Checkpoint what is pending without vacuuming (rows UPDATEd since the last checkpoint may need
    CHECKPOINT_MEMORY), then merge the small row groups in a checkpoint within `vacuum_memory`.
    DuckDB skips a checkpoint with nothing to write, so the second one is given a one-row change
    (VACUUM_MARK: when the file was last vacuumed). A vacuum that runs out of memory invalidates
    the attached file in DuckDB, and detaching it is all that is left to do: False (vacuum_copy.py
    then drops its copy)."""
    db = f'"{_quoted(alias)}"'
    con.execute("SET max_vacuum_tasks = 0")
    con.execute(f"CHECKPOINT {db}")
    try:
        try:
            con.execute(f"SET memory_limit = {vacuum_memory}")  # evicts the cache the checkpoint filled
        except duckdb.OutOfMemoryException:  # still pinned: more than the vacuum may use
            return False
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {db}.{VACUUM_MARK.split('.')[0]}")
        con.execute(f"CREATE TABLE IF NOT EXISTS {db}.{VACUUM_MARK} (vacuumed_at TIMESTAMPTZ)")
        con.execute(f"DELETE FROM {db}.{VACUUM_MARK}")
        con.execute(f"INSERT INTO {db}.{VACUUM_MARK} VALUES (current_timestamp)")
        con.execute("SET max_vacuum_tasks = 100")
        try:
            con.execute(f"CHECKPOINT {db}")
        except (duckdb.OutOfMemoryException, duckdb.IOException) as exc:
            if "allocate" not in str(exc) and "pin" not in str(exc):
                raise
            log.warning("warehouse %s: merging small row groups ran out of %s; later merges get more"
                        " (nothing was lost: %s)", alias, vacuum_memory.strip("'"), str(exc).splitlines()[0])
            return False
        return True
    finally:
        con.execute("SET max_vacuum_tasks = 0")  # what a write session's settings say (FileWriter.session)


def _quoted(alias: str) -> str:
    return alias.replace(chr(34), chr(34) * 2)


def open_reader(path: Path, *, deadline: float, config: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """A read-only connection to `path` (which must exist)."""
    if not path.exists():
        raise WarehouseError(f"warehouse file {path} does not exist yet; run a sync first")
    return _retrying(path, deadline, lambda: duckdb.connect(str(path), read_only=True, config=config))
