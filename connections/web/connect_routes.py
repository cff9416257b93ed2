"""The connect routes: open a connect link, the OAuth callback, the widget's token post, and the
platform's authenticated `POST /connect-sessions`.

Answers: 401 without a genuine link, 403 for a flow this browser did not start (or a used link),
409 when the result would replace a connection the platform did not ask to replace, 415 for a
body that is not `application/json`. None of those writes anything.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from connections import connect_flow, oauth, widget
from connections.connect_sessions import DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS, link_url, mint
from connections.errors import ConnectionsError, ConnectNotAuthorised, ReplaceRefused
from connections.store import ConnectionStore
from connections.web.browser import PAGE_HEADERS, BrowserBinding
from connections.web.pages import result_page
from integrations.engine.registry import DefinitionError, get_integration

log = logging.getLogger(__name__)

MAX_JSON_BYTES = 64 * 1024
NEEDS_LINK = (
    "Connections start from a connect link your platform creates for you "
    "(`screensync connections connect-link <integration> <connection id>`); open that link instead."
)


def _status(exc: Exception) -> int:
    if isinstance(exc, ConnectNotAuthorised):
        return exc.status_code
    if isinstance(exc, ReplaceRefused):
        return 409
    return 400


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
    return str(exc)


FLOW_ERRORS = (ConnectionsError, ValidationError, DefinitionError)


def _page(title: str, message: str, *, ok: bool, status_code: int = 200) -> Response:
    response = result_page(title, message, ok=ok, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    return response


def _json_error(message: str, status_code: int) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status_code, headers=PAGE_HEADERS)


async def _json_body(request: Request) -> Any | Response:
    """The parsed body, or the error response: JSON only (a cross-site form cannot send it), size-capped."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        return _json_error("the body must be application/json", 415)
    body = await request.body()
    if len(body) > MAX_JSON_BYTES:
        return _json_error(f"body larger than {MAX_JSON_BYTES} bytes", 413)
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError:
        return _json_error("body is not JSON", 400)


class SessionRequest(BaseModel):
    integration: str
    connection_id: str
    reconnect: bool = False
    allow_account_change: bool = False
    ttl_seconds: int = Field(DEFAULT_TTL_SECONDS, ge=1, le=MAX_TTL_SECONDS)


def connect_routes(store: ConnectionStore, binding: BrowserBinding, api_secret: str | None) -> list[Route]:
    async def connect(request: Request) -> Response:
        integration = request.path_params["integration"]
        try:
            get_integration(integration)
        except DefinitionError as exc:
            return _page("Unknown integration", str(exc), ok=False, status_code=404)
        token = request.query_params.get("session")
        if not token:
            return _page("Connect link required", NEEDS_LINK, ok=False, status_code=401)
        try:
            session = await run_in_threadpool(connect_flow.session_for, store, integration, token)
            opened = await run_in_threadpool(
                connect_flow.open_link, store, session, binding.secret(request, session.session_id)
            )
            if opened.kind == "oauth":
                url = await run_in_threadpool(oauth.authorize_url, store, integration, opened.state)
                response: Response = RedirectResponse(url, status_code=302, headers=PAGE_HEADERS)
            else:
                page = await run_in_threadpool(
                    widget.render_page,
                    store,
                    integration,
                    session.connection_id,
                    opened.state,
                    binding.post_url(integration),
                )
                response = Response(page, media_type="text/html", headers=PAGE_HEADERS)
        except FLOW_ERRORS as exc:
            log.warning("connect %s refused: %s", integration, _message(exc))
            return _page("Cannot connect", _message(exc), ok=False, status_code=_status(exc))
        ttl = connect_flow.STATE_TTL[opened.kind]
        binding.set(response, request, session.session_id, opened.browser_secret, ttl)
        return response

    async def oauth_callback(request: Request) -> Response:
        params = request.query_params
        state = params.get("state", "")
        if params.get("error"):
            return _page(
                "Connection not completed", f"the provider reported: {params.get('error')}", ok=False, status_code=400
            )
        session_id = connect_flow.session_id_of(state)
        try:
            conn = await run_in_threadpool(
                connect_flow.finish_oauth, store, state, binding.secret(request, session_id), params.get("code", "")
            )
        except FLOW_ERRORS as exc:
            log.warning("oauth callback refused: %s", _message(exc))
            return _page("Connection failed", _message(exc), ok=False, status_code=_status(exc))
        log.info("connected %s/%s via oauth", conn.integration, conn.connection_id)
        account = conn.metadata.provider_account_id or "?"
        response = _page(
            "Connected", f"{conn.integration} account {account} is connected as {conn.connection_id}.", ok=True
        )
        binding.clear(response, request, session_id)
        return response

    async def widget_token(request: Request) -> Response:
        integration = request.path_params["integration"]
        if not binding.origin_allowed(request):
            return _json_error("cross-origin request refused", 403)
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("state"), str)
            or not isinstance(body.get("token"), str)
        ):
            return _json_error('expected {"state": ..., "token": ...}', 400)
        session_id = connect_flow.session_id_of(body["state"])
        try:
            conn = await run_in_threadpool(
                connect_flow.finish_widget,
                store,
                integration,
                body["state"],
                binding.secret(request, session_id),
                body["token"],
            )
        except FLOW_ERRORS as exc:
            log.warning("widget token refused: %s", _message(exc))
            return _json_error(_message(exc), _status(exc))
        log.info("connected %s/%s via widget", conn.integration, conn.connection_id)
        response = JSONResponse(
            {"ok": True, "connection_id": conn.connection_id, "integration": conn.integration}, headers=PAGE_HEADERS
        )
        binding.clear(response, request, session_id)
        return response

    async def create_session(request: Request) -> Response:
        """The platform's backend mints a connect link over HTTP (Bearer SCREENSYNC_API_SECRET)."""
        if not api_secret:
            return _json_error("POST /connect-sessions is off: set SCREENSYNC_API_SECRET for serve-web", 404)
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_secret.encode()):
            return _json_error("missing or wrong Bearer API secret", 401)
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        try:
            wanted = SessionRequest.model_validate(body)
            token, session = await run_in_threadpool(
                mint,
                store,
                wanted.integration,
                wanted.connection_id,
                reconnect=wanted.reconnect,
                allow_account_change=wanted.allow_account_change,
                ttl_seconds=wanted.ttl_seconds,
            )
        except FLOW_ERRORS as exc:
            return _json_error(_message(exc), 400)
        return JSONResponse(
            {
                "url": link_url(binding.public_url, session.integration, token),
                "token": token,
                "expires_at": session.expires_at,
            },
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )

    return [
        Route("/connect-sessions", create_session, methods=["POST"]),
        Route("/connect/{integration}", connect, methods=["GET"]),
        Route("/connect/{integration}/widget-token", widget_token, methods=["POST"]),
        Route("/oauth/callback", oauth_callback, methods=["GET"]),
    ]
