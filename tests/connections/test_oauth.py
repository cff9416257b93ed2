"""Partner OAuth connect against the sandbox: a connect link opened in one browser, redirects
followed for real, and state misuse rejected with nothing stored."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from oauth_helpers import connect, link, register_partner_app

from connections.connect_sessions import mint
from connections.crypto import sha256_hex
from connections.errors import ConnectionsError
from connections.provider_check import check_connection
from connections.sqlite_store import SqliteConnectionStore

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("integration", ["checkr", "checkr-partner-staging"])
def test_oauth_connect_stores_a_working_token(
    store: SqliteConnectionStore, web: str, sandbox: Any, integration: str
) -> None:
    section = register_partner_app(store, sandbox, integration, web)
    page = connect(store, web, integration, "cust-42")
    assert page.status_code == 200, page.text
    assert "Connected" in page.text
    hosts = [str(r.url) for r in [*page.history, page]]
    assert any(h.startswith(section["base_url"]) for h in hosts)  # went through the provider
    opened = page.history[0]
    cookie = opened.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert opened.headers["referrer-policy"] == "no-referrer"
    conn = store.get(integration, "cust-42")
    assert conn.credential_kind == "oauth" and conn.status == "active"
    assert conn.metadata.provider_account_id
    assert conn.metadata.base_url == section["base_url"]
    result = check_connection(store, integration, "cust-42")
    assert result.ok, result.detail


def callback_url(browser: httpx.Client, url: str) -> httpx.URL:
    """Walk the chain by hand (as `browser`, keeping its cookies) up to the provider's redirect back to us."""
    current = httpx.URL(url)
    for _ in range(10):
        r = browser.get(current)
        assert r.is_redirect, r.text
        location = r.headers["location"]
        current = httpx.URL(location) if location.startswith("http") else current.join(location)
        if current.path == "/oauth/callback":
            return current
    raise AssertionError("the provider never redirected back to /oauth/callback")


def test_bad_replayed_and_expired_states_store_nothing(store: SqliteConnectionStore, web: str, sandbox: Any) -> None:
    register_partner_app(store, sandbox, "checkr", web)
    with httpx.Client(timeout=30) as browser:
        callback = callback_url(browser, link(store, web, "checkr", "cust-7"))
        code, state = callback.params["code"], callback.params["state"]

        forged = browser.get(f"{web}/oauth/callback", params={"code": code, "state": state.split(".")[0] + ".made-up"})
        assert forged.status_code == 403 and "already used" in forged.text
        unknown = browser.get(f"{web}/oauth/callback", params={"code": code, "state": "made-up"})
        assert unknown.status_code == 403
        missing = browser.get(f"{web}/oauth/callback", params={"code": code})
        assert missing.status_code == 403
        assert store.list() == []

        ok = browser.get(callback)
        assert ok.status_code == 200, ok.text
        first = store.get("checkr", "cust-7")
        token = store.credentials("checkr", "cust-7").token.get_secret_value()
        replay = browser.get(callback)
        assert replay.status_code == 403  # the cookie was cleared on success, and the state is spent
    assert store.get("checkr", "cust-7").updated_at == first.updated_at
    assert store.credentials("checkr", "cust-7").token.get_secret_value() == token
    assert [c.connection_id for c in store.list()] == ["cust-7"]


def test_expired_state_and_expired_link_store_nothing(store: SqliteConnectionStore, web: str, sandbox: Any) -> None:
    register_partner_app(store, sandbox, "checkr", web)
    _, session = mint(store, "checkr", "cust-8")
    secret = "b" * 43
    state = f"{session.session_id}.expired"
    store.begin_connect(session, "oauth", browser_hash=sha256_hex(secret), state=state, state_ttl=-1, settings={})
    expired = httpx.get(
        f"{web}/oauth/callback",
        params={"code": "c", "state": state},
        cookies={f"screensync_connect_{session.session_id}": secret},
    )
    assert expired.status_code == 403 and "expired" in expired.text

    old_token, _ = mint(store, "checkr", "cust-9", ttl_seconds=1)
    time.sleep(1.5)
    late = httpx.get(f"{web}/connect/checkr", params={"session": old_token})
    assert late.status_code == 401 and "expired" in late.text
    assert store.list() == []


def test_connect_errors_are_readable(store: SqliteConnectionStore, web: str) -> None:
    no_app = httpx.get(link(store, web, "checkr", "cust-1"))
    assert no_app.status_code == 400 and "set-app checkr" in no_app.text
    no_link = httpx.get(f"{web}/connect/checkr", params={"connection_id": "cust-1"})
    assert no_link.status_code == 401 and "connect link" in no_link.text
    unknown = httpx.get(f"{web}/connect/nope", params={"session": "x"})
    assert unknown.status_code == 404
    wrong_integration = httpx.get(
        link(store, web, "checkr", "cust-1").replace("/connect/checkr", "/connect/clearchecks")
    )
    assert wrong_integration.status_code == 401 and "is for checkr" in wrong_integration.text
    with pytest.raises(ConnectionsError, match="connection_id"):
        link(store, web, "checkr", "bad id/with slash")
