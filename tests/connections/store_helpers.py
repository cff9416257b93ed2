"""Seeding and inspecting the store in tests (a plain module: conftest names collide across folders)."""

from __future__ import annotations

import subprocess

from connections.models import Connection, ConnectionMetadata, Credentials
from connections.postgres_store import PostgresConnectionStore
from connections.sqlite_store import SqliteConnectionStore
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


def reopen(store: ConnectionStore, keys: list[str] | None = None) -> ConnectionStore:
    """The same store opened anew (as another process would), with `keys` instead of the configured ones."""
    if isinstance(store, PostgresConnectionStore):
        return PostgresConnectionStore(store.url, keys=keys)
    assert isinstance(store, SqliteConnectionStore)
    return SqliteConnectionStore(store.path, keys=keys)


def raw_bytes(store: ConnectionStore) -> bytes:
    """Everything the store wrote, as bytes: the SQLite file (and WAL), or a pg_dump of the database."""
    if isinstance(store, PostgresConnectionStore):
        from tests.support.postgres import find_bin_dir

        dump = subprocess.run(
            [str(find_bin_dir() / "pg_dump"), "--no-owner", "-d", store.url],
            capture_output=True, check=True, timeout=60,
        )
        return dump.stdout
    assert isinstance(store, SqliteConnectionStore)
    return b"".join(p.read_bytes() for p in store.path.parent.glob(f"{store.path.name}*"))
