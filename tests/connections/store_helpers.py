"""Seeding the store in tests (a plain module: conftest names collide across folders)."""

from __future__ import annotations

from connections.models import Connection, ConnectionMetadata, Credentials
from connections.store import ConnectionStore


def add_connection(
    store: ConnectionStore, connection_id: str, kind: str, account_id: str, token: str, integration: str = "checkr"
) -> Connection:
    return store.add(
        Connection(
            connection_id=connection_id,
            integration=integration,
            credential_kind=kind,  # type: ignore[arg-type]
            metadata=ConnectionMetadata(provider_account_id=account_id),
        ),
        Credentials(token=token),
    )
