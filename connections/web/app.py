"""The connect web app: a small Starlette ASGI app.

Routes: GET /connect/{integration} (OAuth redirect or widget page), GET /oauth/callback,
POST /connect/{integration}/widget-token, POST /webhooks/{integration}, GET /healthz.
Store calls block briefly on SQLite, so they run in the thread pool.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from connections import oauth, widget
from connections.errors import ConnectionsError
from connections.store import ConnectionStore, open_store
from connections.web.pages import result_page
from connections.webhooks.routing import MAX_BODY_BYTES, receive
from connections.webhooks.verify import SIGNATURE_HEADER
from integrations.engine.registry import DefinitionError, get_integration

log = logging.getLogger(__name__)


def create_app(store: ConnectionStore | None = None) -> Starlette:
    store = store or open_store()

    async def connect(request: Request) -> Response:
        integration = request.path_params["integration"]
        connection_id = request.query_params.get("connection_id", "")
        try:
            definition = get_integration(integration).definition
        except DefinitionError as exc:
            return result_page("Unknown integration", str(exc), ok=False, status_code=404)
        if not connection_id:
            return result_page(
                "Missing connection id", "add ?connection_id=<your customer's id>", ok=False, status_code=400
            )
        try:
            if "oauth" in definition.auth.connect:
                url = await run_in_threadpool(oauth.authorize_url, store, integration, connection_id)
                return RedirectResponse(url, status_code=302)
            if "widget" in definition.auth.connect:
                post_url = str(request.url_for("widget_token", integration=integration))
                page = await run_in_threadpool(widget.render_page, store, integration, connection_id, post_url)
                return Response(page, media_type="text/html")
        except (ConnectionsError, ValidationError, DefinitionError) as exc:
            return result_page("Cannot connect", _message(exc), ok=False, status_code=400)
        return result_page(
            "Cannot connect",
            f"{integration} connects only with an API key (screensync connections add)",
            ok=False,
            status_code=400,
        )

    async def oauth_callback(request: Request) -> Response:
        params = request.query_params
        if params.get("error"):
            return result_page(
                "Connection not completed", f"the provider reported: {params.get('error')}", ok=False, status_code=400
            )
        try:
            conn = await run_in_threadpool(oauth.complete, store, params.get("code", ""), params.get("state", ""))
        except (ConnectionsError, ValidationError, DefinitionError) as exc:
            log.warning("oauth callback rejected: %s", _message(exc))
            return result_page("Connection failed", _message(exc), ok=False, status_code=400)
        log.info("connected %s/%s via oauth", conn.integration, conn.connection_id)
        account = conn.metadata.checkr_account_id or "?"
        return result_page(
            "Connected", f"{conn.integration} account {account} is connected as {conn.connection_id}.", ok=True
        )

    async def widget_token(request: Request) -> Response:
        integration = request.path_params["integration"]
        try:
            body: Any = await request.json()
        except ValueError:
            return JSONResponse({"ok": False, "error": "body is not JSON"}, status_code=400)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("state"), str)
            or not isinstance(body.get("token"), str)
        ):
            return JSONResponse({"ok": False, "error": 'expected {"state": ..., "token": ...}'}, status_code=400)
        try:
            conn = await run_in_threadpool(widget.complete, store, integration, body["state"], body["token"])
        except (ConnectionsError, ValidationError, DefinitionError) as exc:
            log.warning("widget token rejected: %s", _message(exc))
            return JSONResponse({"ok": False, "error": _message(exc)}, status_code=400)
        log.info("connected %s/%s via widget", conn.integration, conn.connection_id)
        return JSONResponse({"ok": True, "connection_id": conn.connection_id, "integration": conn.integration})

    async def webhook(request: Request) -> Response:
        integration = request.path_params["integration"]
        try:
            get_integration(integration)
        except DefinitionError:
            return JSONResponse({"error": f"unknown integration {integration!r}"}, status_code=404)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
            chunks.append(chunk)
        outcome = await run_in_threadpool(
            receive, store, integration, b"".join(chunks), request.headers.get(SIGNATURE_HEADER)
        )
        if outcome.status_code >= 400:
            log.warning("webhook %s rejected: %s", integration, outcome.detail)
        return JSONResponse(outcome.model_dump(), status_code=outcome.status_code)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/connect/{integration}", connect, methods=["GET"]),
            Route("/connect/{integration}/widget-token", widget_token, methods=["POST"], name="widget_token"),
            Route("/oauth/callback", oauth_callback, methods=["GET"]),
            Route("/webhooks/{integration}", webhook, methods=["POST"]),
        ]
    )


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
    return str(exc)
