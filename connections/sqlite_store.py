"""The default connection store: one SQLite file, apart from the warehouse, secrets encrypted.

WAL mode lets readers proceed during a write; `BEGIN IMMEDIATE` takes the write lock up front
and busy_timeout waits for it, so several processes (CLI, web app, Prefect workers) can write
at once without "database is locked" failures. A fresh sqlite3 connection per call keeps the
store safe to share between threads.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from common import settings
from connections.crypto import Cipher, key_file_path, load_keys, parse_keys, sha256_hex
from connections.errors import (
    BadSecretKey,
    ConnectionExists,
    ConnectionNotFound,
    ConnectionsError,
    InvalidState,
    NoSecretKey,
    ReplaceRefused,
    WrongBrowser,
)
from connections.models import STATUSES, Connection, ConnectionMetadata, ConnectSession, Credentials, utcnow
from integrations.engine.auth import remember_secret

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
# A process whose keys come from the environment or key file re-reads them this often, and at
# once when a stored secret will not decrypt: after `rotate-key` a running web app follows.
KEY_RELOAD_SECONDS = 30.0
KEY_CHECK = "screensync key check v1"

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
    PRIMARY KEY (integration, event_id)
);
-- the webhook applier asks for the oldest pending events every few seconds
CREATE INDEX IF NOT EXISTS webhook_events_by_status ON webhook_events (status, received_at);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SqliteConnectionStore:
    def __init__(self, path: str | os.PathLike[str], *, keys: list[str] | None = None) -> None:
        self.path = Path(path).expanduser()
        self._keys = keys
        self._cipher_cache: Cipher | None = None
        self._loaded_at = 0.0
        self._ready = False

    def __repr__(self) -> str:
        return f"SqliteConnectionStore({str(self.path)!r})"

    # --- plumbing --------------------------------------------------------------------------

    @property
    def _cipher(self) -> Cipher:
        if self._cipher_cache is None:
            self._cipher_cache = Cipher(self._keys if self._keys is not None else load_keys())
            self._loaded_at = time.monotonic()
        elif self._keys is None and time.monotonic() - self._loaded_at > KEY_RELOAD_SECONDS:
            try:
                self.reload_keys()
            except ConnectionsError as exc:  # a key file being replaced: keep the keys we have
                log.warning("could not re-read the encryption key(s): %s", exc)
                self._loaded_at = time.monotonic()
        return self._cipher_cache

    def reload_keys(self) -> bool:
        """Re-read keys from SCREENSYNC_SECRET_KEY / the key file; True when they changed."""
        if self._keys is not None:
            return False
        keys = load_keys()
        self._loaded_at = time.monotonic()
        if self._cipher_cache is not None and self._cipher_cache.keys == keys:
            return False
        self._cipher_cache = Cipher(keys)
        return True

    def _decrypt(self, blob: bytes) -> str:
        """Decrypt with the current keys, re-reading them once if that fails (a rotation happened)."""
        try:
            return self._cipher.decrypt(blob)
        except BadSecretKey:
            if not self.reload_keys():
                raise
        return self._cipher.decrypt(blob)

    def _check_key(self, con: sqlite3.Connection) -> Cipher:
        """The cipher to write with, once it is proven to read what the store already holds.

        Writing under a key that cannot read the store would leave rows no single key opens
        (and a later rotation failing on them), so such writes are refused up front.
        """
        checked = con.execute("SELECT 1 FROM store_meta WHERE name = 'key_check'").fetchone() is not None
        if not self._reads(_probes(con)):
            raise BadSecretKey(
                f"the configured encryption key cannot decrypt the connection store {self.path}: it was "
                "written under another key (or rotated since). Nothing was written. Configure the key the "
                f"store was last rotated to ({settings.SECRET_KEY_ENV} or the key file {key_file_path()})"
            )
        if not checked:
            con.execute("INSERT INTO store_meta VALUES ('key_check', ?)", (self._cipher.encrypt(KEY_CHECK),))
        return self._cipher

    def _reads(self, probes: list[bytes]) -> bool:
        """True when the configured keys decrypt one of `probes` (or there is nothing to decrypt)."""
        for probe in probes:
            try:
                self._decrypt(probe)
            except BadSecretKey:
                continue
            return True
        return not probes

    def health(self) -> None:
        """Raise (naming the problem, never a secret) unless the configured keys read this store.

        The keys are re-read first: health reports what the configuration can do, not what an
        older key still cached in this process could.
        """
        self.reload_keys()
        self._cipher  # noqa: B018  (the keys must at least load)
        with self._read() as con:
            probes = _probes(con)
        if not self._reads(probes):
            raise BadSecretKey(f"the configured encryption key cannot decrypt the connection store {self.path}")

    def derived_keys(self, label: str) -> list[bytes]:
        return self._cipher.derived_keys(label)

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
        remember_secret(token)
        self._cipher  # noqa: B018  (NoSecretKey before anything is written)
        with self._write() as con:
            existing = self._existing(con, connection)
            if existing and not replace:
                raise ConnectionExists(connection.integration, connection.connection_id)
            return self._insert(con, connection, token, existing)

    @staticmethod
    def _existing(con: sqlite3.Connection, connection: Connection) -> sqlite3.Row | None:
        row: sqlite3.Row | None = con.execute(
            "SELECT * FROM connections WHERE integration = ? AND connection_id = ?",
            (connection.integration, connection.connection_id),
        ).fetchone()
        return row

    def _insert(
        self, con: sqlite3.Connection, connection: Connection, token: str, existing: sqlite3.Row | None
    ) -> Connection:
        """Write (or overwrite) one connection; an overwritten one keeps its created_at."""
        cipher = self._check_key(con)
        created = datetime.fromisoformat(existing["created_at"]) if existing else connection.created_at
        stored = connection.model_copy(update={"created_at": created, "updated_at": utcnow()})
        con.execute(
            "INSERT OR REPLACE INTO connections VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                stored.integration,
                stored.connection_id,
                stored.credential_kind,
                stored.metadata.model_dump_json(),
                stored.metadata.provider_account_id,
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
        token = self._decrypt(row["secret"])
        remember_secret(token)
        return Credentials(token=SecretStr(token))

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
                "UPDATE connections SET metadata = ?, provider_account_id = ?, updated_at = ? "
                "WHERE integration = ? AND connection_id = ?",
                (updated.model_dump_json(), updated.provider_account_id, _now(), integration, connection_id),
            )
        return self.get(integration, connection_id)

    def remove(self, integration: str, connection_id: str) -> None:
        with self._write() as con:
            self._row(con, integration, connection_id)
            con.execute(
                "DELETE FROM connections WHERE integration = ? AND connection_id = ?", (integration, connection_id)
            )

    def find_by_account(self, integration: str, provider_account_id: str) -> list[Connection]:
        with self._read() as con:
            rows = con.execute(
                "SELECT * FROM connections WHERE integration = ? AND provider_account_id = ? ORDER BY connection_id",
                (integration, provider_account_id),
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
        self._cipher  # noqa: B018  (NoSecretKey before anything is written)
        for name, value in secrets.items():
            if not name or not str(value).strip():
                raise ValueError(f"app secret {name!r} is empty")
        remember_secret(*(str(v).strip() for v in secrets.values()))
        with self._write() as con:
            cipher = self._check_key(con)
            row = con.execute("SELECT * FROM app_secrets WHERE integration = ?", (integration,)).fetchone()
            merged: dict[str, str] = json.loads(self._decrypt(row["secret"])) if row else {}
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
        values: dict[str, str] = json.loads(self._decrypt(row["secret"]))
        remember_secret(*values.values())
        return {k: SecretStr(v) for k, v in values.items()}

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

        def rotated(blob: bytes, what: str) -> bytes:
            try:
                return both.rotate(blob)
            except BadSecretKey:
                raise BadSecretKey(
                    f"{what} cannot be decrypted with the configured key(s) or the new one: nothing was "
                    "re-encrypted. Configure the key it was written under next to the current one "
                    "(comma-separated) and run rotate-key again, or remove that row"
                ) from None

        count = 0
        with self._write() as con:
            for row in con.execute("SELECT integration, connection_id, secret FROM connections").fetchall():
                secret = rotated(row["secret"], f"connection {row['integration']}/{row['connection_id']}")
                token = target.decrypt(secret)
                con.execute(
                    "UPDATE connections SET secret = ?, token_hash = ? WHERE integration = ? AND connection_id = ?",
                    (secret, target.token_hash(token), row["integration"], row["connection_id"]),
                )
                count += 1
            for row in con.execute("SELECT integration, secret FROM app_secrets").fetchall():
                con.execute(
                    "UPDATE app_secrets SET secret = ? WHERE integration = ?",
                    (rotated(row["secret"], f"the app secrets of {row['integration']}"), row["integration"]),
                )
                count += 1
            for row in con.execute("SELECT integration, event_id, body FROM webhook_events").fetchall():
                con.execute(
                    "UPDATE webhook_events SET body = ? WHERE integration = ? AND event_id = ?",
                    (
                        rotated(row["body"], f"webhook event {row['integration']}/{row['event_id']}"),
                        row["integration"],
                        row["event_id"],
                    ),
                )
                count += 1
            con.execute("INSERT OR REPLACE INTO store_meta VALUES ('key_check', ?)", (target.encrypt(KEY_CHECK),))
        self._keys = keys
        self._cipher_cache = target
        return count

    # --- connect sessions (opened links) ------------------------------------------------------

    def begin_connect(
        self,
        session: ConnectSession,
        purpose: str,
        *,
        browser_hash: str,
        state: str,
        state_ttl: float,
        settings: Mapping[str, str],
    ) -> None:
        """Bind a verified link to the browser opening it and give it a fresh single-use state.

        The first open claims the session for that browser; opening it again from the same
        browser (a retry) replaces the state; any other browser, or a completed session, is refused.
        """
        now = time.time()
        with self._write() as con:
            con.execute("DELETE FROM connect_sessions WHERE expires_at < ?", (now - 86400,))
            row = con.execute("SELECT * FROM connect_sessions WHERE session_id = ?", (session.session_id,)).fetchone()
            expires = max(float(session.expires_at), now + state_ttl)
            if row is None:
                con.execute(
                    "INSERT INTO connect_sessions VALUES (?,?,?,?,?,?,?,?,?,?,NULL)",
                    (
                        session.session_id,
                        session.integration,
                        session.connection_id,
                        purpose,
                        session.model_dump_json(),
                        json.dumps(dict(settings)),
                        browser_hash,
                        sha256_hex(state),
                        now + state_ttl,
                        expires,
                    ),
                )
                return
            if row["completed_at"] is not None:
                raise InvalidState("this connect link was already used; ask your platform for a new one")
            if not hmac.compare_digest(row["browser_hash"], browser_hash):
                raise WrongBrowser("this connect link was already opened in another browser; ask for a new link")
            con.execute(
                "UPDATE connect_sessions SET state_hash = ?, state_expires_at = ?, settings = ?, expires_at = ? "
                "WHERE session_id = ?",
                (sha256_hex(state), now + state_ttl, json.dumps(dict(settings)), expires, session.session_id),
            )

    def take_state(self, state: str, purpose: str, *, browser_hash: str) -> tuple[ConnectSession, dict[str, str]]:
        """(session, app settings) for a valid state presented by the browser that opened the link.

        The state is spent (single use) only when everything matches; any failure writes nothing.
        """
        session_id, dot, _ = state.partition(".")
        if not dot or not session_id:
            raise InvalidState("unknown state: this link was not issued by this server")
        now = time.time()
        with self._write() as con:
            row = con.execute("SELECT * FROM connect_sessions WHERE session_id = ?", (session_id,)).fetchone()
            if row is None or row["purpose"] != purpose:
                raise InvalidState("unknown state: this link was not issued by this server")
            if row["state_hash"] is None or not hmac.compare_digest(row["state_hash"], sha256_hex(state)):
                raise InvalidState("this state was already used (or replaced by a newer attempt); open the link again")
            if row["completed_at"] is not None:
                raise InvalidState("this connect link was already used; ask your platform for a new one")
            if not hmac.compare_digest(row["browser_hash"], browser_hash):
                raise WrongBrowser(
                    "this connection was started in another browser (its connect cookie is missing or different)"
                )
            if row["state_expires_at"] < now:
                raise InvalidState("this state has expired; open the connect link again")
            con.execute("UPDATE connect_sessions SET state_hash = NULL WHERE session_id = ?", (session_id,))
        return ConnectSession.model_validate_json(row["options"]), json.loads(row["settings"])

    def complete_connect(self, session: ConnectSession, connection: Connection, credentials: Credentials) -> Connection:
        """Store what a connect flow obtained, as far as the session allows, and close the session.

        An active connection with this id is replaced only when the session says `reconnect`; any
        existing one only by the same provider account unless it says `allow_account_change`.
        """
        token = credentials.token.get_secret_value()
        remember_secret(token)
        with self._write() as con:
            row = con.execute(
                "SELECT completed_at FROM connect_sessions WHERE session_id = ?", (session.session_id,)
            ).fetchone()
            if row is None or row["completed_at"] is not None:
                raise InvalidState("this connect link was already used; ask your platform for a new one")
            existing = self._existing(con, connection)
            if existing is not None:
                self._check_replacement(existing, connection, token, session)
            stored = self._insert(con, connection, token, existing)
            con.execute(
                "UPDATE connect_sessions SET completed_at = ?, state_hash = NULL WHERE session_id = ?",
                (time.time(), session.session_id),
            )
        return stored

    def _check_replacement(
        self, existing: sqlite3.Row, connection: Connection, token: str, session: ConnectSession
    ) -> None:
        name = f"{connection.integration} connection {connection.connection_id!r}"
        if existing["status"] == "active" and not session.reconnect:
            raise ReplaceRefused(
                f"{name} is already connected and active; nothing was changed. Only a link minted as a "
                "reconnect (`connect-link --reconnect`) may replace it"
            )
        if session.allow_account_change:
            return
        old, new = existing["provider_account_id"], connection.metadata.provider_account_id
        same = old == new if old and new else hmac.compare_digest(self._decrypt(existing["secret"]), token)
        if not same:
            raise ReplaceRefused(
                f"{name} belongs to provider account {old or '(the one stored)'}, but this flow connected "
                f"{new or 'a different account'}; nothing was changed. A switch to another account needs a "
                "link minted with `--allow-account-change`"
            )

    # --- webhook inbox ---------------------------------------------------------------------

    def record_event(
        self, integration: str, event_id: str, event_type: str, account_id: str | None, body: bytes
    ) -> tuple[bool, str]:
        """(newly recorded?, current status). Bodies are encrypted: some carry tokens (access_code)."""
        text = body.decode("utf-8")  # the receiver refuses other encodings before this
        with self._write() as con:
            cipher = self._check_key(con)
            row = con.execute(
                "SELECT status FROM webhook_events WHERE integration = ? AND event_id = ?", (integration, event_id)
            ).fetchone()
            if row is not None:
                return False, str(row["status"])
            con.execute(
                "INSERT INTO webhook_events VALUES (?,?,?,?,?,'pending',NULL,?,NULL)",
                (integration, event_id, event_type, account_id, cipher.encrypt(text), _now()),
            )
        return True, "pending"

    def set_event_status(self, integration: str, event_id: str, status: str, detail: str | None = None) -> None:
        self.set_event_statuses([(integration, event_id, status, detail)])

    def set_event_statuses(self, updates: list[tuple[str, str, str, str | None]]) -> None:
        """(integration, event id, status, detail) for many events, in one transaction."""
        now = _now()
        with self._write() as con:
            con.executemany(
                "UPDATE webhook_events SET status = ?, detail = ?, processed_at = ? "
                "WHERE integration = ? AND event_id = ?",
                [(status, detail, now if status != "pending" else None, integration, event_id)
                 for integration, event_id, status, detail in updates],
            )

    def events(
        self, status: str | None = None, integration: str | None = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Recorded events, oldest first (`limit`: the oldest that many)."""
        sql, args = (
            "SELECT integration, event_id, event_type, account_id, status, detail, received_at, processed_at "
            "FROM webhook_events WHERE 1=1",
            [],
        )
        if status:
            sql, args = sql + " AND status = ?", [*args, status]
        if integration:
            sql, args = sql + " AND integration = ?", [*args, integration]
        sql += " ORDER BY received_at, rowid"
        if limit is not None:
            sql, args = sql + " LIMIT ?", [*args, int(limit)]
        with self._read() as con:
            return [dict(r) for r in con.execute(sql, args).fetchall()]

    def event_body(self, integration: str, event_id: str) -> bytes:
        with self._read() as con:
            row = con.execute(
                "SELECT body FROM webhook_events WHERE integration = ? AND event_id = ?", (integration, event_id)
            ).fetchone()
        if row is None:
            raise KeyError(f"no {integration} webhook event {event_id!r} in the inbox")
        return self._decrypt(row["body"]).encode()


