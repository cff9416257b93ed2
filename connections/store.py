"""The connection store interface, and the one place callers get a store from.

`ConnectionStore` is the four parts together (connections/parts/: credentials with keys and
rotation, app secrets, connect sessions, the webhook inbox); a caller that needs only one part
may depend on that part's Protocol. `open_store` picks the backend from SCREENSYNC_CONNECTIONS:
a `postgresql://` URL opens the PostgreSQL store (several hosts share it), anything else is the
path of a SQLite file.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Protocol, runtime_checkable

from connections.models import Connection
from connections.parts.app_secrets import AppSecretStore
from connections.parts.connect_sessions import ConnectSessionStore
from connections.parts.credentials import CredentialStore
from connections.parts.webhook_inbox import WebhookInboxStore

URL_SCHEMES = ("postgresql://", "postgres://")


@runtime_checkable
class ConnectionStore(CredentialStore, AppSecretStore, ConnectSessionStore, WebhookInboxStore, Protocol):
    """Everything the store keeps: credentials, app secrets, connect sessions, the webhook inbox."""


def is_url(location: str | os.PathLike[str]) -> bool:
    return str(location).startswith(URL_SCHEMES)


def configured_location() -> str:
    """SCREENSYNC_CONNECTIONS as given (a URL must not pass through Path, which folds its '//')."""
    from common import settings

    return os.environ.get(settings.CONNECTIONS_ENV) or str(settings.DEFAULT_CONNECTIONS)


def store_exists(location: str | None = None) -> bool:
    """Is there a store to read (a server store always counts: opening one creates nothing to clean up)?"""
    location = location or configured_location()
    return is_url(location) or os.path.exists(os.path.expanduser(location))


def open_store(location: str | os.PathLike[str] | None = None) -> ConnectionStore:
    """The store at `location`, else the one SCREENSYNC_CONNECTIONS names (default
    ~/.screensync/connections.sqlite): a postgresql:// URL or a SQLite file path."""
    location = str(location) if location is not None else configured_location()
    if is_url(location):
        from connections.postgres_store import PostgresConnectionStore

        return PostgresConnectionStore(location)
    from connections.sqlite_store import SqliteConnectionStore

    return SqliteConnectionStore(location)


def api_urls(connection: Connection) -> dict[str, str]:
    """Every named provider URL for this connection: definition + environment + base-URL override."""
    from integrations.engine.registry import get_integration, provider_urls

    definition = get_integration(connection.integration).definition
    return provider_urls(definition, environment=connection.metadata.environment, base_url=connection.metadata.base_url)


def format_time(value: datetime) -> str:
    return value.isoformat(timespec="seconds")
