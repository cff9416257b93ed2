"""The reported takeover, reproduced as an attacker would try it: nobody without a connect link
from the platform can start a flow, replace a connection, or write anything to the store."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest
from oauth_helpers import register_partner_app

from connections.models import Connection, ConnectionMetadata, Credentials
from connections.sqlite_store import SqliteConnectionStore

pytestmark = pytest.mark.slow


def _seed_victim(store: SqliteConnectionStore, section: dict[str, Any]) -> tuple[str, str]:
    """cust-a, connected earlier to the victim's Checkr account (the sandbox's second account)."""
    victim = section["accounts"][1]
    store.add(
        Connection(
            connection_id="cust-a",
            integration="checkr",
            credential_kind="oauth",
            metadata=ConnectionMetadata(provider_account_id=victim["id"], base_url=section["base_url"]),
        ),
        Credentials(token=victim["api_key"]),
    )
    return victim["id"], victim["api_key"]


def test_attacker_cannot_reconnect_a_customer_to_their_own_account(
    store: SqliteConnectionStore, web: str, sandbox: Any
) -> None:
    section = register_partner_app(store, sandbox, "checkr", web)
    account, token = _seed_victim(store, section)
    # the sandbox's authorize page approves with another account: the attacker's
    with httpx.Client(follow_redirects=True, timeout=30) as attacker:
        page = attacker.get(f"{web}/connect/checkr", params={"connection_id": "cust-a"})
    assert page.status_code == 401, page.text
    conn = store.get("checkr", "cust-a")
    assert conn.metadata.provider_account_id == account
    assert store.credentials("checkr", "cust-a").token.get_secret_value() == token


def _rows_in_every_table(path: str) -> dict[str, int]:
    with sqlite3.connect(path) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def test_unauthenticated_connect_requests_write_nothing(store: SqliteConnectionStore, web: str, sandbox: Any) -> None:
    register_partner_app(store, sandbox, "checkr", web)
    cc = sandbox.info["clearchecks"]
    store.set_app_secrets(
        "clearchecks", {"source_token": cc["source_token"], "private_key": cc["private_key"]}, base_url=cc["base_url"]
    )
    before = _rows_in_every_table(str(store.path))
    statuses: set[int] = set()
    with httpx.Client(timeout=30) as client:
        for i in range(500):
            cid = f"victim-{i}"
            for r in (
                client.get(f"{web}/connect/checkr", params={"connection_id": cid}),
                client.get(f"{web}/connect/clearchecks", params={"connection_id": cid, "session": f"forged.{i}"}),
                client.get(f"{web}/oauth/callback", params={"code": f"c{i}", "state": f"s{i}.x"}),
                client.post(f"{web}/connect/clearchecks/widget-token", json={"state": f"s{i}.x", "token": "t"}),
            ):
                statuses.add(r.status_code)
    assert statuses <= {401, 403}, statuses
    assert _rows_in_every_table(str(store.path)) == before
