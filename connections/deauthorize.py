"""Ending a connection: marking it invalid (provider refused it) or revoking it at the provider.

These are the functions flows and the engine call; they open the store from the environment
unless one is passed.
"""

from __future__ import annotations

from connections.errors import ProviderCallFailed
from connections.models import Connection
from connections.store import ConnectionStore, api_urls, open_store
from integrations.engine.auth import redact_url
from integrations.engine.client_factory import INTERACTIVE_RETRY, open_client
from integrations.engine.errors import AuthFailed, EngineError
from integrations.engine.registry import get_integration


def mark_invalid(integration: str, connection_id: str, reason: str, *, store: ConnectionStore | None = None) -> None:
    """The provider answered 401/403: stop using the connection until it is reconnected or re-tested."""
    (store or open_store()).set_status(integration, connection_id, "invalid", reason)


def revoke(integration: str, connection_id: str, *, store: ConnectionStore | None = None) -> Connection:
    """Deauthorize the token at the provider (when it has an endpoint for that), then mark it revoked.

    A token the provider already refuses (401) counts as revoked; any other failure leaves the
    connection as it was and raises, so a flow can retry.
    """
    store = store or open_store()
    connection = store.get(integration, connection_id)
    if connection.status == "revoked":
        return connection
    integ = get_integration(integration)
    oauth = integ.definition.auth.oauth
    if connection.credential_kind != "oauth" or oauth is None:
        return store.set_status(
            integration,
            connection_id,
            "revoked",
            "revoked locally (the provider has no deauthorize call for this kind)",
        )
    url = api_urls(connection)[oauth.deauthorize_url]
    token = store.credentials(integration, connection_id).token.get_secret_value()
    try:
        # pinned to the deauthorize URL's origin: the token goes there and nowhere else
        with open_client(integ, connection, token, retry=INTERACTIVE_RETRY, api_base=url) as client:
            client.request("POST", url)
    except AuthFailed as exc:
        if exc.status_code == 401:
            return store.set_status(integration, connection_id, "revoked", "the provider already refused the token (401)")
        raise ProviderCallFailed(
            f"{integration}: deauthorize at {redact_url(url)} answered HTTP {exc.status_code}; connection unchanged"
        ) from None
    except EngineError as exc:
        raise ProviderCallFailed(f"{integration}: deauthorize at {redact_url(url)} failed: {exc}; connection unchanged") from None
    return store.set_status(integration, connection_id, "revoked", "deauthorized by us")
