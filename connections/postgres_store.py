"""The connection store on PostgreSQL, for several hosts sharing one set of connections.

Chosen by `SCREENSYNC_CONNECTIONS=postgresql://user@host:port/db`. The URL must not carry a
password (process listings, logs and shell history show it): libpq takes it from PGPASSWORD or
~/.pgpass. The four parts run the same SQL as the SQLite store (`connections/parts/sql_*.py`,
`?` placeholders become psycopg's `%s` here), encrypted the same way with the same key-check row;
what SQLite gets from serializing every writer, PostgreSQL gets from row locks and advisory locks:

- a state is spent by `UPDATE ... RETURNING` (the row lock makes one request of many win);
- `record_event` is `INSERT ... ON CONFLICT DO NOTHING`; workers claim inbox events with
  `SELECT ... FOR UPDATE SKIP LOCKED`;
- read-modify-write transactions (merging app secrets, completing a connect session, replacing
  a connection) take a transaction-scoped advisory lock on their object;
- every encrypting write holds the keys lock shared, a rotation holds it exclusively, so no
  write lands under the old key once a rotation has committed. Readers never wait (MVCC).

Tables are created on first open, under an advisory lock so processes opening a new database at
once do not trip over each other. Connections are kept in a small per-process idle pool.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg.types.datetime import TimestamptzLoader
from psycopg.types.string import TextLoader

from common import settings
from connections.errors import BadStoreLocation, StoreUnavailable
from connections.parts.sql_store import SqlConnectionStore

IDLE_CONNECTIONS = 4  # kept open per process between calls; more are opened when threads need them
IDLE_SECONDS = 60.0  # an idle connection older than this is closed, not reused (server/firewall idle timeouts)
CONNECT_TIMEOUT_S = 10
SCHEMA_LOCK = "screensync connection store schema"

SCHEMA = """
CREATE TABLE IF NOT EXISTS store_meta (
    name text PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS connections (
    integration text NOT NULL,
    connection_id text NOT NULL,
    credential_kind text NOT NULL,
    metadata jsonb NOT NULL,
    provider_account_id text,
    status text NOT NULL,
    status_reason text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    secret bytea NOT NULL,
    token_hash text NOT NULL,
    PRIMARY KEY (integration, connection_id)
);
CREATE INDEX IF NOT EXISTS connections_account ON connections (integration, provider_account_id);
CREATE INDEX IF NOT EXISTS connections_token ON connections (integration, token_hash);
CREATE TABLE IF NOT EXISTS app_secrets (
    integration text PRIMARY KEY,
    secret bytea NOT NULL,
    base_url text,
    environment text,
    updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS connect_sessions (
    session_id text PRIMARY KEY,
    integration text NOT NULL,
    connection_id text NOT NULL,
    purpose text NOT NULL,
    options jsonb NOT NULL,
    settings jsonb NOT NULL,
    browser_hash text NOT NULL,
    state_hash text,
    state_expires_at double precision NOT NULL,  -- epoch seconds, as the SQLite store keeps them
    expires_at double precision NOT NULL,
    completed_at double precision
);
CREATE TABLE IF NOT EXISTS webhook_events (
    integration text NOT NULL,
    event_id text NOT NULL,
    event_type text NOT NULL,
    account_id text,
    body bytea NOT NULL,
    status text NOT NULL,
    detail text,
    received_at timestamptz NOT NULL,
    processed_at timestamptz,
    claimed_until double precision,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (integration, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_events_by_status ON webhook_events (status, received_at);
"""

SCHEMA_OBJECTS = tuple(re.findall(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)", SCHEMA))


def check_url(url: str) -> str:
    """`url` if it names a database without a password; else BadStoreLocation saying what to do."""
    parts = urlsplit(url)
    if parts.password is not None or "password" in parse_qs(parts.query):
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        redacted = f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"
        raise BadStoreLocation(
            f"{settings.CONNECTIONS_ENV} must not carry a password (process listings, logs and shell history "
            f"would show it): use {redacted} and give the password through PGPASSWORD or ~/.pgpass"
        )
    if not parts.path.strip("/"):
        raise BadStoreLocation(f"{settings.CONNECTIONS_ENV}={url} names no database: add /DBNAME")
    return url


class _IsoTimestamptz(TimestamptzLoader):
    """Timestamps come back as the ISO text the SQLite store keeps, so both backends answer alike."""

    def load(self, data: Any) -> str:
        return super().load(data).isoformat()


@functools.lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    return sql.replace("?", "%s")  # the parts' SQL holds no literal '?' or '%'


class _PgDb:
    """A psycopg connection taking the parts' `?` placeholders."""

    def __init__(self, con: psycopg.Connection[Any]) -> None:
        self._con = con

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self._con.execute(_pg(sql), args)

    def executemany(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        args = list(args)
        if args:
            with self._con.cursor() as cur:
                cur.executemany(_pg(sql), args)


class PostgresConnectionStore(SqlConnectionStore):
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"
    EVENT_ORDER = "received_at, seq"

    def __init__(self, url: str, *, keys: list[str] | None = None) -> None:
        super().__init__(keys=keys)
        self.url = check_url(url)
        self._ready = False
        self._idle: list[tuple[psycopg.Connection[Any], float]] = []  # (connection, when it was put back)
        self._pool_lock = threading.Lock()
        self._pid = os.getpid()
        # UTC timestamps as the SQLite store writes them, after whatever `options` the URL gives
        given = conninfo_to_dict(self.url).get("options") or ""
        self._options = f"{given} -c TimeZone=UTC".strip()

    def __repr__(self) -> str:
        return f"PostgresConnectionStore({self.url!r})"

    @property
    def where(self) -> str:
        return self.url

    # --- connections ---------------------------------------------------------------------------
    def _open(self) -> psycopg.Connection[Any]:
        try:
            con = psycopg.connect(
                self.url,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=CONNECT_TIMEOUT_S,
                options=self._options,
                application_name="screensync",
            )
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"cannot open the connection store {self.url}: {_first_line(exc)}") from None
        con.adapters.register_loader("timestamptz", _IsoTimestamptz)
        con.adapters.register_loader("jsonb", TextLoader)
        if not self._ready:
            try:
                _create_schema(con)
            except psycopg.Error as exc:
                con.close()
                raise StoreUnavailable(
                    f"cannot create the connection store's tables in {self.url}: {_first_line(exc)}"
                ) from None
            self._ready = True
        return con

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        con = self._take_idle() or self._open()
        try:
            yield con
        except psycopg.OperationalError as exc:  # the server went away, or refused what we asked
            raise StoreUnavailable(f"the connection store {self.url} failed: {_first_line(exc)}") from exc
        finally:
            self._put_back(con)

    def _take_idle(self) -> psycopg.Connection[Any] | None:
        stale = []
        with self._pool_lock:
            if self._pid != os.getpid():  # a forked child must not share its parent's sockets
                self._idle, self._pid = [], os.getpid()
            found = None
            while self._idle and found is None:
                con, since = self._idle.pop()
                if con.closed or time.monotonic() - since > IDLE_SECONDS:
                    stale.append(con)
                else:
                    found = con
        for con in stale:
            con.close()
        return found

    def _put_back(self, con: psycopg.Connection[Any]) -> None:
        idle = psycopg.pq.TransactionStatus.IDLE
        reusable = not con.closed and not con.broken and con.info.transaction_status == idle
        with self._pool_lock:
            if reusable and len(self._idle) < IDLE_CONNECTIONS and self._pid == os.getpid():
                self._idle.append((con, time.monotonic()))
                return
        con.close()

    @contextmanager
    def _read(self) -> Iterator[_PgDb]:
        with self._connection() as con:
            yield _PgDb(con)

    @contextmanager
    def _write(self) -> Iterator[_PgDb]:
        with self._connection() as con, con.transaction():
            yield _PgDb(con)

    def _lock(self, con: _PgDb, name: str, *, shared: bool = False) -> None:
        fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        con.execute(f"SELECT {fn}(hashtextextended(?, 0))", (name,))

    def close(self) -> None:
        """Close the idle connections (the store stays usable: the next call opens one)."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for con, _ in idle:
            con.close()


def _create_schema(con: psycopg.Connection[Any]) -> None:
    """Create what is missing, one process at a time. Only when something is missing: CREATE INDEX
    IF NOT EXISTS still locks its table, and would make every new process wait for a rotation."""
    present = con.execute(
        "SELECT count(*) AS n FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND relname = ANY(%s)",
        (list(SCHEMA_OBJECTS),),
    ).fetchone()
    if present is not None and present["n"] == len(SCHEMA_OBJECTS):
        return
    with con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (SCHEMA_LOCK,))
        con.execute(SCHEMA)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