def migrate_account_column(con: sqlite3.Connection) -> None:
    """Stores written before the provider-neutral schema name the account column (and the metadata
    key) `checkr_account_id`; rename both in place so those stores open unchanged."""
    columns = {row["name"] for row in con.execute("PRAGMA table_info(connections)")}
    if "checkr_account_id" not in columns:
        return
    con.execute("ALTER TABLE connections RENAME COLUMN checkr_account_id TO provider_account_id")
    con.execute(
        "UPDATE connections SET metadata = json_set(json_remove(metadata, '$.checkr_account_id'), "
        "'$.provider_account_id', json_extract(metadata, '$.checkr_account_id')) "
        "WHERE json_type(metadata, '$.checkr_account_id') IS NOT NULL"
    )


def _probes(con: sqlite3.Connection) -> list[bytes]:
    """What proves a key reads this store: the key-check row, or (stores written before it existed)
    the first secret of each table, any of which will do."""
    row = con.execute("SELECT value FROM store_meta WHERE name = 'key_check'").fetchone()
    if row is not None:
        return [bytes(row[0])]
    found = []
    for sql in (
        "SELECT secret FROM connections LIMIT 1",
        "SELECT secret FROM app_secrets LIMIT 1",
        "SELECT body FROM webhook_events LIMIT 1",
    ):
        first = con.execute(sql).fetchone()
        if first is not None:
            found.append(bytes(first[0]))
    return found


def _check_integration(integration: str) -> None:
    from integrations.engine.registry import get_integration

    get_integration(integration)  # unknown names fail with the registry's message


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
