"""The ClearChecks connect page driven in headless Chromium against the sandbox's widget, and the
widget-token endpoint's defences (connect link, browser cookie, JSON only, same origin)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from oauth_helpers import link

from connections.models import Connection, Credentials
from connections.provider_check import check_connection
from connections.sqlite_store import SqliteConnectionStore
from tests.support.asgi_server import free_port, serve_asgi

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
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium)"
)

pytestmark = pytest.mark.slow


def _register(store: SqliteConnectionStore, sandbox: Any) -> dict[str, Any]:
    cc = sandbox.info["clearchecks"]
    store.set_app_secrets(
        "clearchecks", {"source_token": cc["source_token"], "private_key": cc["private_key"]}, base_url=cc["base_url"]
    )
    return cc


def _sealed_token(cc: dict[str, Any], company: str = "Acme Staffing") -> str:
    """What the provider's widget hands the page after creating an account (the sandbox's own call)."""
    created = httpx.post(
        f"{cc['base_url']}/widgets/accounts",
        json={
            "source_token": cc["source_token"],
            "company_name": company,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
        },
    )
    created.raise_for_status()
    return str(created.json()["token"])


def _state(page_html: str) -> str:
    return str(json.loads(re.search(r"var state = (\"[^\"]*\");", page_html).group(1)))  # type: ignore[union-attr]


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@needs_chromium
def test_widget_connect_stores_a_working_api_token(
    store: SqliteConnectionStore, web: str, sandbox: Any, browser: Any
) -> None:
    from playwright.sync_api import expect

    _register(store, sandbox)
    page = browser.new_page()
    page.goto(link(store, web, "clearchecks", "cc-cust-1"))
    page.get_by_role("button", name="Connect to ClearChecks").click()
    page.fill("#cc-company", "Acme Staffing")
    page.fill("#cc-first-name", "Ada")
    page.fill("#cc-last-name", "Lovelace")
    page.fill("#cc-email", "ada@example.com")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#status")).to_contain_text("Connected", timeout=20_000)
    conn = store.get("clearchecks", "cc-cust-1")
    assert conn.credential_kind == "widget" and conn.status == "active"
    result = check_connection(store, "clearchecks", "cc-cust-1")
    assert result.ok, result.detail


def test_widget_token_endpoint_accepts_only_the_opening_browser_json_and_origin(
    store: SqliteConnectionStore, web: str, sandbox: Any
) -> None:
    cc = _register(store, sandbox)
    url = f"{web}/connect/clearchecks/widget-token"
    with httpx.Client(timeout=30) as owner, httpx.Client(timeout=30) as other:
        page = owner.get(link(store, web, "clearchecks", "cc-2"))
        assert page.status_code == 200 and "Connect to ClearChecks" in page.text
        state, token = _state(page.text), _sealed_token(cc)
        body = json.dumps({"state": state, "token": token})
        # what a cross-site <form> can send: text/plain or form encodings, refused before anything else
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            r = owner.post(url, content=body, headers={"Content-Type": content_type})
            assert r.status_code == 415, (content_type, r.text)
        assert (
            owner.post(
                url, json={"state": state, "token": token}, headers={"Origin": "http://evil.example"}
            ).status_code
            == 403
        )
        assert other.post(url, json={"state": state, "token": token}).status_code == 403  # no cookie
        assert owner.post(url, json={"state": "forged", "token": "x"}).status_code == 403
        assert owner.post(url, content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400
        assert store.list() == []
        bad = owner.post(url, json={"state": state, "token": "not-a-sealed-token"})
        assert bad.status_code == 400 and "decrypt" in bad.json()["error"]
        spent = owner.post(url, json={"state": state, "token": token}, headers={"Origin": web})
        assert spent.status_code == 403 and "already used" in spent.json()["error"]
        assert store.list() == []
        retry = owner.get(link(store, web, "clearchecks", "cc-2"))  # a new link, the same browser
        done = owner.post(url, json={"state": _state(retry.text), "token": token}, headers={"Origin": web})
        assert done.status_code == 200, done.text
    assert store.get("clearchecks", "cc-2").credential_kind == "widget"


def test_widget_does_not_overwrite_an_api_key_connection_unless_asked(
    store: SqliteConnectionStore, web: str, sandbox: Any
) -> None:
    from sandbox.clearchecks.secrets import seal_api_token

    cc = _register(store, sandbox)
    existing = cc["accounts"][0]["api_token"]
    store.add(Connection(connection_id="cc-a", integration="clearchecks"), Credentials(token=existing))
    url = f"{web}/connect/clearchecks/widget-token"

    def post(token: str, **options: Any) -> httpx.Response:
        with httpx.Client(timeout=30) as owner:
            page = owner.get(link(store, web, "clearchecks", "cc-a", **options))
            return owner.post(url, json={"state": _state(page.text), "token": token})

    assert post(_sealed_token(cc)).status_code == 409
    other_account = post(_sealed_token(cc), reconnect=True)  # the widget made a new ClearChecks account
    assert other_account.status_code == 409 and "allow-account-change" in other_account.json()["error"]
    assert store.credentials("clearchecks", "cc-a").token.get_secret_value() == existing
    assert store.get("clearchecks", "cc-a").credential_kind == "api_key"
    same_account = post(seal_api_token(existing, cc["private_key"]), reconnect=True)
    assert same_account.status_code == 200, same_account.text
    assert store.get("clearchecks", "cc-a").credential_kind == "widget"
    switched = post(_sealed_token(cc), reconnect=True, allow_account_change=True)
    assert switched.status_code == 200, switched.text
    assert store.credentials("clearchecks", "cc-a").token.get_secret_value() != existing


def test_widget_page_posts_to_the_public_url_not_the_host_header(store: SqliteConnectionStore, sandbox: Any) -> None:
    from connections.web.app import create_app

    _register(store, sandbox)
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    with serve_asgi(create_app(store, public_url=public), port=port) as web:
        page = httpx.get(link(store, web, "clearchecks", "cc-h"), headers={"Host": "evil.example"})
        assert page.status_code == 200
        assert "evil.example" not in page.text
        assert f'var postUrl = "{public}/connect/clearchecks/widget-token";' in page.text
    with serve_asgi(create_app(store)) as web:  # no public URL configured: a root-relative path
        page = httpx.get(link(store, web, "clearchecks", "cc-h2"), headers={"Host": "evil.example"})
        assert "evil.example" not in page.text
        assert 'var postUrl = "/connect/clearchecks/widget-token";' in page.text


@needs_chromium
def test_a_cross_site_page_cannot_post_the_widget_token(
    store: SqliteConnectionStore, web: str, sandbox: Any, browser: Any
) -> None:
    """The customer's browser holds an open flow (cookie set); a page on another site tries to
    finish it with a token of its choosing, as a text/plain form and as a fetch: both fail."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    cc = _register(store, sandbox)
    page = browser.new_page()
    page.goto(link(store, web, "clearchecks", "cc-x"))
    state, token = _state(page.content()), _sealed_token(cc, "Mallory Ltd")
    target = f"{web}/connect/clearchecks/widget-token"
    payload = json.dumps({"state": state, "token": token, "pad": "="})[:-1]  # name=value must end in "="
    name, value = payload.split("=", 1)

    async def attack(request: Any) -> HTMLResponse:
        return HTMLResponse(
            f"""<form id=f method=post enctype="text/plain" action="{target}">
            <input type=hidden name='{name}' value='={value[1:]}'></form>
            <script>
            fetch({json.dumps(target)}, {{method: "POST", credentials: "include",
              headers: {{"Content-Type": "application/json"}}, body: {json.dumps(json.dumps({"state": state, "token": token}))}}})
              .then(r => document.title = "fetch " + r.status, e => document.title = "fetch blocked");
            </script>"""
        )

    with serve_asgi(Starlette(routes=[Route("/", attack)])) as evil:
        evil_site = evil.replace("127.0.0.1", "localhost")  # another site, not just another port
        attacker = browser.new_page()
        attacker.goto(evil_site)
        attacker.wait_for_function("document.title.startsWith('fetch')", timeout=10_000)
        assert attacker.title() == "fetch blocked"
        with attacker.expect_navigation() as navigation:
            attacker.evaluate("document.getElementById('f').submit()")
        assert navigation.value.status in (403, 415)  # another origin, and not JSON
    assert store.list() == []
    # the customer's own flow was not disturbed: their page still finishes it
    mine = _sealed_token(cc, "Acme Staffing")
    status = page.evaluate(
        "([url, body]) => fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'}, body})"
        ".then(r => r.status)",
        [target, json.dumps({"state": state, "token": mine})],
    )
    assert status == 200
    assert store.get("clearchecks", "cc-x").status == "active"


@needs_chromium
def test_widget_close_and_error_are_shown_on_the_page(
    store: SqliteConnectionStore, web: str, sandbox: Any, browser: Any
) -> None:
    from playwright.sync_api import expect

    cc = _register(store, sandbox)
    page = browser.new_page()
    page.goto(link(store, web, "clearchecks", "cc-closed"))
    page.get_by_role("button", name="Connect to ClearChecks").click()
    page.locator("#cc-close").click()
    expect(page.locator("#status")).to_contain_text("closed before an account was created")

    store.set_app_secrets("clearchecks", {"source_token": "cc_src_wrong"}, base_url=cc["base_url"])
    page.goto(link(store, web, "clearchecks", "cc-error"))
    page.get_by_role("button", name="Connect to ClearChecks").click()
    expect(page.locator("#status")).to_contain_text("ClearChecks reported an error")
    assert store.list() == []
