"""Partner-app set-up against the sandbox, shared by the OAuth, revoke and leak-scan tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from connections.connect_sessions import create_connect_link
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


def link(store: ConnectionStore, web: str, integration: str, connection_id: str, **options: Any) -> str:
    """A connect link as the platform's backend mints it."""
    return create_connect_link(integration, connection_id, public_url=web, store=store, **options).url


def connect(store: ConnectionStore, web: str, integration: str, connection_id: str, **options: Any) -> httpx.Response:
    """Open a fresh connect link and follow the whole redirect chain for real, as one browser
    (cookies kept): our app -> sandbox authorize -> our callback."""
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        return browser.get(link(store, web, integration, connection_id, **options))


@contextmanager
def manual_approval(sandbox: Any, integration: str, web: str) -> Iterator[None]:
    """The sandbox's authorize page asks which account to connect (the shared sandbox is put back)."""
    control, key = sandbox.info["control_url"], SANDBOX_KEY[integration]
    httpx.put(f"{control}/oauth/{key}", json={"redirect_uri": f"{web}/oauth/callback", "auto_approve": False})
    try:
        yield
    finally:
        httpx.put(f"{control}/oauth/{key}", json={"redirect_uri": f"{web}/oauth/callback", "auto_approve": True})


def connect_as(
    store: ConnectionStore, web: str, integration: str, connection_id: str, account_id: str, **options: Any
) -> httpx.Response:
    """Open a connect link and, on the provider's page, approve with `account_id` (needs manual_approval)."""
    with httpx.Client(timeout=30) as browser:
        opened = browser.get(link(store, web, integration, connection_id, **options))
        assert opened.status_code == 302, opened.text
        authorize = opened.headers["location"]
        state = httpx.URL(authorize).params["state"]
        back = browser.post(authorize, data={"state": state, "decision": "approve", "account_id": account_id})
        assert back.status_code == 302, back.text
        return browser.get(back.headers["location"])
