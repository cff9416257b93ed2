"""The two warehouse backends behind one setting: the embedded DuckDB file, or a DuckLake.

`SCREENSYNC_WAREHOUSE` (and every `warehouse_path`/`--warehouse` argument) is either a file path or
a `ducklake:postgres://...` URL (warehouse/ducklake.py). `open_backend` picks the backend; above it,
`Warehouse` (warehouse/loader.py) and the readers (warehouse/read.py) are one code path. A backend
gives two things:

- `session(...)`: a DuckDB connection on which the caller runs its own write transaction(s), this
  thread's alone for the block, with screensync's meta tables there;
- `reading(...)`: a confined read-only connection for a query or a few.

What differs: the file lets one writer in at a time (a commit never conflicts) and readers wait for
the write in progress; a lake never blocks anybody, and a commit can conflict with another
writer's (warehouse/retry.py is how every write survives that).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol

import duckdb

from warehouse import changes, due, freshness, gone, owed
from warehouse import state as st
from warehouse.access import ROW_GROUP_SIZE, FileWriter, reading
from warehouse.ducklake import is_ducklake_url
from warehouse.rwlock import lock_dir

Turn = tuple[str, str]  # (integration, connection id) whose records a write transaction writes

# screensync's own tables, created by the first writer (each statement is idempotent)
META_DDLS = (st.META_DDL, owed.OWED_DDL, gone.GONE_DDL, changes.CHANGES_DDL, freshness.ARRIVALS_DDL, due.DUE_DDL)


def prepare_meta(con: duckdb.DuckDBPyConnection) -> None:
    """Create/evolve the `_screensync` tables. Caller owns the transaction (or runs it autocommitted)."""
    for ddl in META_DDLS:
        con.execute(ddl)
    st.prepare_logs(con)


class Backend(Protocol):
    is_lake: bool
    generation: int  # bumped whenever what this process cached about the warehouse may be stale

    @property
    def memo(self) -> dict[str, Any] | None:
        """What this process's writes left for its next write to reuse instead of reading it back,
        while nobody else can write in between (the file attached); None where others always can."""
        ...

    @property
    def name(self) -> str:
        """What to call the warehouse in messages (a path, or the URL without secrets)."""
        ...

    def session(self, *, timeout: float, what: str, settings: dict[str, str],
                bulk: bool) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...

    def reading(self, *, timeout: float, config: dict[str, Any]) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...

    def turns(self, connections: Iterable[Turn], *, timeout: float,
              what: str) -> AbstractContextManager[None]:
        """Held around one write transaction (inside `session`) that writes these (integration,
        connection)s' records: writers of one connection take turns (warehouse/lake_turns.py)."""
        ...

    def hold(self) -> AbstractContextManager[None]:
        """Around a run of several writes (one sync): keep what a write opens open between them."""
        ...

    def exists(self) -> bool: ...


def is_lake(target: str | Path) -> bool:
    return isinstance(target, str) and is_ducklake_url(target)


def open_backend(target: str | Path) -> Backend:
    """The backend this process uses for `target` (one per file or URL per process)."""
    if is_lake(target):
        from warehouse.lake_backend import LakeBackend

        return LakeBackend.of(str(target))
    return FileBackend(Path(target))


_PREPARED: set[tuple[int, int]] = set()  # files (device, inode) whose meta tables this process created
_CREATIONS: dict[Path, int] = {}  # how often this process created each file (a new file: nothing cached holds)
VACUUM_EVERY_S = 300.0
# Every write session ends with a checkpoint, and each leaves a row group of its own in every table
# it appended to. DuckDB's DELETE pins a 256 KB block per row group it touches: past ~180 row groups
# (45 MB, the writer's pool) the end of an attempt (its seen keys, older positions) ran out of
# memory, and the file grew ~256 KB per write. So every VACUUM_EVERY_WRITES-th session of a process
# vacuums too, whatever its size (merging the small row groups: measured, 1,000 writes of 100 rows
# left 13 row groups and 7 MB instead of 1,000 and 254 MB, and took less CPU).
VACUUM_EVERY_WRITES = 32


def _vacuum_due(path: Path) -> bool:
    """Is it time for a small write's checkpoint to vacuum (once per VACUUM_EVERY_S, across processes)?"""
    stamp = lock_dir(path) / "vacuumed"
    try:
        if time.time() - stamp.stat().st_mtime < VACUUM_EVERY_S:
            return False
    except FileNotFoundError:
        pass
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()
    return True


class FileBackend:
    """The embedded DuckDB file: this process's `FileWriter` of it and `access.reading`."""

    is_lake = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = FileWriter.of(path)

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def generation(self) -> int:
        return self._writer.generation

    @property
    def memo(self) -> dict[str, Any]:
        return self._writer.memo

    def exists(self) -> bool:
        return self.path.exists()

    @property
    def identity(self) -> tuple[Any, ...]:
        """Which file this is, for what the process caches about its tables (valid after a session)."""
        return (self.path, self._writer.file_id, _CREATIONS.get(self.path, 0))

    def _prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """The meta schema, once per file per process (after the first attach; again for a new file)."""
        writer = self._writer
        if writer.created:
            _CREATIONS[self.path] = _CREATIONS.get(self.path, 0) + 1
        if writer.file_id in _PREPARED and not writer.created:
            return
        prepare_meta(con)
        if writer.file_id is not None:
            _PREPARED.add(writer.file_id)

    @contextmanager
    def session(self, *, timeout: float, what: str, settings: dict[str, str],
                bulk: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """`bulk`: the session writes whole row groups. Otherwise, once every VACUUM_EVERY_S, its
        checkpoint vacuums: every session ends with one (the file is let go), and each small write
        (a webhook, a run's bookkeeping) leaves a small row group of its own (200 one-event writes
        grew a file from 22 to 50 MB)."""
        self._writer.sessions += 1  # per file per process (approximate across threads: fine)
        if self._writer.sessions % VACUUM_EVERY_WRITES == 0 or (not bulk and _vacuum_due(self.path)):
            settings = {**settings, "max_vacuum_tasks": "100"}
        with self._writer.session(timeout=timeout, what=what, settings=settings, prepare=self._prepare) as con:
            yield con

    def reading(self, *, timeout: float, config: dict[str, Any]) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return reading(self.path, timeout=timeout, config=config)

    def turns(self, connections: Iterable[Turn], *, timeout: float,
              what: str) -> AbstractContextManager[None]:
        """Nothing to take: the file's writers already take turns for every transaction."""
        return nullcontext()

    def hold(self) -> AbstractContextManager[None]:
        """Keep the file attached between this process's sessions while nobody else waits (access.py)."""
        return self._writer.hold()


__all__ = ["META_DDLS", "ROW_GROUP_SIZE", "Backend", "FileBackend", "Turn", "is_lake", "open_backend", "prepare_meta"]
