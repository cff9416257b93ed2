"""The connect web app: a small Starlette ASGI app (`screensync serve-web`).

Routes: GET /connect/{integration}?session=... (a connect link: OAuth redirect or widget page),
GET /oauth/callback, POST /connect/{integration}/widget-token, POST /connect-sessions (the
platform's backend, Bearer API secret), POST /webhooks/{integration} (public, signed by the
provider), GET /healthz. Store calls block briefly on SQLite, so they run in the thread pool.
Who may reach which route: docs/connections.md, "Threat model and deployment".

Given an `applier` (screensync's webhook applier: this package knows nothing of the warehouse),
the app starts it with the server, wakes it whenever a delivery is queued in the inbox, and stops
it on shutdown.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from common import settings
from connections.connect_sessions import check_public_url, configured_public_url
from connections.errors import BadSecretKey, NoSecretKey
from connections.store import ConnectionStore, open_store
from connections.web.browser import BrowserBinding
from connections.web.connect_routes import connect_routes
from connections.webhooks.routing import MAX_BODY_BYTES, receive
from integrations.engine.registry import DefinitionError, get_integration

log = logging.getLogger(__name__)


class Applier(Protocol):
    """What the app needs from whatever applies queued events (flows.webhook_applier)."""

    def start(self) -> object: ...
    def wake(self) -> None: ...
    def stop(self) -> None: ...


def create_app(
    store: ConnectionStore | None = None,
    *,
    public_url: str | None = None,
    api_secret: str | None = None,
    applier: Applier | None = None,
) -> Starlette:
    """`public_url` (default SCREENSYNC_PUBLIC_URL) is where browsers reach this app: it builds the
    widget's post URL and decides Secure cookies. `api_secret` (default SCREENSYNC_API_SECRET)
    turns on `POST /connect-sessions`. `applier` runs with the server (its lifespan) and is woken
    by every queued delivery."""
    store = store or open_store()
    public = check_public_url(public_url) if public_url else configured_public_url()
    secret = api_secret if api_secret is not None else os.environ.get(settings.API_SECRET_ENV) or None

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
        try:
            outcome = await run_in_threadpool(
                receive, store, integration, b"".join(chunks), request.headers
            )
        except (NoSecretKey, BadSecretKey) as exc:  # our configuration, not the sender: it retries later
            log.error("webhook %s not processed: %s", integration, exc)
            return JSONResponse({"error": "the connection store cannot be read; retry later"}, status_code=503)
        if outcome.status_code >= 400:
            log.warning("webhook %s rejected: %s", integration, outcome.detail)
        elif outcome.queued and applier is not None:
            applier.wake()
        return JSONResponse(outcome.model_dump(), status_code=outcome.status_code)

    async def healthz(request: Request) -> Response:
        """Honest: 503 when the configured keys cannot read the store (e.g. after a rotation)."""
        try:
            await run_in_threadpool(store.health)
        except Exception as exc:  # whatever keeps the store unreadable: say so, answer 503
            return PlainTextResponse(f"unhealthy: {exc}", status_code=503)
        return PlainTextResponse("ok")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if applier is not None:
            await run_in_threadpool(applier.start)
        try:
            yield
        finally:
            if applier is not None:
                await run_in_threadpool(applier.stop)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            *connect_routes(store, BrowserBinding(public), secret),
            Route("/webhooks/{integration}", webhook, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
