"""Control routes for Checkr's webhooks: where they go, how delivery misbehaves, what became of each event."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.checkr.webhook_chaos import WebhookChaos
from sandbox.control_http import ControlError, json_response, parse_body

if TYPE_CHECKING:
    from sandbox.server import SandboxServer


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(description="where events are POSTed; null stops delivery")
    provider: str = "checkr"


class FlushBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout: float = Field(30.0, gt=0, le=600, description="seconds to wait for the queue to drain")


def webhook_routes(server: SandboxServer, base: str) -> list[Route]:
    async def set_url(request: Request) -> Response:
        body = await parse_body(request, WebhookBody)
        p = server.providers.get(body.provider)
        if p is None or not hasattr(p, "set_webhook_url"):
            raise ControlError(400, f"provider {body.provider!r} sends no webhooks; use 'checkr' or 'checkr_staging'")
        p.set_webhook_url(body.url)
        return json_response({"provider": body.provider, "url": body.url})

    async def deliveries(request: Request) -> Response:
        sender = server.webhook_sender(request.path_params["provider"])
        return json_response({"pending": sender.pending(), "deliveries": list(sender.deliveries)})

    async def put_chaos(request: Request) -> Response:
        key = request.path_params["provider"]
        server.webhook_sender(key)  # a provider without webhooks is refused before the body is read
        chaos = server.set_webhook_chaos(key, await parse_body(request, WebhookChaos))
        return json_response(chaos.model_dump())

    async def delete_chaos(request: Request) -> Response:
        return json_response(server.set_webhook_chaos(request.path_params["provider"]).model_dump())

    async def flush(request: Request) -> Response:
        body = await parse_body(request, FlushBody)
        key = request.path_params["provider"]
        # a blocking wait, in a worker thread: the control app keeps answering meanwhile
        return json_response(await run_in_threadpool(server.flush_webhooks, key, body.timeout))

    async def events(request: Request) -> Response:
        key = request.path_params["provider"]
        q = request.query_params
        entries = server.webhook_events(key, q.get("state") or None, q.get("type") or None)
        return json_response({"summary": server.webhook_sender(key).log.summary(), "events": entries})

    p = f"{base}/webhooks/{{provider}}"
    return [
        Route(f"{base}/webhooks", set_url, methods=["PUT"]),
        Route(f"{p}/deliveries", deliveries, methods=["GET"]),
        Route(f"{p}/chaos", put_chaos, methods=["PUT"]),
        Route(f"{p}/chaos", delete_chaos, methods=["DELETE"]),
        Route(f"{p}/flush", flush, methods=["POST"]),
        Route(f"{p}/events", events, methods=["GET"]),
    ]
