"""Partner OAuth against the Checkr sandbox, redirects followed for real, and the partner webhooks."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
from checkr_helpers import control, receiver
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.support.asgi_server import serve_asgi


def _callback_app(seen: list[dict[str, str]]) -> Starlette:
    async def callback(request: Request) -> PlainTextResponse:
        seen.append(dict(request.query_params))
        return PlainTextResponse("connected")

    return Starlette(routes=[Route("/callback", callback)])


def _exchange(section: dict[str, Any], code: str, **override: str) -> httpx.Response:
    body = {
        "client_id": section["partner"]["client_id"],
        "client_secret": section["partner"]["client_secret"],
        "code": code,
        **override,
    }
    return httpx.post(f"{section['base_url']}/oauth/tokens", json=body)


def test_auto_approve_round_trip_and_deauthorize(fresh_sandbox: Any) -> None:
    section = fresh_sandbox.info["checkr"]
    seen: list[dict[str, str]] = []
    with serve_asgi(_callback_app(seen)) as app_url, receiver() as hooks:
        control(
            fresh_sandbox, "PUT", "/oauth/checkr", json={"redirect_uri": f"{app_url}/callback", "auto_approve": True}
        ).raise_for_status()
        control(fresh_sandbox, "PUT", "/webhooks", json={"url": hooks.url, "provider": "checkr"}).raise_for_status()
        authorize = f"{section['base_url']}/authorize/{section['partner']['client_id']}/signup"
        page = httpx.get(authorize, params={"state": "s-1"}, follow_redirects=True)
        assert page.status_code == 200 and page.text == "connected"
        assert seen[0]["state"] == "s-1" and seen[0]["code"]

        token = _exchange(section, seen[0]["code"]).json()
        first_account = section["accounts"][0]["id"]
        assert token["scope"] == "read_write" and token["checkr_account_id"] == first_account
        assert _exchange(section, seen[0]["code"]).status_code == 400  # single use
        me = httpx.get(f"{section['base_url']}/v1/account", auth=(token["access_token"], ""))
        assert me.json()["id"] == first_account and me.json()["authorized"] is False  # not credentialed yet

        fresh_sandbox.advance(seconds=1)  # Checkr credentials the new account shortly after: at the next advance
        event = hooks.wait_for(lambda es: any(e["type"] == "account.credentialed" for e in es), "account.credentialed")
        cred = next(e for e in event if e["type"] == "account.credentialed")
        assert cred["account_id"] == first_account and cred["data"]["object"]["id"] == first_account
        assert httpx.get(f"{section['base_url']}/v1/account", auth=(token["access_token"], "")).json()["authorized"]

        # the next connection picks the first account not connected yet
        httpx.get(authorize, params={"state": "s-2"}, follow_redirects=True)
        assert _exchange(section, seen[1]["code"]).json()["checkr_account_id"] == section["accounts"][1]["id"]

        r = httpx.post(f"{section['base_url']}/oauth/deauthorize", auth=(token["access_token"], ""))
        assert r.status_code == 200 and r.json() == {"access_token": token["access_token"]}
        gone = httpx.get(f"{section['base_url']}/v1/account", auth=(token["access_token"], ""))
        assert gone.status_code == 401 and gone.json() == {"error": "Bad authentication error"}
        assert (
            httpx.post(f"{section['base_url']}/oauth/deauthorize", auth=(token["access_token"], "")).status_code == 401
        )
        events = hooks.wait_for(lambda es: any(e["type"] == "token.deauthorized" for e in es), "token.deauthorized")
        headers, raw = next((h, b) for h, b in hooks.calls if b"token.deauthorized" in b)
        dead = next(e for e in events if e["type"] == "token.deauthorized")
        assert dead["data"]["object"]["access_code"] == token["access_token"]
        assert dead["account_id"] not in {a["id"] for a in section["accounts"]}  # the partner's own account
        secret = section["partner"]["client_secret"].encode()
        assert headers["x-checkr-signature"] == hmac.new(secret, raw, hashlib.sha256).hexdigest()


def test_consent_page_lets_the_user_pick_an_account(fresh_sandbox: Any) -> None:
    section = fresh_sandbox.info["checkr_staging"]
    seen: list[dict[str, str]] = []
    with serve_asgi(_callback_app(seen)) as app_url:
        control(
            fresh_sandbox,
            "PUT",
            "/oauth/checkr_staging",
            json={"redirect_uri": f"{app_url}/callback", "auto_approve": False},
        ).raise_for_status()
        authorize = f"{section['base_url']}/authorize/{section['partner']['client_id']}/signup?state=xyz"
        page = httpx.get(authorize)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for account in section["accounts"]:
            assert account["id"] in page.text
        second = section["accounts"][1]["id"]
        done = httpx.post(
            authorize, data={"account_id": second, "state": "xyz", "decision": "approve"}, follow_redirects=True
        )
        assert done.text == "connected" and seen[0]["state"] == "xyz"
        assert _exchange(section, seen[0]["code"]).json()["checkr_account_id"] == second
        denied = httpx.post(authorize, data={"state": "xyz", "decision": "deny"}, follow_redirects=True)
        assert denied.text == "connected" and seen[1] == {"error": "access_denied", "state": "xyz"}


def test_token_exchange_errors(fresh_sandbox: Any) -> None:
    section = fresh_sandbox.info["checkr"]
    seen: list[dict[str, str]] = []
    with serve_asgi(_callback_app(seen)) as app_url:
        authorize = f"{section['base_url']}/authorize/{section['partner']['client_id']}/signup"
        assert httpx.get(authorize).status_code == 400  # no redirect URI registered yet
        assert httpx.get(f"{section['base_url']}/authorize/nope/signup").status_code == 404
        control(
            fresh_sandbox, "PUT", "/oauth/checkr", json={"redirect_uri": f"{app_url}/callback", "auto_approve": True}
        ).raise_for_status()
        httpx.get(authorize, params={"state": "a"}, follow_redirects=True)
        httpx.get(authorize, params={"state": "b"}, follow_redirects=True)
    r = _exchange(section, seen[0]["code"], client_secret="wrong")
    assert r.status_code == 401 and r.json() == {"error": "Bad authentication error"}
    r = httpx.post(
        f"{section['base_url']}/oauth/tokens",
        data={"client_id": section["partner"]["client_id"], "client_secret": section["partner"]["client_secret"]},
    )
    assert r.status_code == 400 and r.json() == {"error": "code is a required field"}
    fresh_sandbox.advance(minutes=6)  # codes live 5 minutes on the sandbox clock
    assert _exchange(section, seen[1]["code"]).status_code == 400
    ok = control(fresh_sandbox, "PUT", "/oauth/clearchecks", json={"redirect_uri": "http://x/cb"})
    assert ok.status_code == 400 and "no partner OAuth" in ok.json()["error"]
