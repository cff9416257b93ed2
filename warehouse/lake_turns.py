"""On a DuckLake, writers of one connection take turns; writers of different connections never wait.

DuckLake checks a commit only against other commits' writes to the same table, and two
transactions that only INSERT never conflict: two processes inserting the same *new* key of one
connection at the same instant (a webhook applied by `serve-web` while that connection's sync lands
the record first; two syncs of one connection) would both commit, leaving two current rows.
So every write transaction that touches a connection's records first takes a PostgreSQL advisory
lock per connection on the catalog database, BEGINs only once it has them, and lets go right after
its COMMIT (or failure): the next writer of that connection starts from a snapshot holding the
first one's rows, and its upsert updates or skips instead of inserting again.

- Per (integration, connection): writers of different connections stay fully parallel (they
  never share a key: records are keyed by connection), and the same database every host already
  reaches serializes writers on any host.
- Transaction-scoped (`pg_advisory_xact_lock`) on a small psycopg connection of this process: held
  for one warehouse write transaction only, never across a flow or a conflict retry's backoff.
  A killed process's PostgreSQL session ends, and the lock with it.
- All of a transaction's locks are taken at once, in sorted order (a webhook batch can span many
  connections), so two writers can not hold one each and wait for the other's.
- Waiting is bounded by the writer's `lock_timeout` (PostgreSQL's `lock_timeout`), then the write
  fails with TurnTimeout (a WarehouseLocked) naming what waited: a hung holder can not stall a writer forever.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from warehouse.backend import Turn
from warehouse.connection import WarehouseError, WarehouseLocked

log = logging.getLogger("screensync.warehouse")

LOCK_PREFIX = "screensync warehouse writes of "  # hashed with the connection into the advisory key


class TurnTimeout(WarehouseLocked):
    """Another writer of the same connection held its turn for longer than this writer would wait."""

    def __init__(self, warehouse: str, waited_s: float, what: str) -> None:
        self.waited_s = waited_s
        self.detail = what
        WarehouseError.__init__(
            self, f"{what}: another writer of the same connection kept its turn on {warehouse} for over "
            f"{waited_s:.0f}s (a PostgreSQL advisory lock on the catalog database; see pg_locks there)")


def lock_name(integration: str, connection_id: str) -> str:
    return f"{LOCK_PREFIX}{integration}/{connection_id}"


class ConnectionTurns:
    """This process's advisory locks on one lake's catalog database (used by one thread at a time:
    the lake backend lends its session, and this with it, to one thread at a time)."""

    def __init__(self, conninfo: str, name: str) -> None:
        self._conninfo = conninfo
        self._name = name  # the warehouse, for messages
        self._con: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()
        self._held: set[str] = set()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._con is not None and (self._pid != os.getpid() or self._con.closed):
            self._con = None  # a fork's copy belongs to the parent: never close it from here
        if self._con is None:
            try:
                self._con = psycopg.connect(self._conninfo, autocommit=False,
                                            application_name="screensync warehouse turns")
            except psycopg.Error as exc:
                raise WarehouseError(f"could not reach the catalog database of {self._name} for the "
                                     f"writers' turns: {_first_line(exc)}") from None
            self._pid = os.getpid()
        return self._con

    @contextmanager
    def held(self, turns: Iterable[Turn], *, timeout: float, what: str) -> Iterator[None]:
        """The turn of every connection in `turns` for the block (one write transaction). Nested
        blocks of one thread share the outer block's PostgreSQL transaction and take only new locks."""
        names = sorted({lock_name(i, c) for i, c in turns} - self._held)
        if not names:
            yield
            return
        outer = not self._held
        con = self._connection()
        try:
            if outer:
                con = self._begin(con, timeout)
            for name in names:
                con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (name,))
        except psycopg.Error as exc:
            late = isinstance(exc, psycopg.errors.LockNotAvailable)
            if outer:  # a nested block's failure aborted the outer transaction: the outer block ends it
                self._end(con, broken=not late)
            if late:
                raise TurnTimeout(self._name, timeout, what) from None
            raise WarehouseError(f"{what}: could not take the writers' turn on {self._name}: "
                                 f"{_first_line(exc)}") from None
        self._held.update(names)
        try:
            yield
        finally:
            if outer:
                self._end(con)
            else:
                self._held.difference_update(names)  # released with the outer transaction

    def _begin(self, con: psycopg.Connection[Any], timeout: float) -> psycopg.Connection[Any]:
        """Open the transaction the locks belong to, bounding their wait; a connection the server
        dropped since the last write (a restart, an idle timeout) is replaced once."""
        wait = f"{max(1, int(timeout * 1000))}ms"
        try:
            con.execute("SELECT set_config('lock_timeout', %s, true)", (wait,))
        except psycopg.OperationalError:
            self.close()
            con = self._connection()
            con.execute("SELECT set_config('lock_timeout', %s, true)", (wait,))
        return con

    def _end(self, con: psycopg.Connection[Any], *, broken: bool = False) -> None:
        """End the PostgreSQL transaction: every lock it took goes with it (closing does too)."""
        self._held.clear()
        if not broken:
            try:
                con.rollback()
                return
            except psycopg.Error:
                log.debug("warehouse %s: ending the writers' turn failed; closing its connection", self._name)
        self.close()

    def close(self) -> None:
        con, self._con = self._con, None
        self._held.clear()
        if con is not None and self._pid == os.getpid():
            try:
                con.close()
            except psycopg.Error:
                log.debug("warehouse %s: closing the writers' turn connection failed", self._name)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


__all__ = ["ConnectionTurns", "TurnTimeout", "lock_name"]
