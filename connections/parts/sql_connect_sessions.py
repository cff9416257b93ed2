"""Part 3 in SQL: connect sessions, their single-use states, and the one result each stores.

A state is spent by one `UPDATE ... WHERE state_hash = ? ... RETURNING`: of several requests
presenting it at once (on any number of hosts) exactly one gets the row back; the others, and
any request that does not match, write nothing and are told why from a plain read.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping

from connections.crypto import sha256_hex
from connections.errors import InvalidState, ReplaceRefused, WrongBrowser
from connections.models import Connection, ConnectSession, Credentials
from connections.parts.sql_base import Row
from connections.parts.sql_credentials import SqlCredentials, connection_lock
from integrations.engine.auth import remember_secret

USED = "this connect link was already used; ask your platform for a new one"


class SqlConnectSessions(SqlCredentials):
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
            self._lock(con, f"connect session {session.session_id}")
            con.execute("DELETE FROM connect_sessions WHERE expires_at < ?", (now - 86400,))
            row = con.execute("SELECT * FROM connect_sessions WHERE session_id = ?", (session.session_id,)).fetchone()
            expires = max(float(session.expires_at), now + state_ttl)
            if row is None:
                con.execute(
                    "INSERT INTO connect_sessions (session_id, integration, connection_id, purpose, options, "
                    "settings, browser_hash, state_hash, state_expires_at, expires_at, completed_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,NULL)",
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
                raise InvalidState(USED)
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
            taken = con.execute(
                "UPDATE connect_sessions SET state_hash = NULL WHERE session_id = ? AND purpose = ? "
                "AND state_hash = ? AND completed_at IS NULL AND browser_hash = ? AND state_expires_at >= ? "
                "RETURNING options, settings",
                (session_id, purpose, sha256_hex(state), browser_hash, now),
            ).fetchone()
        if taken is not None:
            return ConnectSession.model_validate_json(taken["options"]), json.loads(taken["settings"])
        with self._read() as con:
            row = con.execute("SELECT * FROM connect_sessions WHERE session_id = ?", (session_id,)).fetchone()
        raise _why_not(row, state, purpose, browser_hash)

    def complete_connect(self, session: ConnectSession, connection: Connection, credentials: Credentials) -> Connection:
        """Store what a connect flow obtained, as far as the session allows, and close the session.

        An active connection with this id is replaced only when the session says `reconnect`; any
        existing one only by the same provider account unless it says `allow_account_change`.
        """
        token = credentials.token.get_secret_value()
        remember_secret(token)
        with self._write() as con:
            self._lock(con, f"connect session {session.session_id}")
            self._lock(con, connection_lock(connection.integration, connection.connection_id))
            row = con.execute(
                "SELECT completed_at FROM connect_sessions WHERE session_id = ?", (session.session_id,)
            ).fetchone()
            if row is None or row["completed_at"] is not None:
                raise InvalidState(USED)
            existing = self._existing(con, connection)
            if existing is not None:
                self._check_replacement(existing, connection, token, session)
            stored = self._insert(con, connection, token, existing)
            con.execute(
                "UPDATE connect_sessions SET completed_at = ?, state_hash = NULL WHERE session_id = ?",
                (time.time(), session.session_id),
            )
        return stored

    def _check_replacement(self, existing: Row, connection: Connection, token: str, session: ConnectSession) -> None:
        name = f"{connection.integration} connection {connection.connection_id!r}"
        if existing["status"] == "active" and not session.reconnect:
            raise ReplaceRefused(
                f"{name} is already connected and active; nothing was changed. Only a link minted as a "
                "reconnect (`connect-link --reconnect`) may replace it"
            )
        if session.allow_account_change:
            return
        old, new = existing["provider_account_id"], connection.metadata.provider_account_id
        same = old == new if old and new else hmac.compare_digest(self._decrypt(bytes(existing["secret"])), token)
        if not same:
            raise ReplaceRefused(
                f"{name} belongs to provider account {old or '(the one stored)'}, but this flow connected "
                f"{new or 'a different account'}; nothing was changed. A switch to another account needs a "
                "link minted with `--allow-account-change`"
            )


def _why_not(row: Row | None, state: str, purpose: str, browser_hash: str) -> InvalidState | WrongBrowser:
    """Why a state was not taken, checked in the order a user can act on."""
    if row is None or row["purpose"] != purpose:
        return InvalidState("unknown state: this link was not issued by this server")
    if row["state_hash"] is None or not hmac.compare_digest(row["state_hash"], sha256_hex(state)):
        return InvalidState("this state was already used (or replaced by a newer attempt); open the link again")
    if row["completed_at"] is not None:
        return InvalidState(USED)
    if not hmac.compare_digest(row["browser_hash"], browser_hash):
        return WrongBrowser(
            "this connection was started in another browser (its connect cookie is missing or different)"
        )
    return InvalidState("this state has expired; open the connect link again")
