"""The default connection store: one SQLite file, apart from the warehouse, secrets encrypted.

WAL mode lets readers proceed during a write; `BEGIN IMMEDIATE` takes the write lock up front
and busy_timeout waits for it, so several processes (CLI, web app, Prefect workers) can write
at once without "database is locked" failures. A fresh sqlite3 connection per call keeps the
store safe to share between threads.
"""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from connections.crypto import Cipher, load_keys, parse_keys
from connections.errors import (
    ConnectionExists,
    ConnectionNotFound,
    ConnectionsError,
    NoSecretKey,
)
from connections.models import STATUSES, Connection, ConnectionMetadata, Credentials, utcnow

BUSY_TIMEOUT_MS = 30_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS connections (
    integration TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    credential_kind TEXT NOT NULL,
    metadata TEXT NOT NULL,
    checkr_account_id TEXT,
    status TEXT NOT NULL,
    status_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    secret BLOB NOT NULL,
    token_hash TEXT NOT NULL,
    PRIMARY KEY (integration, connection_id)
);
CREATE INDEX IF NOT EXISTS connections_account ON connections (integration, checkr_account_id);
CREATE INDEX IF NOT EXISTS connections_token ON connections (integration, token_hash);
CREATE TABLE IF NOT EXISTS app_secrets (
    integration TEXT PRIMARY KEY,
    secret BLOB NOT NULL,
    base_url TEXT,
    environment TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS connect_states (
    state_hash TEXT PRIMARY KEY,
    integration TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    extra TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
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
    PRIMARY KEY (integration, event_id)
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _state_hash(state: str) -> str:
    import hashlib

    return hashlib.sha256(state.encode()).hexdigest()


class InvalidState(ConnectionsError):
    """An OAuth/widget state that is unknown, already used, expired, or for another flow."""


class SqliteConnectionStore:
    def __init__(self, path: str | os.PathLike[str], *, keys: list[str] | None = None) -> None:
        self.path = Path(path).expanduser()
        self._keys = keys
        self._cipher_cache: Cipher | None = None
        self._ready = False

    def __repr__(self) -> str:
        return f"SqliteConnectionStore({str(self.path)!r})"

    # --- plumbing --------------------------------------------------------------------------

    @property
    def _cipher(self) -> Cipher:
        if self._cipher_cache is None:
            self._cipher_cache = Cipher(self._keys if self._keys is not None else load_keys())
        return self._cipher_cache

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
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("BEGIN IMMEDIATE")
            con.executescript("" + SCHEMA.replace("\n;", ";"))  # executescript commits
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

    @staticmethod
    def _row_to_connection(row: sqlite3.Row) -> Connection:
        return Connection(
            connection_id=row["connection_id"],
            integration=row["integration"],
            credential_kind=row["credential_kind"],
            metadata=ConnectionMetadata.model_validate_json(row["metadata"]),
            status=row["status"],
            status_reason=row["status_reason"],
            created_at=datetime.fromisoformat(row["created_at"]),
            updated_at=datetime.fromisoformat(row["updated_at"]),
        )

    def _row(self, con: sqlite3.Connection, integration: str, connection_id: str) -> sqlite3.Row:
        row = con.execute(
            "SELECT * FROM connections WHERE integration = ? AND connection_id = ?", (integration, connection_id)
        ).fetchone()
        if row is None:
            raise ConnectionNotFound(integration, connection_id)
        return row

    # --- connections -----------------------------------------------------------------------

    def add(self, connection: Connection, credentials: Credentials, *, replace: bool = False) -> Connection:
        """Store a connection; with replace=True an existing one keeps its created_at."""
        _check_integration(connection.integration)
        token = credentials.token.get_secret_value()
        cipher = self._cipher  # NoSecretKey before anything is written
        now = utcnow()
        with self._write() as con:
            existing = con.execute(
                "SELECT created_at FROM connections WHERE integration = ? AND connection_id = ?",
                (connection.integration, connection.connection_id),
            ).fetchone()
            if existing and not replace:
                raise ConnectionExists(connection.integration, connection.connection_id)
            created = datetime.fromisoformat(existing["created_at"]) if existing else connection.created_at
            stored = connection.model_copy(update={"created_at": created, "updated_at": now})
            con.execute(
                "INSERT OR REPLACE INTO connections VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    stored.integration,
                    stored.connection_id,
                    stored.credential_kind,
                    stored.metadata.model_dump_json(),
                    stored.metadata.checkr_account_id,
                    stored.status,
                    stored.status_reason,
                    stored.created_at.isoformat(),
                    stored.updated_at.isoformat(),
                    cipher.encrypt(token),
                    cipher.token_hash(token),
                ),
            )
        return stored

    def get(self, integration: str, connection_id: str) -> Connection:
        with self._read() as con:
            return self._row_to_connection(self._row(con, integration, connection_id))

    def credentials(self, integration: str, connection_id: str) -> Credentials:
        with self._read() as con:
            row = self._row(con, integration, connection_id)
        return Credentials(token=SecretStr(self._cipher.decrypt(row["secret"])))

    def list(self, integration: str | None = None, status: str | None = None) -> list[Connection]:
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {list(STATUSES)}")
        sql, args = "SELECT * FROM connections WHERE 1=1", []
        if integration:
            sql, args = sql + " AND integration = ?", [*args, integration]
        if status:
            sql, args = sql + " AND status = ?", [*args, status]
        with self._read() as con:
            rows = con.execute(sql + " ORDER BY integration, connection_id", args).fetchall()
        return [self._row_to_connection(r) for r in rows]

    def set_status(self, integration: str, connection_id: str, status: str, reason: str | None = None) -> Connection:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {list(STATUSES)}")
        with self._write() as con:
            self._row(con, integration, connection_id)
            con.execute(
                "UPDATE connections SET status = ?, status_reason = ?, updated_at = ? "
                "WHERE integration = ? AND connection_id = ?",
                (status, reason, _now(), integration, connection_id),
            )
        return self.get(integration, connection_id)

    def update_metadata(self, integration: str, connection_id: str, **changes: Any) -> Connection:
        with self._write() as con:
            row = self._row(con, integration, connection_id)
            current = ConnectionMetadata.model_validate_json(row["metadata"])
            try:
                updated = ConnectionMetadata.model_validate({**current.model_dump(), **changes})
            except ValidationError as exc:
                raise ValueError(f"bad metadata for {integration}/{connection_id}: {exc}") from None
            con.execute(
                "UPDATE connections SET metadata = ?, checkr_account_id = ?, updated_at = ? "
                "WHERE integration = ? AND connection_id = ?",
                (updated.model_dump_json(), updated.checkr_account_id, _now(), integration, connection_id),
            )
        return self.get(integration, connection_id)

    def remove(self, integration: str, connection_id: str) -> None:
        with self._write() as con:
            self._row(con, integration, connection_id)
            con.execute(
                "DELETE FROM connections WHERE integration = ? AND connection_id = ?", (integration, connection_id)
            )

    def find_by_account(self, integration: str, checkr_account_id: str) -> list[Connection]:
        with self._read() as con:
            rows = con.execute(
                "SELECT * FROM connections WHERE integration = ? AND checkr_account_id = ? ORDER BY connection_id",
                (integration, checkr_account_id),
            ).fetchall()
        return [self._row_to_connection(r) for r in rows]

    def find_by_token(self, integration: str, token: str) -> Connection | None:
        """Looked up by keyed hash: no secret is decrypted to find the match."""
        hashes = self._cipher.token_hashes(token)
        marks = ",".join("?" * len(hashes))
        with self._read() as con:
            row = con.execute(
                f"SELECT * FROM connections WHERE integration = ? AND token_hash IN ({marks})",
                (integration, *hashes),
            ).fetchone()
        return self._row_to_connection(row) if row else None

    # --- platform (app) secrets ------------------------------------------------------------

    def set_app_secrets(
        self,
        integration: str,
        secrets: Mapping[str, str],
        *,
        base_url: str | None = None,
        environment: str | None = None,
    ) -> None:
        """Merge `secrets` into the integration's app secrets (a partial update keeps the rest)."""
        _check_integration(integration)
        cipher = self._cipher
        for name, value in secrets.items():
            if not name or not str(value).strip():
                raise ValueError(f"app secret {name!r} is empty")
        with self._write() as con:
            row = con.execute("SELECT * FROM app_secrets WHERE integration = ?", (integration,)).fetchone()
            merged: dict[str, str] = json.loads(cipher.decrypt(row["secret"])) if row else {}
            merged.update({k: str(v).strip() for k, v in secrets.items()})
            con.execute(
                "INSERT OR REPLACE INTO app_secrets VALUES (?,?,?,?,?)",
                (
                    integration,
                    cipher.encrypt(json.dumps(merged)),
                    base_url if base_url is not None else (row["base_url"] if row else None),
                    environment if environment is not None else (row["environment"] if row else None),
                    _now(),
                ),
            )

    def app_secrets(self, integration: str) -> dict[str, SecretStr]:
        with self._read() as con:
            row = con.execute("SELECT secret FROM app_secrets WHERE integration = ?", (integration,)).fetchone()
        if row is None:
            return {}
        return {k: SecretStr(v) for k, v in json.loads(self._cipher.decrypt(row["secret"])).items()}

    def app_settings(self, integration: str) -> dict[str, str | None]:
        """Non-secret app settings: the base-URL override and environment used for connect flows."""
        with self._read() as con:
            row = con.execute(
                "SELECT base_url, environment FROM app_secrets WHERE integration = ?", (integration,)
            ).fetchone()
        return (
            {"base_url": row["base_url"], "environment": row["environment"]}
            if row
            else {
                "base_url": None,
                "environment": None,
            }
        )

    # --- key rotation ----------------------------------------------------------------------

    def rotate_key(self, new_keys: str | list[str]) -> int:
        """Re-encrypt every secret under new_keys[0] in one transaction; returns how many.

        Readers keep working throughout (WAL), and processes configured with "new,old" keys read
        both before and after, so a rotation needs no downtime.
        """
        keys = parse_keys(new_keys) if isinstance(new_keys, str) else parse_keys(",".join(new_keys))
        if not keys:
            raise NoSecretKey("rotate_key was given no key")
        try:
            old = self._cipher.keys
        except NoSecretKey:
            old = []
        both = Cipher([*keys, *[k for k in old if k not in keys]])
        target = Cipher(keys)
        count = 0
        with self._write() as con:
            for row in con.execute("SELECT integration, connection_id, secret FROM connections").fetchall():
                token = both.decrypt(row["secret"])
                con.execute(
                    "UPDATE connections SET secret = ?, token_hash = ? WHERE integration = ? AND connection_id = ?",
                    (both.rotate(row["secret"]), target.token_hash(token), row["integration"], row["connection_id"]),
                )
                count += 1
            for row in con.execute("SELECT integration, secret FROM app_secrets").fetchall():
                con.execute(
                    "UPDATE app_secrets SET secret = ? WHERE integration = ?",
                    (both.rotate(row["secret"]), row["integration"]),
                )
                count += 1
            for row in con.execute("SELECT integration, event_id, body FROM webhook_events").fetchall():
                con.execute(
                    "UPDATE webhook_events SET body = ? WHERE integration = ? AND event_id = ?",
                    (both.rotate(row["body"]), row["integration"], row["event_id"]),
                )
                count += 1
        self._keys = keys
        self._cipher_cache = target
        return count

    # --- one-time connect states -----------------------------------------------------------

    def issue_state(
        self,
        integration: str,
        connection_id: str,
        purpose: str,
        ttl_seconds: int,
        extra: Mapping[str, str] | None = None,
    ) -> str:
        """A fresh random state; only its hash is stored, so a leaked file cannot replay it."""
        state = pysecrets.token_urlsafe(32)
        now = time.time()
        with self._write() as con:
            con.execute("DELETE FROM connect_states WHERE expires_at < ?", (now - 86400,))
            con.execute(
                "INSERT INTO connect_states VALUES (?,?,?,?,?,?,NULL)",
                (
                    _state_hash(state),
                    integration,
                    connection_id,
                    purpose,
                    json.dumps(dict(extra or {})),
                    now + ttl_seconds,
                ),
            )
        return state

    def consume_state(self, state: str, purpose: str) -> tuple[str, str, dict[str, str]]:
        """(integration, connection_id, extra) for a valid state, marking it used; else InvalidState."""
        if not state:
            raise InvalidState("the request carries no state")
        now = time.time()
        with self._write() as con:
            row = con.execute("SELECT * FROM connect_states WHERE state_hash = ?", (_state_hash(state),)).fetchone()
            if row is None or row["purpose"] != purpose:
                raise InvalidState("unknown state: this link was not issued by this server")
            if row["used_at"] is not None:
                raise InvalidState("this state was already used; start the connection again")
            if row["expires_at"] < now:
                raise InvalidState("this state has expired; start the connection again")
            con.execute("UPDATE connect_states SET used_at = ? WHERE state_hash = ?", (now, row["state_hash"]))
        return row["integration"], row["connection_id"], json.loads(row["extra"])

    # --- webhook inbox ---------------------------------------------------------------------

    def record_event(
        self, integration: str, event_id: str, event_type: str, account_id: str | None, body: bytes
    ) -> tuple[bool, str]:
        """(newly recorded?, current status). Bodies are encrypted: some carry tokens (access_code)."""
        cipher = self._cipher
        with self._write() as con:
            row = con.execute(
                "SELECT status FROM webhook_events WHERE integration = ? AND event_id = ?", (integration, event_id)
            ).fetchone()
            if row is not None:
                return False, str(row["status"])
            con.execute(
                "INSERT INTO webhook_events VALUES (?,?,?,?,?,'pending',NULL,?,NULL)",
                (integration, event_id, event_type, account_id, cipher.encrypt(body.decode()), _now()),
            )
        return True, "pending"

    def set_event_status(self, integration: str, event_id: str, status: str, detail: str | None = None) -> None:
        with self._write() as con:
            con.execute(
                "UPDATE webhook_events SET status = ?, detail = ?, processed_at = ? "
                "WHERE integration = ? AND event_id = ?",
                (status, detail, _now() if status != "pending" else None, integration, event_id),
            )

    def events(self, status: str | None = None, integration: str | None = None) -> list[dict[str, Any]]:
        sql, args = (
            "SELECT integration, event_id, event_type, account_id, status, detail, received_at, processed_at "
            "FROM webhook_events WHERE 1=1",
            [],
        )
        if status:
            sql, args = sql + " AND status = ?", [*args, status]
        if integration:
            sql, args = sql + " AND integration = ?", [*args, integration]
        with self._read() as con:
            return [dict(r) for r in con.execute(sql + " ORDER BY received_at", args).fetchall()]

    def event_body(self, integration: str, event_id: str) -> bytes:
        with self._read() as con:
            row = con.execute(
                "SELECT body FROM webhook_events WHERE integration = ? AND event_id = ?", (integration, event_id)
            ).fetchone()
        if row is None:
            raise KeyError(f"no {integration} webhook event {event_id!r} in the inbox")
        return self._cipher.decrypt(row["body"]).encode()


def _check_integration(integration: str) -> None:
    from integrations.engine.registry import get_integration

    get_integration(integration)  # unknown names fail with the registry's message
