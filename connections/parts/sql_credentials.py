"""Part 1 in SQL: connections and their encrypted credentials (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import SecretStr, ValidationError

from connections.errors import ConnectionExists, ConnectionNotFound
from connections.models import STATUSES, Connection, ConnectionMetadata, Credentials, utcnow
from connections.parts.sql_base import Db, Row, SqlStoreBase, now_iso
from integrations.engine.auth import remember_secret

COLUMNS = (
    "integration, connection_id, credential_kind, metadata, provider_account_id, status, status_reason, "
    "created_at, updated_at, secret, token_hash"
)
_REPLACED = [c.strip() for c in COLUMNS.split(",")][2:]
UPSERT = (
    f"INSERT INTO connections ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (integration, connection_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _REPLACED)
)


def connection_lock(integration: str, connection_id: str) -> str:
    return f"connection {integration}/{connection_id}"


class SqlCredentials(SqlStoreBase):
    @staticmethod
    def _row_to_connection(row: Row) -> Connection:
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

    @staticmethod
    def _row(con: Db, integration: str, connection_id: str) -> Row:
        row: Row | None = con.execute(
            "SELECT * FROM connections WHERE integration = ? AND connection_id = ?", (integration, connection_id)
        ).fetchone()
        if row is None:
            raise ConnectionNotFound(integration, connection_id)
        return row

    def add(self, connection: Connection, credentials: Credentials, *, replace: bool = False) -> Connection:
        """Store a connection; with replace=True an existing one keeps its created_at."""
        check_integration(connection.integration)
        token = credentials.token.get_secret_value()
        remember_secret(token)
        self._cipher  # noqa: B018  (NoSecretKey before anything is written)
        with self._write() as con:
            self._lock(con, connection_lock(connection.integration, connection.connection_id))
            existing = self._existing(con, connection)
            if existing and not replace:
                raise ConnectionExists(connection.integration, connection.connection_id)
            return self._insert(con, connection, token, existing)

    @staticmethod
    def _existing(con: Db, connection: Connection) -> Row | None:
        row: Row | None = con.execute(
            "SELECT * FROM connections WHERE integration = ? AND connection_id = ?",
            (connection.integration, connection.connection_id),
        ).fetchone()
        return row

    def _insert(self, con: Db, connection: Connection, token: str, existing: Row | None) -> Connection:
        """Write (or overwrite) one connection; an overwritten one keeps its created_at."""
        cipher = self._check_key(con)
        created = datetime.fromisoformat(existing["created_at"]) if existing else connection.created_at
        stored = connection.model_copy(update={"created_at": created, "updated_at": utcnow()})
        con.execute(
            UPSERT,
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
        token = self._decrypt(bytes(row["secret"]))
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
                (status, reason, now_iso(), integration, connection_id),
            )
        return self.get(integration, connection_id)

    def update_metadata(self, integration: str, connection_id: str, **changes: Any) -> Connection:
        with self._write() as con:
            self._lock(con, connection_lock(integration, connection_id))
            row = self._row(con, integration, connection_id)
            current = ConnectionMetadata.model_validate_json(row["metadata"])
            try:
                updated = ConnectionMetadata.model_validate({**current.model_dump(), **changes})
            except ValidationError as exc:
                raise ValueError(f"bad metadata for {integration}/{connection_id}: {exc}") from None
            con.execute(
                "UPDATE connections SET metadata = ?, provider_account_id = ?, updated_at = ? "
                "WHERE integration = ? AND connection_id = ?",
                (updated.model_dump_json(), updated.provider_account_id, now_iso(), integration, connection_id),
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


def check_integration(integration: str) -> None:
    from integrations.engine.registry import get_integration

    get_integration(integration)  # unknown names fail with the registry's message
