"""Part 4 in SQL: the durable webhook inbox.

`record_event` is one `INSERT ... ON CONFLICT DO NOTHING`: a provider's retry, or the same
delivery reaching two receivers at once, leaves one row. `claim_events` hands each pending
event to one worker for a lease (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so
concurrent workers on several hosts take disjoint events without waiting on each other).
"""

from __future__ import annotations

import time
from typing import Any

from connections.parts.sql_base import SqlStoreBase, now_iso

EVENT_COLUMNS = "integration, event_id, event_type, account_id, status, detail, received_at, processed_at"


class SqlWebhookInbox(SqlStoreBase):
    def record_event(
        self, integration: str, event_id: str, event_type: str, account_id: str | None, body: bytes
    ) -> tuple[bool, str]:
        """(newly recorded?, current status). Bodies are encrypted: some carry tokens (access_code)."""
        text = body.decode("utf-8")  # the receiver refuses other encodings before this
        with self._write() as con:
            cipher = self._check_key(con)
            inserted = con.execute(
                "INSERT INTO webhook_events (integration, event_id, event_type, account_id, body, status, "
                "received_at) VALUES (?,?,?,?,?,'pending',?) ON CONFLICT (integration, event_id) DO NOTHING "
                "RETURNING status",
                (integration, event_id, event_type, account_id, cipher.encrypt(text), now_iso()),
            ).fetchone()
            if inserted is not None:
                return True, "pending"
            row = con.execute(
                "SELECT status FROM webhook_events WHERE integration = ? AND event_id = ?", (integration, event_id)
            ).fetchone()
        return False, str(row["status"])

    def set_event_status(self, integration: str, event_id: str, status: str, detail: str | None = None) -> None:
        self.set_event_statuses([(integration, event_id, status, detail)])

    def set_event_statuses(self, updates: list[tuple[str, str, str, str | None]]) -> None:
        """(integration, event id, status, detail) for many events, in one transaction; ends any claim."""
        now = now_iso()
        with self._write() as con:
            con.executemany(
                "UPDATE webhook_events SET status = ?, detail = ?, processed_at = ?, claimed_until = NULL "
                "WHERE integration = ? AND event_id = ?",
                [(status, detail, now if status != "pending" else None, integration, event_id)
                 for integration, event_id, status, detail in updates],
            )

    def events(
        self, status: str | None = None, integration: str | None = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Recorded events, oldest first (`limit`: the oldest that many)."""
        sql, args = self._select_events(status, integration)
        sql += f" ORDER BY {self.EVENT_ORDER}"
        if limit is not None:
            sql, args = sql + " LIMIT ?", [*args, int(limit)]
        with self._read() as con:
            return [dict(r) for r in con.execute(sql, args).fetchall()]

    def claim_events(
        self, limit: int, integration: str | None = None, *, lease_seconds: float = 300.0
    ) -> list[dict[str, Any]]:
        """The oldest pending events no other worker holds, now held by this one for `lease_seconds`.

        Settling an event (`set_event_statuses`, `pending` included) ends its claim; a worker that
        dies holding some leaves them to be claimed again when the lease runs out.
        """
        now = time.time()
        sql, args = self._select_events("pending", integration)
        sql += f" AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY {self.EVENT_ORDER} LIMIT ?"
        with self._write() as con:
            rows = [dict(r) for r in con.execute(sql + self.SKIP_LOCKED, [*args, now, int(limit)]).fetchall()]
            con.executemany(
                "UPDATE webhook_events SET claimed_until = ? WHERE integration = ? AND event_id = ?",
                [(now + lease_seconds, r["integration"], r["event_id"]) for r in rows],
            )
        return rows

    @staticmethod
    def _select_events(status: str | None, integration: str | None) -> tuple[str, list[Any]]:
        sql, args = f"SELECT {EVENT_COLUMNS} FROM webhook_events WHERE 1=1", []
        if status:
            sql, args = sql + " AND status = ?", [*args, status]
        if integration:
            sql, args = sql + " AND integration = ?", [*args, integration]
        return sql, args

    def event_body(self, integration: str, event_id: str) -> bytes:
        with self._read() as con:
            row = con.execute(
                "SELECT body FROM webhook_events WHERE integration = ? AND event_id = ?", (integration, event_id)
            ).fetchone()
        if row is None:
            raise KeyError(f"no {integration} webhook event {event_id!r} in the inbox")
        return self._decrypt(bytes(row["body"])).encode()
