"""The ClearChecks connect page driven in headless Chromium against the sandbox's widget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connections.provider_check import check_connection
from connections.sqlite_store import SqliteConnectionStore

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium)"),
]


def _register(store: SqliteConnectionStore, sandbox: Any) -> dict[str, Any]:
    cc = sandbox.info["clearchecks"]
    store.set_app_secrets(
        "clearchecks", {"source_token": cc["source_token"], "private_key": cc["private_key"]}, base_url=cc["base_url"]
    )
    return cc


def test_widget_connect_stores_a_working_api_token(store: SqliteConnectionStore, web: str, sandbox: Any) -> None:
    from playwright.sync_api import expect, sync_playwright

    _register(store, sandbox)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{web}/connect/clearchecks?connection_id=cc-cust-1")
            page.get_by_role("button", name="Connect to ClearChecks").click()
            page.fill("#cc-company", "Acme Staffing")
            page.fill("#cc-first-name", "Ada")
            page.fill("#cc-last-name", "Lovelace")
            page.fill("#cc-email", "ada@example.com")
            page.get_by_role("button", name="Create account").click()
            expect(page.locator("#status")).to_contain_text("Connected", timeout=20_000)
        finally:
            browser.close()
    conn = store.get("clearchecks", "cc-cust-1")
    assert conn.credential_kind == "widget" and conn.status == "active"
    result = check_connection(store, "clearchecks", "cc-cust-1")
    assert result.ok, result.detail


def test_widget_token_endpoint_rejects_bad_state_and_token(
    store: SqliteConnectionStore, web: str, sandbox: Any
) -> None:
    import httpx

    _register(store, sandbox)
    url = f"{web}/connect/clearchecks/widget-token"
    assert httpx.post(url, json={"state": "forged", "token": "x"}).status_code == 400
    assert httpx.post(url, content=b"{not json").status_code == 400
    page = httpx.get(f"{web}/connect/clearchecks", params={"connection_id": "cc-2"})
    assert page.status_code == 200 and "Connect to ClearChecks" in page.text
    state = store.issue_state("clearchecks", "cc-2", "widget", 60)
    bad = httpx.post(url, json={"state": state, "token": "not-a-sealed-token"})
    assert bad.status_code == 400 and "decrypt" in bad.json()["error"]
    assert (
        httpx.post(url, json={"state": state, "token": "again"})
        .json()["error"]
        .endswith("already used; start the connection again")
    )
    assert store.list() == []


def test_widget_close_and_error_are_shown_on_the_page(store: SqliteConnectionStore, web: str, sandbox: Any) -> None:
    from playwright.sync_api import expect, sync_playwright

    cc = _register(store, sandbox)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{web}/connect/clearchecks?connection_id=cc-closed")
            page.get_by_role("button", name="Connect to ClearChecks").click()
            page.locator("#cc-close").click()
            expect(page.locator("#status")).to_contain_text("closed before an account was created")

            store.set_app_secrets("clearchecks", {"source_token": "cc_src_wrong"}, base_url=cc["base_url"])
            page.goto(f"{web}/connect/clearchecks?connection_id=cc-error")
            page.get_by_role("button", name="Connect to ClearChecks").click()
            expect(page.locator("#status")).to_contain_text("ClearChecks reported an error")
        finally:
            browser.close()
    assert store.list() == []
