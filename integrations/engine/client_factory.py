"""A connection's ProviderClient: the one way any provider call is made (syncs, actions, the
connection test, deauthorize), so each gets pacing, retries, origin pinning and redaction."""

from __future__ import annotations

from typing import Any

from integrations.engine.auth import build_auth
from integrations.engine.http_client import ProviderClient
from integrations.engine.rate_limiter import credential_fingerprint
from integrations.engine.registry import Integration, provider_urls
from integrations.engine.retries import RetryPolicy

# a person is waiting (connections test, revoke): a few quick retries, not a sync's two minutes
INTERACTIVE_RETRY = RetryPolicy(max_attempts=3, max_total_wait=10.0)
# a call that must not be sent twice (an OAuth code is single-use): classified, paced, never resent
ONE_TRY = RetryPolicy(max_attempts=1)


def provider_urls_for(integ: Integration, connection: Any) -> dict[str, str]:
    """The connection's named provider URLs (api, token, deauthorize, ...), its overrides applied."""
    meta = connection.metadata
    return provider_urls(
        integ.definition,
        environment=getattr(meta, "environment", None),
        base_url=getattr(meta, "base_url", None),
    )


def api_base_for(integ: Integration, connection: Any) -> str:
    return provider_urls_for(integ, connection)["api"]


def open_client(
    integ: Integration,
    connection: Any,
    token: str,
    *,
    retry: RetryPolicy | None = None,
    api_base: str | None = None,
) -> ProviderClient:
    """A client for `connection`; `api_base` pins it to another of the provider's URLs (deauthorize)."""
    d = integ.definition
    return ProviderClient(
        integration=d.name,
        connection_id=connection.connection_id,
        api_base=api_base or api_base_for(integ, connection),
        auth=build_auth(d.auth, token),
        rate_limit=d.rate_limit,
        credential_fingerprint=credential_fingerprint(token),
        errors=d.errors,
        retry=retry,
    )


def app_client(integ: Integration, url: str, *, retry: RetryPolicy | None = None) -> ProviderClient:
    """A client for the platform's own calls (OAuth token exchange, widget decrypt): no connection
    credential (the app secrets travel in the body), pinned to `url`'s origin."""
    d = integ.definition
    return ProviderClient(
        integration=d.name,
        connection_id="(app)",
        api_base=url,
        auth=None,
        rate_limit=d.rate_limit,
        credential_fingerprint="(app)",
        errors=d.errors,
        retry=retry or INTERACTIVE_RETRY,
    )
