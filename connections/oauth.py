"""Partner OAuth: the authorize redirect for an opened connect session, then the code-for-token exchange."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from connections.app_config import app_urls, require_app_secrets
from connections.errors import ConnectionsError, ProviderCallFailed
from connections.models import ConnectionMetadata, Credentials
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


def authorize_url(store: ConnectionStore, integration: str, state: str) -> str:
    """The provider URL to send the browser to, carrying the state of an opened connect session."""
    oauth = _oauth_config(integration)
    secrets = require_app_secrets(store, integration, oauth.app_secrets)
    urls, _ = app_urls(store, integration)
    base = urls[oauth.authorize_url].format(client_id=secrets["client_id"].get_secret_value())
    return f"{base}{'&' if '?' in base else '?'}{urlencode({'state': state})}"


def check_ready(store: ConnectionStore, integration: str) -> None:
    """Fail before anything is written when the platform's app secrets are missing."""
    require_app_secrets(store, integration, _oauth_config(integration).app_secrets)


def exchange_code(
    store: ConnectionStore, integration: str, code: str, settings: dict[str, str]
) -> tuple[Credentials, ConnectionMetadata]:
    """Trade the authorization code for the customer's token and what the provider says about it."""
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
    account = body.get(oauth.account_id_field) if oauth.account_id_field else None
    metadata = ConnectionMetadata(
        provider_account_id=str(account) if account is not None else None,
        environment=settings.get("environment"),
        base_url=settings.get("base_url"),
        tags=kept,
    )
    return Credentials(token=access_token), metadata
