"""The sandbox control API (`/_sandbox/...`): drive the clock, faults, rate limits, webhooks, OAuth; read truth.

It never answers to provider credentials: it is the test harness's side door, on its own port.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.clock import iso
from sandbox.faults import FaultConfig

if TYPE_CHECKING:
    from sandbox.server import SandboxServer


class AdvanceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(0, ge=0)
    minutes: float = Field(0, ge=0)
    hours: float = Field(0, ge=0)
    days: float = Field(0, ge=0)

    @model_validator(mode="after")
    def _some_time(self) -> AdvanceBody:
        if not (self.seconds or self.minutes or self.hours or self.days):
            raise ValueError("give a positive 'seconds', 'minutes', 'hours' or 'days'")
        return self


class RateLimitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_minute: int = Field(ge=0, description="0 disables limiting")


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(description="where events are POSTed; null stops delivery")
    provider: str = "checkr"


class OAuthBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    redirect_uri: str
    auto_approve: bool = False


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def _body(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise ControlError(400, f"invalid {model.__name__}: {problems}") from exc


def build_control_app(server: SandboxServer) -> Starlette:
    def provider(request: Request) -> Any:
        key = request.path_params["provider"]
        if key not in server.providers:
            raise ControlError(404, f"unknown provider {key!r}; one of {sorted(server.providers)}")
        return server.providers[key]

    async def advance(request: Request) -> Response:
        body: AdvanceBody = await _body(request, AdvanceBody)
        old, new = server.advance(seconds=body.seconds, minutes=body.minutes, hours=body.hours, days=body.days)
        return _json({"old": iso(old), "new": iso(new)})

    async def clock(request: Request) -> Response:
        return _json({"now": iso(server.clock.now())})

    async def put_faults(request: Request) -> Response:
        p = provider(request)
        config: FaultConfig = await _body(request, FaultConfig)
        p.faults.configure(config)
        return _json(config.model_dump())

    async def delete_faults(request: Request) -> Response:
        p = provider(request)
        p.faults.configure(FaultConfig())
        return _json(FaultConfig().model_dump())

    async def rate_limit(request: Request) -> Response:
        p = provider(request)
        body: RateLimitBody = await _body(request, RateLimitBody)
        p.set_rate_limit(body.per_minute)
        return _json({"per_minute": body.per_minute})

    async def webhooks(request: Request) -> Response:
        body: WebhookBody = await _body(request, WebhookBody)
        p = server.providers.get(body.provider)
        if p is None or not hasattr(p, "set_webhook_url"):
            raise ControlError(400, f"provider {body.provider!r} sends no webhooks; use 'checkr' or 'checkr_staging'")
        p.set_webhook_url(body.url)
        return _json({"provider": body.provider, "url": body.url})

    async def deliveries(request: Request) -> Response:
        p = provider(request)
        sender = getattr(p, "sender", None)
        if sender is None:
            raise ControlError(400, f"provider {p.key!r} sends no webhooks")
        return _json({"pending": sender.pending(), "deliveries": list(sender.deliveries)})

    async def oauth(request: Request) -> Response:
        p = provider(request)
        if not hasattr(p, "configure_oauth"):
            raise ControlError(400, f"provider {p.key!r} has no partner OAuth")
        body: OAuthBody = await _body(request, OAuthBody)
        p.configure_oauth(body.redirect_uri, body.auto_approve)
        return _json(body.model_dump())

    async def export(request: Request) -> Response:
        return _json(provider(request).export())

    async def info(request: Request) -> Response:
        return _json(server.info)

    async def control_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ControlError)
        return _json({"error": str(exc)}, exc.status)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _json({"error": f"no control endpoint {request.method} {request.url.path}"}, 404)

    base = "/_sandbox"
    app = Starlette(
        routes=[
            Route(f"{base}/advance", advance, methods=["POST"]),
            Route(f"{base}/clock", clock, methods=["GET"]),
            Route(f"{base}/faults/{{provider}}", put_faults, methods=["PUT"]),
            Route(f"{base}/faults/{{provider}}", delete_faults, methods=["DELETE"]),
            Route(f"{base}/rate_limit/{{provider}}", rate_limit, methods=["PUT"]),
            Route(f"{base}/webhooks", webhooks, methods=["PUT"]),
            Route(f"{base}/webhooks/{{provider}}/deliveries", deliveries, methods=["GET"]),
            Route(f"{base}/oauth/{{provider}}", oauth, methods=["PUT"]),
            Route(f"{base}/export/{{provider}}", export, methods=["GET"]),
            Route(f"{base}/info", info, methods=["GET"]),
        ]
    )
    app.add_exception_handler(ControlError, control_error)
    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_found)
    return app


__all__ = ["build_control_app", "timedelta"]
