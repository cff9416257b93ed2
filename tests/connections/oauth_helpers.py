"""Partner-app set-up against the sandbox, shared by the OAuth, revoke and leak-scan tests."""

from __future__ import annotations

from typing import Any

import httpx

from connections.store import ConnectionStore

# integration -> the sandbox section (and control-API provider key) that plays it
SANDBOX_KEY = {"checkr": "checkr", "checkr-partner-staging": "checkr_staging"}


def register_partner_app(store: ConnectionStore, sandbox: Any, integration: str, web: str) -> dict[str, Any]:
    """Store the app secrets, point the sandbox's redirect URI and webhooks at our app; the sandbox section."""
    key = SANDBOX_KEY[integration]
    section = sandbox.info[key]
    partner = section["partner"]
    store.set_app_secrets(
        integration,
        {"client_id": partner["client_id"], "client_secret": partner["client_secret"]},
        base_url=section["base_url"],
    )
    control = sandbox.info["control_url"]
    r = httpx.put(f"{control}/oauth/{key}", json={"redirect_uri": f"{web}/oauth/callback", "auto_approve": True})
    r.raise_for_status()
    r = httpx.put(f"{control}/webhooks", json={"url": f"{web}/webhooks/{integration}", "provider": key})
    r.raise_for_status()
    return section


def connect(web: str, integration: str, connection_id: str) -> httpx.Response:
    """Follow the whole redirect chain for real: our app -> sandbox authorize -> our callback."""
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        return client.get(f"{web}/connect/{integration}", params={"connection_id": connection_id})
