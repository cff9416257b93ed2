"""Partner OAuth: the authorize redirect for an opened connect session, then the code-for-token exchange."""

from __future__ import annotations

from urllib.parse import urlencode

from connections.app_config import app_urls, require_app_secrets
from connections.errors import ConnectionsError, ProviderCallFailed
from connections.models import ConnectionMetadata, Credentials
from connections.provider_calls import post_for_json
from connections.store import ConnectionStore
from integrations.engine.auth import redact_url
from integrations.engine.client_factory import ONE_TRY
from integrations.engine.registry import get_integration

STATE_TTL_SECONDS = 600


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
    # an authorization code is single-use: never sent twice
    body = post_for_json(integration, "token exchange", token_url, payload, retry=ONE_TRY)
    try:
        access_token = body["access_token"]
    except (KeyError, TypeError):
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
