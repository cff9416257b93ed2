"""The connection store interface, and the one place callers get a store from.

Callers depend on `ConnectionStore` only, so a server-backed store (PostgreSQL) can be added
later by implementing this protocol and choosing it in `open_store`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import SecretStr

from connections.models import Connection, ConnectSession, Credentials


@runtime_checkable
class ConnectionStore(Protocol):
    def add(self, connection: Connection, credentials: Credentials, *, replace: bool = False) -> Connection: ...
    def get(self, integration: str, connection_id: str) -> Connection: ...
    def credentials(self, integration: str, connection_id: str) -> Credentials: ...
    def list(self, integration: str | None = None, status: str | None = None) -> list[Connection]: ...
    def set_status(self, integration: str, connection_id: str, status: str, reason: str | None) -> Connection: ...
    def update_metadata(self, integration: str, connection_id: str, **changes: Any) -> Connection: ...
    def remove(self, integration: str, connection_id: str) -> None: ...
    def find_by_account(self, integration: str, provider_account_id: str) -> list[Connection]: ...
    def find_by_token(self, integration: str, token: str) -> Connection | None: ...
    def set_app_secrets(
        self,
        integration: str,
        secrets: Mapping[str, str],
        *,
        base_url: str | None = None,
        environment: str | None = None,
    ) -> None: ...
    def app_secrets(self, integration: str) -> dict[str, SecretStr]: ...
    def app_settings(self, integration: str) -> dict[str, str | None]: ...
    def rotate_key(self, new_keys: str | list[str]) -> int: ...

    # keys: sub-keys for connect-link signatures, a re-read after a rotation, an honest health check
    def derived_keys(self, label: str) -> list[bytes]: ...
    def reload_keys(self) -> bool: ...
    def health(self) -> None: ...

    # connect sessions: a verified link bound to one browser, its single-use state, its one result
    def begin_connect(
        self,
        session: ConnectSession,
        purpose: str,
        *,
        browser_hash: str,
        state: str,
        state_ttl: float,
        settings: Mapping[str, str],
    ) -> None: ...
    def take_state(self, state: str, purpose: str, *, browser_hash: str) -> tuple[ConnectSession, dict[str, str]]: ...
    def complete_connect(
        self, session: ConnectSession, connection: Connection, credentials: Credentials
    ) -> Connection: ...

    # durable webhook inbox
    def record_event(
        self, integration: str, event_id: str, event_type: str, account_id: str | None, body: bytes
    ) -> tuple[bool, str]: ...
    def set_event_status(self, integration: str, event_id: str, status: str, detail: str | None = None) -> None: ...
    def set_event_statuses(self, updates: list[tuple[str, str, str, str | None]]) -> None: ...
    def events(
        self, status: str | None = None, integration: str | None = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]: ...
    def event_body(self, integration: str, event_id: str) -> bytes: ...


def open_store(path: str | None = None) -> ConnectionStore:
    """The store configured by SCREENSYNC_CONNECTIONS (default ~/.screensync/connections.sqlite)."""
    from common import settings
    from connections.sqlite_store import SqliteConnectionStore

    return SqliteConnectionStore(path or settings.connections_path())


def api_urls(connection: Connection) -> dict[str, str]:
    """Every named provider URL for this connection: definition + environment + base-URL override."""
    from integrations.engine.registry import get_integration, provider_urls

    definition = get_integration(connection.integration).definition
    return provider_urls(definition, environment=connection.metadata.environment, base_url=connection.metadata.base_url)


def format_time(value: datetime) -> str:
    return value.isoformat(timespec="seconds")
