"""Deauthorization from both sides: our CLI/function, and the provider's token.deauthorized webhook."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from cli_helpers import run_cli
from oauth_helpers import connect, register_partner_app

from connections import revoke
from connections.sqlite_store import SqliteConnectionStore

pytestmark = pytest.mark.slow


def _wait_for_status(store: SqliteConnectionStore, integration: str, cid: str, status: str) -> str:
    """The provider's webhook arrives asynchronously: wait for it (bounded), return the final status."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        current = store.get(integration, cid).status
        if current == status:
            return current
        time.sleep(0.05)
    return store.get(integration, cid).status


def _account_status(base_url: str, token: str) -> int:
    return httpx.get(f"{base_url}/v1/account", auth=(token, "")).status_code


def test_revoke_from_our_side_cli(store: SqliteConnectionStore, secret_key: str, web: str, sandbox: Any) -> None:
    section = register_partner_app(store, sandbox, "checkr", web)
    assert connect(store, web, "checkr", "cust-r1").status_code == 200
    token = store.credentials("checkr", "cust-r1").token.get_secret_value()
    assert _account_status(section["base_url"], token) == 200
    env = {"SCREENSYNC_CONNECTIONS": str(store.path), "SCREENSYNC_SECRET_KEY": secret_key}
    done = run_cli("connections", "revoke", "checkr", "cust-r1", env=env)
    assert done.returncode == 0, done.stderr
    assert store.get("checkr", "cust-r1").status == "revoked"
    assert _account_status(section["base_url"], token) == 401  # the provider no longer honours it
    assert token not in done.stdout + done.stderr


def test_revoke_function_for_flows(store: SqliteConnectionStore, web: str, sandbox: Any) -> None:
    section = register_partner_app(store, sandbox, "checkr-partner-staging", web)
    assert connect(store, web, "checkr-partner-staging", "cust-r2").status_code == 200
    token = store.credentials("checkr-partner-staging", "cust-r2").token.get_secret_value()
    conn = revoke("checkr-partner-staging", "cust-r2", store=store)
    assert conn.status == "revoked"
    assert _account_status(section["base_url"], token) == 401
    assert revoke("checkr-partner-staging", "cust-r2", store=store).status == "revoked"  # idempotent


def test_deauthorized_on_the_provider_side(store: SqliteConnectionStore, web: str, sandbox: Any) -> None:
    section = register_partner_app(store, sandbox, "checkr", web)
    assert connect(store, web, "checkr", "cust-r3").status_code == 200
    assert connect(store, web, "checkr", "cust-other").status_code == 200
    token = store.credentials("checkr", "cust-r3").token.get_secret_value()
    # the customer disconnects the app at Checkr: Checkr deauthorizes and sends a signed webhook
    r = httpx.post(f"{section['base_url']}/oauth/deauthorize", auth=(token, ""))
    assert r.is_success, r.text
    assert _wait_for_status(store, "checkr", "cust-r3", "revoked") == "revoked"
    assert "token.deauthorized" in (store.get("checkr", "cust-r3").status_reason or "")
    assert store.get("checkr", "cust-other").status == "active"
    assert [e["event_type"] for e in store.events(integration="checkr")].count("token.deauthorized") == 1
