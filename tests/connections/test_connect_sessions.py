"""Connect sessions: only the platform starts a flow; a flow belongs to one browser; an existing
connection is replaced only as the platform asked (reconnect, account change)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cli_helpers import run_cli
from oauth_helpers import connect_as, link, manual_approval, register_partner_app

from connections.sqlite_store import SqliteConnectionStore
from tests.support.asgi_server import serve_asgi

pytestmark = pytest.mark.slow


@pytest.fixture
def accounts(store: SqliteConnectionStore, web: str, sandbox: Any) -> Iterator[list[str]]:
    """The partner app registered, the sandbox asking which account to connect; its account ids."""
    section = register_partner_app(store, sandbox, "checkr", web)
    with manual_approval(sandbox, "checkr", web):
        yield [a["id"] for a in section["accounts"]]


def _snapshot(store: SqliteConnectionStore, cid: str) -> tuple[str | None, str, str]:
    conn = store.get("checkr", cid)
    return conn.metadata.provider_account_id, store.credentials("checkr", cid).token.get_secret_value(), conn.status


def test_an_active_connection_is_replaced_only_by_a_reconnect_link(
    store: SqliteConnectionStore, web: str, accounts: list[str]
) -> None:
    first = connect_as(store, web, "checkr", "cust-a", accounts[0])
    assert first.status_code == 200, first.text
    before = _snapshot(store, "cust-a")

    again = connect_as(store, web, "checkr", "cust-a", accounts[0])
    assert again.status_code == 409 and "already connected and active" in again.text
    assert _snapshot(store, "cust-a") == before

    reconnected = connect_as(store, web, "checkr", "cust-a", accounts[0], reconnect=True)
    assert reconnected.status_code == 200, reconnected.text
    account, token, _ = _snapshot(store, "cust-a")
    assert account == before[0] and token != before[1]  # same account, fresh token


def test_a_reconnect_to_another_provider_account_needs_the_platforms_consent(
    store: SqliteConnectionStore, web: str, accounts: list[str]
) -> None:
    assert connect_as(store, web, "checkr", "cust-a", accounts[0]).status_code == 200
    before = _snapshot(store, "cust-a")

    # the customer (or whoever holds the link) approves with another Checkr account
    other = connect_as(store, web, "checkr", "cust-a", accounts[1], reconnect=True)
    assert other.status_code == 409 and f"belongs to provider account {accounts[0]}" in other.text
    assert accounts[1] in other.text and "--allow-account-change" in other.text
    assert _snapshot(store, "cust-a") == before

    allowed = connect_as(store, web, "checkr", "cust-a", accounts[1], reconnect=True, allow_account_change=True)
    assert allowed.status_code == 200, allowed.text
    assert _snapshot(store, "cust-a")[0] == accounts[1]


def test_a_revoked_connection_is_reconnected_without_reconnect_but_not_to_another_account(
    store: SqliteConnectionStore, web: str, accounts: list[str]
) -> None:
    assert connect_as(store, web, "checkr", "cust-b", accounts[0]).status_code == 200
    store.set_status("checkr", "cust-b", "revoked", "test")
    refused = connect_as(store, web, "checkr", "cust-b", accounts[1])
    assert refused.status_code == 409 and store.get("checkr", "cust-b").status == "revoked"
    back = connect_as(store, web, "checkr", "cust-b", accounts[0])
    assert back.status_code == 200 and store.get("checkr", "cust-b").status == "active"


def test_a_flow_belongs_to_the_browser_that_opened_the_link(
    store: SqliteConnectionStore, web: str, accounts: list[str]
) -> None:
    url = link(store, web, "checkr", "cust-c")
    with httpx.Client(timeout=30) as victim, httpx.Client(timeout=30) as attacker:
        opened = victim.get(url)
        assert opened.status_code == 302
        # the same link opened elsewhere (leaked, forwarded, guessed from logs) is refused
        stolen = attacker.get(url)
        assert stolen.status_code == 403 and "another browser" in stolen.text
        authorize = opened.headers["location"]
        state = httpx.URL(authorize).params["state"]
        back = victim.post(authorize, data={"state": state, "decision": "approve", "account_id": accounts[0]})
        callback = back.headers["location"]
        # a callback carrying the victim's state, but from a browser without the cookie: refused
        replayed = attacker.get(callback)
        assert replayed.status_code == 403 and "not started in this browser" in replayed.text
        assert store.list() == []
        # ...and the state is still good for the browser that started the flow
        done = victim.get(callback)
        assert done.status_code == 200, done.text
    assert store.get("checkr", "cust-c").metadata.provider_account_id == accounts[0]


def test_connect_link_cli_prints_a_working_link(
    store: SqliteConnectionStore, secret_key: str, web: str, accounts: list[str]
) -> None:
    env = {"SCREENSYNC_CONNECTIONS": str(store.path), "SCREENSYNC_SECRET_KEY": secret_key}
    done = run_cli("connections", "connect-link", "checkr", "cust-d", "--ttl", "5m", "--public-url", web, env=env)
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith(f"{web}/connect/checkr?session=cs1.")
    with httpx.Client(timeout=30) as browser:
        assert browser.get(url).status_code == 302
    assert store.list() == []  # opening a link writes only the session, never a connection

    no_url = run_cli("connections", "connect-link", "checkr", "cust-d", env=env)
    assert no_url.returncode == 1 and "SCREENSYNC_PUBLIC_URL" in no_url.stderr
    bad_ttl = run_cli("connections", "connect-link", "checkr", "cust-d", "--ttl", "soon", "--public-url", web, env=env)
    assert bad_ttl.returncode == 1 and "--ttl 'soon'" in bad_ttl.stderr


def test_platform_api_mints_links_only_with_its_secret(store: SqliteConnectionStore, sandbox: Any) -> None:
    from connections.web.app import create_app

    with serve_asgi(create_app(store)) as off:
        assert httpx.post(f"{off}/connect-sessions", json={}).status_code == 404
    secret = "platform-api-secret-0123456789"
    with serve_asgi(create_app(store, api_secret=secret)) as web:
        register_partner_app(store, sandbox, "checkr", web)
        body = {"integration": "checkr", "connection_id": "cust-e", "reconnect": True}
        url = f"{web}/connect-sessions"
        assert httpx.post(url, json=body).status_code == 401
        assert httpx.post(url, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        auth = {"Authorization": f"Bearer {secret}"}
        as_text = httpx.post(url, content=b'{"integration":"checkr"}', headers={**auth, "Content-Type": "text/plain"})
        assert as_text.status_code == 415
        bad = httpx.post(url, json={"integration": "checkr", "connection_id": "bad id"}, headers=auth)
        assert bad.status_code == 400 and "connection_id" in bad.text
        made = httpx.post(url, json=body, headers=auth)
        assert made.status_code == 201, made.text
        with httpx.Client(follow_redirects=True, timeout=30) as browser:
            page = browser.get(f"{web}{made.json()['url']}")
        assert page.status_code == 200 and "Connected" in page.text
    assert store.get("checkr", "cust-e").status == "active"
