"""Widget routes under `/widgets`: the scripts, the account-creation calls they make, the report page.

These are called from the platform's page (another origin), hence CORS; they answer to the
platform's `source_token`, not to an api_token.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sandbox.clearchecks import secrets
from sandbox.clearchecks.orders import EMAIL
from sandbox.clearchecks.reports import full_report
from sandbox.clearchecks.widget_js import ACCOUNTS_JS, REPORT_JS

if TYPE_CHECKING:
    from sandbox.clearchecks.provider import ClearChecksProvider

FIELD_LABELS = {"company_name": "Company name", "first_name": "First name", "last_name": "Last name", "email": "Email"}


class NewAccount(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    source_token: str
    company_name: str = Field(min_length=1, max_length=120)
    first_name: str = Field(min_length=1, max_length=60)
    last_name: str = Field(min_length=1, max_length=60)
    email: str

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        if not EMAIL.match(v):
            raise ValueError("is not an email address")
        return v


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def widget_app(p: ClearChecksProvider) -> Starlette:
    def script(template: str) -> Any:
        async def serve(request: Request) -> Response:
            body = template.replace("__BASE__", _origin(request))
            return Response(body, media_type="application/javascript", headers={"Cache-Control": "no-store"})

        return serve

    async def session(request: Request) -> Response:
        if request.query_params.get("source_token") != p.source_token:
            return JSONResponse({"error": "invalid source token"}, 401)
        return JSONResponse({"ok": True})

    async def create(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "the body is not valid JSON"}, 400)
        if not isinstance(body, dict) or body.get("source_token") != p.source_token:
            return JSONResponse({"error": "invalid source token"}, 401)
        try:
            form = NewAccount.model_validate(body)
        except ValidationError as exc:
            problems = []
            for e in exc.errors():
                name = str(e["loc"][0]) if e["loc"] else "form"
                msg = (
                    "is required"
                    if e["type"] in ("missing", "string_too_short")
                    else e["msg"].removeprefix("Value error, ")
                )
                problems.append(f"{FIELD_LABELS.get(name, name)} {msg}")
            return JSONResponse({"error": "; ".join(problems)}, 422)
        account = p.create_account(
            {"company_name": form.company_name, "first_name": form.first_name, "last_name": form.last_name}
        )
        account.billing["billing_email"] = form.email
        return JSONResponse({"token": secrets.seal_api_token(account.api_token, p.private_key)}, 201)

    async def report_page(request: Request) -> Response:
        try:
            key = p.redeem_report_token(request.query_params.get("token", ""))
        except secrets.TokenError as exc:
            return HTMLResponse(f"<p id='cc-report-error'>{html.escape(str(exc))}</p>", 410)
        for account in list(p.accounts):
            facts = account.find(key, p.now())
            if facts is not None:
                report = full_report(facts, p.now(), p.seed)
                rows = "".join(
                    f"<tr><th>{html.escape(k)}</th><td>{html.escape(orjson.dumps(v).decode())}</td></tr>"
                    for k, v in report.items()
                )
                return HTMLResponse(f"<table id='cc-report'>{rows}</table>")
        return HTMLResponse("<p id='cc-report-error'>report not found</p>", 404)

    return Starlette(
        routes=[
            Route("/accounts.js", script(ACCOUNTS_JS), methods=["GET"]),
            Route("/report.js", script(REPORT_JS), methods=["GET"]),
            Route("/accounts/session", session, methods=["GET"]),
            Route("/accounts", create, methods=["POST"]),
            Route("/report", report_page, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"], allow_headers=["Content-Type"]
            )
        ],
    )
