"""Checkr partner OAuth: the authorize (connect) page, code-for-token exchange, deauthorize.

Codes are single use and expire 5 minutes after issue on the *sandbox* clock, so tests can
expire one by advancing time instead of waiting.
"""

from __future__ import annotations

import html
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.checkr.http import basic_username, error_response, json_response, read_body
from sandbox.checkr.ids import hex_token
from sandbox.checkr.world import Account, ApiError

if TYPE_CHECKING:
    from sandbox.checkr.provider import CheckrProvider

CODE_TTL = 300


@dataclass
class PartnerApp:
    client_id: str
    client_secret: str
    partner_account_id: str
    redirect_uri: str | None = None
    auto_approve: bool = False
    codes: dict[str, tuple[str, int]] = field(default_factory=dict)  # code -> (account id, issued at)
    tokens: dict[str, tuple[str, bool]] = field(default_factory=dict)  # token -> (account id, active)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def for_seed(cls, seed: int, key: str) -> PartnerApp:
        return cls(
            client_id=hex_token(seed, key, "client_id", size=16),
            client_secret="cs_test_" + hex_token(seed, key, "client_secret", size=20),
            partner_account_id=hex_token(seed, key, "partner_account"),
        )

    def active_tokens(self, account_id: str) -> int:
        return sum(1 for acc, active in self.tokens.values() if active and acc == account_id)

    def account_of(self, token: str) -> str | None:
        acc, active = self.tokens.get(token, ("", False))
        return acc if active else None


def routes(p: CheckrProvider) -> list[Route]:
    app = p.partner

    def default_account() -> Account:
        return min(p.world.accounts, key=lambda a: (app.active_tokens(a.id), a.index))

    def issue_code(account: Account) -> str:
        code = secrets.token_urlsafe(24)
        with app.lock:
            app.codes[code] = (account.id, p.now())
        return code

    def back(params: dict[str, str]) -> RedirectResponse:
        sep = "&" if "?" in (app.redirect_uri or "") else "?"
        return RedirectResponse(f"{app.redirect_uri}{sep}{urlencode(params)}", status_code=302)

    def check_client(client_id: str) -> Response | None:
        if client_id != app.client_id:
            return HTMLResponse("<h1>Unknown partner application</h1>", status_code=404)
        if not app.redirect_uri:
            return HTMLResponse(
                "<h1>This partner application has no redirect URI registered</h1>"
                "<p>Set one with PUT {control_url}/oauth/{provider}.</p>",
                status_code=400,
            )
        return None

    async def authorize_page(request: Request) -> Response:
        p.count_request()
        problem = check_client(request.path_params["client_id"])
        if problem:
            return problem
        state = request.query_params.get("state", "")
        chosen = default_account()
        if app.auto_approve:
            return back({"code": issue_code(chosen), "state": state})
        options = "".join(
            f'<label><input type="radio" name="account_id" value="{a.id}"{" checked" if a is chosen else ""}> '
            f"{html.escape(a.name)} ({a.id})</label><br>"
            for a in p.world.accounts
        )
        page = (
            f"<!doctype html><title>Connect to Checkr ({p.environment})</title>"
            f"<h1>Connect your Checkr account</h1><form method=post>"
            f'<input type=hidden name=state value="{html.escape(state)}">{options}'
            f"<button name=decision value=approve>Connect</button> "
            f"<button name=decision value=deny>Cancel</button></form>"
        )
        return HTMLResponse(page)

    async def authorize_submit(request: Request) -> Response:
        p.count_request()
        problem = check_client(request.path_params["client_id"])
        if problem:
            return problem
        form = dict(parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True))
        state = form.get("state", "")
        if form.get("decision") == "deny":
            return back({"error": "access_denied", "state": state})
        account = p.world.by_id.get(form.get("account_id", ""))
        if account is None:
            return HTMLResponse("<h1>Choose one of the listed accounts</h1>", status_code=400)
        return back({"code": issue_code(account), "state": state})

    async def tokens(request: Request) -> Response:
        p.count_request()
        try:
            body = await read_body(request)
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        if body.get("client_id") != app.client_id or body.get("client_secret") != app.client_secret:
            return error_response(401, "Bad authentication error")
        code = body.get("code")
        if not code:
            return error_response(400, "code is a required field")
        with app.lock:
            entry = app.codes.pop(str(code), None)
        if entry is None or p.now() - entry[1] > CODE_TTL:
            return error_response(400, "Authorization code is invalid, expired or already used")
        account = p.world.by_id[entry[0]]
        token = secrets.token_hex(20)
        with app.lock:
            first = not any(acc == account.id for acc, _ in app.tokens.values())
            app.tokens[token] = (account.id, True)
        if first:
            p.connected_first_time(account)
        return json_response({"access_token": token, "scope": "read_write", "checkr_account_id": account.id})

    async def deauthorize(request: Request) -> Response:
        p.count_request()
        token = basic_username(request)
        with app.lock:
            account_id = app.account_of(token) if token else None
            if token and account_id:
                app.tokens[token] = (account_id, False)
        if not token or not account_id:
            return error_response(401, "Bad authentication error")
        p.token_deauthorized(token)
        return json_response({"access_token": token})

    return [
        Route("/authorize/{client_id}/signup", authorize_page, methods=["GET"]),
        Route("/authorize/{client_id}/signin", authorize_page, methods=["GET"]),
        Route("/authorize/{client_id}/signup", authorize_submit, methods=["POST"]),
        Route("/authorize/{client_id}/signin", authorize_submit, methods=["POST"]),
        Route("/oauth/tokens", tokens, methods=["POST"]),
        Route("/oauth/deauthorize", deauthorize, methods=["POST"]),
    ]
