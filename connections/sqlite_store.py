"""The default connection store: one SQLite file, apart from the warehouse, secrets encrypted.

The four parts are written once in SQL (`connections/parts/sql_*.py`); this module is the SQLite
plumbing under them. WAL mode lets readers proceed during a write; `BEGIN IMMEDIATE` takes the
write lock up front and busy_timeout waits for it, so several processes (CLI, web app, Prefect
workers) can write at once without "database is locked" failures, and every write transaction
runs alone (so the parts' per-object locks are not needed here). A fresh sqlite3 connection per
call keeps the store safe to share between threads.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from connections.errors import InvalidState
from connections.parts.sql_store import SqlConnectionStore

BUSY_TIMEOUT_MS = 30_000

__all__ = ["InvalidState", "SqliteConnectionStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS connections (
    integration TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    credential_kind TEXT NOT NULL,
    metadata TEXT NOT NULL,
    provider_account_id TEXT,
    status TEXT NOT NULL,
    status_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    secret BLOB NOT NULL,
    token_hash TEXT NOT NULL,
    PRIMARY KEY (integration, connection_id)
);
CREATE INDEX IF NOT EXISTS connections_account ON connections (integration, provider_account_id);
CREATE INDEX IF NOT EXISTS connections_token ON connections (integration, token_hash);
CREATE TABLE IF NOT EXISTS app_secrets (
    integration TEXT PRIMARY KEY,
    secret BLOB NOT NULL,
    base_url TEXT,
    environment TEXT,
    updated_at TEXT NOT NULL
);
DROP TABLE IF EXISTS connect_states;
CREATE TABLE IF NOT EXISTS connect_sessions (
    session_id TEXT PRIMARY KEY,
    integration TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    options TEXT NOT NULL,
    settings TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    state_hash TEXT,
    state_expires_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    completed_at REAL
);
CREATE TABLE IF NOT EXISTS store_meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_events (
    integration TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    account_id TEXT,
    body BLOB NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    received_at TEXT NOT NULL,
    processed_at TEXT,
    claimed_until REAL,
    PRIMARY KEY (integration, event_id)
);
-- the webhook applier asks for the oldest pending events every few seconds
CREATE INDEX IF NOT EXISTS webhook_events_by_status ON webhook_events (status, received_at);
"""


class SqliteConnectionStore(SqlConnectionStore):
    def __init__(self, path: str | os.PathLike[str], *, keys: list[str] | None = None) -> None:
        super().__init__(keys=keys)
        self.path = Path(path).expanduser()
        self._ready = False

    def __repr__(self) -> str:
        return f"SqliteConnectionStore({str(self.path)!r})"

    @property
    def where(self) -> str:
        return str(self.path)

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                # Created owner-only: even encrypted, the file says who is connected to what.
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if not self._ready:
            _wal(con)
            con.execute("BEGIN IMMEDIATE")
            migrate_account_column(con)
            migrate_claim_column(con)
            con.executescript(SCHEMA)  # executescript commits
            self._ready = True
        return con

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()


def migrate_account_column(con: sqlite3.Connection) -> None:
    """Stores written before the provider-neutral schema name the account column (and the metadata
    key) `checkr_account_id`; rename both in place so those stores open unchanged."""
    if "checkr_account_id" not in _columns(con, "connections"):
        return
    con.execute("ALTER TABLE connections RENAME COLUMN checkr_account_id TO provider_account_id")
    con.execute(
        "UPDATE connections SET metadata = json_set(json_remove(metadata, '$.checkr_account_id'), "
        "'$.provider_account_id', json_extract(metadata, '$.checkr_account_id')) "
        "WHERE json_type(metadata, '$.checkr_account_id') IS NOT NULL"
    )


def migrate_claim_column(con: sqlite3.Connection) -> None:
    """Inboxes written before workers claimed events lack `claimed_until`: add it (unclaimed)."""
    columns = _columns(con, "webhook_events")
    if columns and "claimed_until" not in columns:
        con.execute("ALTER TABLE webhook_events ADD COLUMN claimed_until REAL")


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {row["name"] for row in con.execute(f"PRAGMA table_info({table})")}


def _wal(con: sqlite3.Connection) -> None:
    """Switch the file to WAL (persistent, so once per file). Taking that lock does not wait on SQLite's
    busy handler: processes opening a new store together got "database is locked" at once, so wait here."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.01
    while True:
        try:
            (mode,) = con.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
