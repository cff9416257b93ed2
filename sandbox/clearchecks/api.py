"""The ClearChecks HTTP API (`/api/...`) and the widget routes, as one Starlette app.

Evidenced routes: accounts, teams, orders/new, reports/all, report status, full report,
report widget token. Everything else (packages, invoices, billing, token decrypt) is an
ASSUMED contract listed in docs/providers/clearchecks.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from sandbox.clearchecks import secrets
from sandbox.clearchecks.gate import Passed, error, gate
from sandbox.clearchecks.listing import list_response
from sandbox.clearchecks.orders import OrderError, parse_billing, parse_order
from sandbox.clearchecks.reports import full_report, status_body
from sandbox.clearchecks.widget import widget_app

if TYPE_CHECKING:
    from sandbox.clearchecks.accounts import Account
    from sandbox.clearchecks.provider import ClearChecksProvider


def build_app(p: ClearChecksProvider) -> Starlette:
    async def passed(request: Request, credential: str | None = None) -> Passed | Response:
        p.requests += 1
        return await gate(
            request,
            faults=p.faults,
            limiter=p.limiter,
            token_known=lambda t: p.account_for(t) is not None,
            credential=credential,
        )

    def account(g: Passed) -> Account:
        acct = p.account_for(g.token)
        assert acct is not None  # the gate only passes known tokens
        return acct

    def ok(body: Any, g: Passed, status: int = 200) -> Response:
        return Response(orjson.dumps(body), status, g.headers, "application/json")

    async def json_body(request: Request) -> Any:
        raw = await request.body()
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            raise OrderError("the body is not valid JSON") from None

    async def get_account(request: Request) -> Response:
        g = await passed(request)
        return g if isinstance(g, Response) else ok(account(g).profile, g)

    async def get_teams(request: Request) -> Response:
        g = await passed(request)
        return g if isinstance(g, Response) else ok(account(g).teams, g)

    async def reports_all(request: Request) -> Response:
        g = await passed(request)
        if isinstance(g, Response):
            return g
        acct = account(g)
        return list_response(
            request,
            fetch=lambda offset, limit: p.report_items(acct, offset, limit),
            total=acct.visible_count(p.now()),
            required_field="report_key",
            faults=p.faults,
            headers=g.headers,
        )

    def in_memory_list(
        rows_for: Callable[[Passed], list[Any]], required_field: str
    ) -> Callable[[Request], Awaitable[Response]]:
        """A paginated list over rows already built (invoices, the package catalogue)."""

        async def endpoint(request: Request) -> Response:
            g = await passed(request)
            if isinstance(g, Response):
                return g
            rows = rows_for(g)
            return list_response(
                request,
                fetch=lambda offset, limit: rows[offset : offset + limit],
                total=len(rows),
                required_field=required_field,
                faults=p.faults,
                headers=g.headers,
            )

        return endpoint

    invoices = in_memory_list(lambda g: p.invoices(account(g)), "id")
    packages = in_memory_list(lambda g: p.packages(), "sku")

    async def order_new(request: Request) -> Response:
        g = await passed(request)
        if isinstance(g, Response):
            return g
        acct = account(g)
        try:
            order = parse_order(await json_body(request))
        except OrderError as exc:
            return error(422, str(exc), g.headers)
        order_id = acct.next_order_id()
        now = p.now()
        made = [
            acct.add_order(sku=order.report_sku, addons=order.addons, email=email, now=now, order_id=order_id)
            for email in order.applicant_emails
        ]
        return ok({"applicants": [{"report_key": f.report_key, "email": f.email} for f in made]}, g, 201)

    async def passed_report(request: Request) -> tuple[Passed, Any] | Response:
        """Authenticated, rate-checked, and the report of the path's key exists (else the response)."""
        g = await passed(request)
        if isinstance(g, Response):
            return g
        facts = account(g).find(request.path_params["key"], p.now())
        if facts is None:
            return error(404, "report not found", g.headers)
        return g, facts

    async def report_status(request: Request) -> Response:
        got = await passed_report(request)
        if isinstance(got, Response):
            return got
        g, facts = got
        return ok(status_body(facts, p.now()), g)

    async def report(request: Request) -> Response:
        got = await passed_report(request)
        if isinstance(got, Response):
            return got
        g, facts = got
        return ok(full_report(facts, p.now(), p.seed), g)

    async def widget_token(request: Request) -> Response:
        got = await passed_report(request)
        if isinstance(got, Response):
            return got
        g, facts = got
        return ok({"report_token": p.issue_report_token(facts)}, g)

    async def billing(request: Request) -> Response:
        g = await passed(request)
        if isinstance(g, Response):
            return g
        acct = account(g)
        try:
            update = parse_billing(await json_body(request))
        except OrderError as exc:
            return error(422, str(exc), g.headers)
        changes = update.model_dump(exclude_unset=True)
        card = changes.pop("card_token", None)
        with acct.lock:
            acct.billing.update(changes)
            if card:
                brand = card.removeprefix("tok_").split("_")[0]
                acct.billing["card_brand"] = brand if brand in {"visa", "mastercard", "amex"} else "visa"
                acct.billing["card_last4"] = f"{sum(card.encode()) * 7919 % 10000:04d}"
            for team in acct.teams:
                team["current_billing_plan"] = acct.billing["billing_plan"]
                team["vat_id"] = acct.billing["vat_id"]
            body = dict(acct.billing)
        return ok(body, g)

    async def decrypt(request: Request) -> Response:
        try:
            body = await json_body(request)
        except OrderError as exc:
            return error(400, str(exc))
        if not isinstance(body, dict):
            return error(400, 'the body must be a JSON object {"token": ..., "private_key": ...}')
        missing = [f for f in ("token", "private_key") if not isinstance(body.get(f), str) or not body.get(f)]
        if missing:
            return error(400, f"missing or empty field(s): {', '.join(missing)}")
        g = await passed(request, credential="decrypt:" + body["private_key"][-8:])
        if isinstance(g, Response):
            return g
        if body["private_key"] != p.private_key:
            return error(403, "private_key does not belong to this platform", g.headers)
        try:
            token = secrets.open_api_token(body["token"], p.private_key)
        except secrets.TokenError as exc:
            return error(400, str(exc), g.headers)
        return ok({"api_token": token}, g)

    async def not_found(request: Request) -> Response:
        return JSONResponse({"error": f"no route for {request.method} {request.url.path}"}, 404)

    routes = [
        Route("/api/accounts", get_account, methods=["GET"]),
        Route("/api/accounts/teams", get_teams, methods=["GET"]),
        Route("/api/accounts/billing", billing, methods=["PUT", "POST"]),
        Route("/api/billing", billing, methods=["PUT"]),
        Route("/api/orders/new", order_new, methods=["POST"]),
        Route("/api/reports/all", reports_all, methods=["GET"]),
        Route("/api/reports/{key}/status", report_status, methods=["GET"]),
        Route("/api/status/{key}", report_status, methods=["GET"]),
        Route("/api/report/{key}/widget-token", widget_token, methods=["GET"]),
        Route("/api/report/{key}", report, methods=["GET"]),
        Route("/api/reports/{key}", report, methods=["GET"]),
        Route("/api/invoices", invoices, methods=["GET"]),
        Route("/api/packages", packages, methods=["GET"]),
        Route("/api/token/decrypt", decrypt, methods=["POST"]),
        Mount("/widgets", app=widget_app(p)),
        Route("/{path:path}", not_found),
    ]
    return Starlette(routes=routes)
