"""The DuckLake backend: one DuckDB session per process on a `ducklake:postgres://...` warehouse.

Opening costs ~0.5 s (two extensions loaded from their packages, the catalog attached), so each
process keeps one writing session per URL and lends it to one thread at a time. DuckLake checks each
transaction against the commits made since it began when it COMMITs, and the writer retries a
conflicting transaction whole (warehouse/retry.py, docs/warehouse.md "Concurrent writers"). The
only thing locked across processes and hosts is a connection's turn: writers of one connection's
records take turns, one transaction at a time (warehouse/lake_turns.py); other connections' writers
never wait for them. Readers attach read-only and see the
last committed snapshot: they never wait for a writer, and a writer never waits for them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache
from typing import Any

import duckdb

from warehouse import ducklake
from warehouse.backend import META_DDLS, Turn, prepare_meta
from warehouse.connection import WarehouseError
from warehouse.lake_turns import ConnectionTurns
from warehouse.retry import retrying, rollback_quietly, short_error
from warehouse.sql import lit

log = logging.getLogger("screensync.warehouse")

# what a confined reader may not change after the catalog is attached (warehouse/read.py's list,
# less what the attach itself needs: the catalog connection and the data files)
_AFTER_ATTACH = ("enable_external_access", "lock_configuration")
_LOST = (duckdb.ConnectionException, duckdb.IOException, duckdb.FatalException, duckdb.InternalException)


@lru_cache(maxsize=1)
def _meta_columns() -> frozenset[tuple[str, str]]:
    """(table, column) of every `_screensync` table this version writes, from its own DDL."""
    con = duckdb.connect()
    try:
        prepare_meta(con)
        rows = con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = '_screensync'")
        return frozenset(rows.fetchall())
    finally:
        con.close()


def meta_ready(con: duckdb.DuckDBPyConnection) -> bool:
    """Every meta table and column is there: no DDL to run (DDL conflicts with concurrent writers)."""
    rows = con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = '_screensync'"
    ).fetchall()
    return _meta_columns() <= set(rows)


class LakeBackend:
    """This process's session on one DuckLake warehouse (`LakeBackend.of(url)`)."""

    is_lake = True
    _all: dict[str, LakeBackend] = {}
    _all_lock = threading.Lock()

    @classmethod
    def of(cls, url: str) -> LakeBackend:
        with cls._all_lock:
            backend = cls._all.get(url)
            if backend is None:
                backend = cls._all[url] = cls(url)
            return backend

    def __init__(self, url: str) -> None:
        self.url = url
        self.target = ducklake.parse_url(url)  # a bad URL fails here, naming the part
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._settings: dict[str, str] = {}
        self._prepared = False
        self.generation = 0
        self._readers: dict[tuple[tuple[str, Any], ...], duckdb.DuckDBPyConnection] = {}
        self._readers_lock = threading.Lock()
        self._turns = ConnectionTurns(self.target.libpq, self.name)

    @property
    def name(self) -> str:
        t = self.target
        return f"ducklake:postgres://{t.user + '@' if t.user else ''}{t.host}:{t.port}/{t.dbname} (data {t.data_path})"

    def exists(self) -> bool:
        return True  # the catalog is created by the first writer; a reader of an empty one sees no tables

    # -- writing -----------------------------------------------------------------------------
    @property
    def memo(self) -> None:
        """Other processes commit at any time: every write reads what it builds on."""
        return None

    @contextmanager
    def session(self, *, timeout: float, what: str, settings: dict[str, str],
                bulk: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """This process's lake session, this thread's until the block ends (other threads of the
        process wait up to `timeout`; other processes never do)."""
        if not self._lock.acquire(timeout=timeout):
            raise WarehouseError(f"{what}: another thread of this process kept the warehouse session "
                                 f"for over {timeout:.0f}s")
        try:
            con = self._connect()
            try:
                self._apply(con, settings)
                if not self._prepared:
                    self._prepare(con)
                self.generation += 1  # other processes commit at any time: nothing cached outlives a session
                yield con
            except BaseException as exc:
                rollback_quietly(con)
                if isinstance(exc, _LOST):
                    self._drop()
                raise
        finally:
            self._lock.release()

    def turns(self, connections: Iterable[Turn], *, timeout: float,
              what: str) -> AbstractContextManager[None]:
        """The turn of each connection, around one write transaction, inside `session` (whose thread
        lock also keeps the turns' connection to one thread)."""
        return self._turns.held(connections, timeout=timeout, what=what)

    def hold(self) -> AbstractContextManager[None]:
        """Nothing to do: the process keeps its lake session open between writes anyway."""
        return nullcontext()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            try:
                self._con = ducklake.connect(self.url)
            except duckdb.Error as exc:
                raise WarehouseError(f"could not open the warehouse {self.name}: {short_error(exc)}") from None
            self._settings = {}
        return self._con

    def _drop(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            try:
                con.close()
            except duckdb.Error:
                log.debug("warehouse %s: closing a broken session failed", self.name)

    def _apply(self, con: duckdb.DuckDBPyConnection, settings: dict[str, str]) -> None:
        # DuckDB's file storage settings mean nothing to DuckLake's Parquet files
        wanted = {k: v for k, v in settings.items() if k in ("threads", "memory_limit")}
        changed = {k: v for k, v in wanted.items() if self._settings.get(k) != v}
        if changed:
            con.execute(";".join(f"SET {k} = {v}" for k, v in changed.items()))
            self._settings.update(changed)

    def _prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """The meta tables, unless they are all there already (`screensync warehouse migrate` made
        them before the workers started): DDL conflicts with every concurrent writer of the table."""
        if not meta_ready(con):
            def once() -> None:
                con.execute("BEGIN TRANSACTION")
                try:
                    prepare_meta(con)
                    con.execute("COMMIT")
                except BaseException:
                    rollback_quietly(con)
                    raise
            retrying(once, what=f"the meta tables of {self.name}")
        self._prepared = True

    # -- reading -----------------------------------------------------------------------------
    @contextmanager
    def reading(self, *, timeout: float, config: dict[str, Any]) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only session on the last committed snapshot (each statement outside a transaction
        sees the newest), confined as warehouse/read.py says: no file but the lake's data files, no
        other database, no extension, configuration locked.

        Opening costs ~0.5 s (extensions, attach), so the process keeps one read-only instance per
        configuration and each session is a cursor of it: its own transaction, closed at the end."""
        key = tuple(sorted(config.items()))
        with self._readers_lock:
            base = self._readers.get(key)
            if base is None:
                base = self._readers[key] = self._open_reader(config)
            cur = base.cursor()
        try:
            try:
                cur.execute(f"USE {ducklake.ALIAS}")
            except duckdb.Error:  # a session DETACHed it: the next session opens a new instance
                with self._readers_lock:
                    self._readers.pop(key, None)
                raise
            yield cur
        finally:
            cur.close()

    def _open_reader(self, config: dict[str, Any]) -> duckdb.DuckDBPyConnection:
        early = {k: v for k, v in config.items() if k not in _AFTER_ATTACH}
        try:
            con = ducklake.connect(self.url, read_only=True, config=early)
        except duckdb.Error as exc:
            raise WarehouseError(f"could not open the warehouse {self.name}: {short_error(exc)}") from None
        if not self.target.on_s3:
            con.execute(f"SET allowed_directories = [{lit(self.target.data_path)}]")
        for name in _AFTER_ATTACH:
            if name in config:
                con.execute(f"SET {name} = {str(config[name]).lower()}")
        return con

    def close(self) -> None:
        """Let go of this process's sessions (the next use opens new ones)."""
        with self._lock:
            self._drop()
            self._turns.close()
        with self._readers_lock:
            readers, self._readers = list(self._readers.values()), {}
        for con in readers:
            con.close()


__all__ = ["META_DDLS", "LakeBackend", "meta_ready"]
