"""Engine test helpers: a temp connection store and warehouse wired to the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from cryptography.fernet import Fernet

SANDBOX_KEY = {"checkr": "checkr", "checkr-partner-staging": "checkr_staging", "clearchecks": "clearchecks"}


@dataclass
class Env:
    store: Any
    db: Path

    def connect(self, sandbox: Any, integration: str, connection_id: str, account: int = 0) -> str:
        """Store a connection for sandbox account #`account` (direct API key / api_token)."""
        from connections.models import Connection, ConnectionMetadata, Credentials

        section = sandbox.info[SANDBOX_KEY[integration]]
        acct = section["accounts"][account]
        token = acct.get("api_key") or acct.get("api_token")
        self.store.add(
            Connection(connection_id=connection_id, integration=integration, credential_kind="api_key",
                       metadata=ConnectionMetadata(base_url=section["base_url"], environment="sandbox",
                                                   checkr_account_id=acct.get("id") if "api_key" in acct else None)),
            Credentials(token=token),
            replace=True,
        )
        return str(acct["id"])

    def sync(self, integration: str, connection_id: str, sync: str, **kw: Any) -> Any:
        from integrations.engine.sync_runner import run_sync
        from warehouse.loader import Warehouse

        with Warehouse(self.db) as wh:
            return run_sync(integration, connection_id, sync, warehouse=wh, store=self.store, **kw)

    def sync_all(self, integration: str, connection_id: str, **kw: Any) -> list[Any]:
        from integrations.engine.registry import get_integration

        return [self.sync(integration, connection_id, s.name, **kw) for s in get_integration(integration).definition.syncs]

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def raws(self, schema: str, table: str, connection_id: str) -> dict[str, Any]:
        """id -> stored raw record, for rows not soft-deleted."""
        rows = self.rows(f"SELECT id, _raw FROM {schema}.{table} "
                         f"WHERE connection_id = '{connection_id}' AND _deleted_at IS NULL")
        return {rid: orjson.loads(raw) for rid, raw in rows}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    from connections.store import open_store

    monkeypatch.setenv("SCREENSYNC_CONNECTIONS", str(tmp_path / "connections.sqlite"))
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY", Fernet.generate_key().decode())
    yield Env(store=open_store(), db=tmp_path / "warehouse.duckdb")


def without(record: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in keys}
