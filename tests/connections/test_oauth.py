"""Partner OAuth connect against the sandbox, redirects followed for real, and state misuse rejected."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from oauth_helpers import connect, register_partner_app

from connections.provider_check import check_connection
from connections.sqlite_store import SqliteConnectionStore

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("integration", ["checkr", "checkr-partner-staging"])
def test_oauth_connect_stores_a_working_token(
    store: SqliteConnectionStore, web: str, sandbox: Any, integration: str
) -> None:
    section = register_partner_app(store, sandbox, integration, web)
    page = connect(web, integration, "cust-42")
    assert page.status_code == 200, page.text
    assert "Connected" in page.text
    hosts = [str(r.url) for r in [*page.history, page]]
    assert any(h.startswith(section["base_url"]) for h in hosts)  # went through the provider
    conn = store.get(integration, "cust-42")
    assert conn.credential_kind == "oauth" and conn.status == "active"
    assert conn.metadata.checkr_account_id
    assert conn.metadata.base_url == section["base_url"]
    result = check_connection(store, integration, "cust-42")
    assert result.ok, result.detail


def _callback_url(web: str, integration: str, connection_id: str) -> httpx.URL:
    """Walk the chain by hand up to the provider's redirect back to us; return that callback URL."""
    with httpx.Client(follow_redirects=False, timeout=30) as client:
        url = httpx.URL(f"{web}/connect/{integration}", params={"connection_id": connection_id})
        for _ in range(10):
            r = client.get(url)
            assert r.is_redirect, r.text
            url = (
                httpx.URL(r.headers["location"])
                if r.headers["location"].startswith("http")
                else url.join(r.headers["location"])
            )
            if url.path == "/oauth/callback":
                return url
    raise AssertionError("the provider never redirected back to /oauth/callback")


def test_bad_replayed_and_expired_states_store_nothing(store: SqliteConnectionStore, web: str, sandbox: Any) -> None:
    register_partner_app(store, sandbox, "checkr", web)
    callback = _callback_url(web, "checkr", "cust-7")
    code = callback.params["code"]

    forged = httpx.get(f"{web}/oauth/callback", params={"code": code, "state": "made-up"})
    assert forged.status_code == 400 and "unknown state" in forged.text
    missing = httpx.get(f"{web}/oauth/callback", params={"code": code})
    assert missing.status_code == 400
    expired_state = store.issue_state("checkr", "cust-7", "oauth", -1)
    expired = httpx.get(f"{web}/oauth/callback", params={"code": code, "state": expired_state})
    assert expired.status_code == 400 and "expired" in expired.text
    assert store.list() == []

    ok = httpx.get(str(callback))
    assert ok.status_code == 200, ok.text
    first = store.get("checkr", "cust-7")
    token = store.credentials("checkr", "cust-7").token.get_secret_value()
    replay = httpx.get(str(callback))
    assert replay.status_code == 400 and "already used" in replay.text
    assert store.get("checkr", "cust-7").updated_at == first.updated_at
    assert store.credentials("checkr", "cust-7").token.get_secret_value() == token
    assert [c.connection_id for c in store.list()] == ["cust-7"]


def test_connect_errors_are_readable(store: SqliteConnectionStore, web: str) -> None:
    no_app = httpx.get(f"{web}/connect/checkr", params={"connection_id": "cust-1"})
    assert no_app.status_code == 400 and "set-app checkr" in no_app.text
    no_id = httpx.get(f"{web}/connect/checkr")
    assert no_id.status_code == 400 and "connection_id" in no_id.text
    unknown = httpx.get(f"{web}/connect/nope", params={"connection_id": "x"})
    assert unknown.status_code == 404
    store.set_app_secrets("checkr", {"client_id": "c", "client_secret": "s"})
    bad_id = httpx.get(f"{web}/connect/checkr", params={"connection_id": "bad id/with slash"})
    assert bad_id.status_code == 400 and "connection_id" in bad_id.text
