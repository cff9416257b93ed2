"""Partner OAuth: a single-use state bound to the connection, then the code-for-token exchange."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from connections.app_config import app_urls, require_app_secrets
from connections.errors import ConnectionsError, ProviderCallFailed
from connections.models import Connection, ConnectionMetadata, Credentials
from connections.store import ConnectionStore
from integrations.engine.auth import redact_url
from integrations.engine.registry import get_integration

STATE_TTL_SECONDS = 600
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class OAuthNotSupported(ConnectionsError):
    pass


def _oauth_config(integration: str):  # type: ignore[no-untyped-def]
    definition = get_integration(integration).definition
    if "oauth" not in definition.auth.connect or definition.auth.oauth is None:
        raise OAuthNotSupported(f"{integration} does not connect through OAuth (connect: {definition.auth.connect})")
    return definition.auth.oauth


def authorize_url(store: ConnectionStore, integration: str, connection_id: str) -> str:
    """The provider URL to send the user to, carrying a fresh state for (integration, connection_id)."""
    oauth = _oauth_config(integration)
    Connection(connection_id=connection_id, integration=integration)  # validates the id up front
    secrets = require_app_secrets(store, integration, oauth.app_secrets)
    urls, settings = app_urls(store, integration)
    state = store.issue_state(
        integration,
        connection_id,
        "oauth",
        STATE_TTL_SECONDS,
        {k: v for k, v in settings.items() if v is not None},
    )
    base = urls[oauth.authorize_url].format(client_id=secrets["client_id"].get_secret_value())
    return f"{base}{'&' if '?' in base else '?'}{urlencode({'state': state})}"


def complete(store: ConnectionStore, code: str, state: str) -> Connection:
    """Validate the state (single use, unexpired), exchange the code, store the token."""
    integration, connection_id, extra = store.consume_state(state, "oauth")
    if not code:
        raise ProviderCallFailed("the provider sent no authorization code")
    oauth = _oauth_config(integration)
    secrets = require_app_secrets(store, integration, oauth.app_secrets)
    urls, _ = app_urls(store, integration)
    token_url = urls[oauth.token_url]
    payload = {
        "client_id": secrets["client_id"].get_secret_value(),
        "client_secret": secrets["client_secret"].get_secret_value(),
        "code": code,
        "grant_type": "authorization_code",
    }
    try:
        response = httpx.post(token_url, json=payload, timeout=TIMEOUT, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ProviderCallFailed(f"token exchange at {redact_url(token_url)} failed: {type(exc).__name__}") from None
    if not response.is_success:
        raise ProviderCallFailed(f"token exchange at {redact_url(token_url)} answered HTTP {response.status_code}")
    try:
        body = response.json()
        access_token = body["access_token"]
    except (ValueError, KeyError, TypeError):
        raise ProviderCallFailed(f"token exchange at {redact_url(token_url)} returned no access_token") from None
    kept = {k: str(body[k]) for k in oauth.token_metadata if body.get(k) is not None}
    metadata = ConnectionMetadata(
        checkr_account_id=kept.pop("checkr_account_id", None),
        environment=extra.get("environment"),
        base_url=extra.get("base_url"),
        tags=kept,
    )
    connection = Connection(
        connection_id=connection_id, integration=integration, credential_kind="oauth", metadata=metadata
    )
    return store.add(connection, Credentials(token=access_token), replace=True)
