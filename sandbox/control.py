"""The sandbox control API (`/_sandbox/...`): drive the clock, faults, rate limits, webhooks, OAuth,
activity and removals; read ground truth. Every call has a Python twin on `SandboxServer`.

It never answers to provider credentials: it is the test harness's side door, on its own port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.clock import iso
from sandbox.control_http import ControlError, json_response, parse_body
from sandbox.control_webhooks import webhook_routes
from sandbox.control_world import world_routes
from sandbox.errors import SandboxError
from sandbox.faults import FaultConfig

if TYPE_CHECKING:
    from sandbox.server import SandboxServer

__all__ = ["ControlError", "build_control_app"]


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


class LatencyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ms: int = Field(ge=0, description="added to every API request")
    jitter_ms: int = Field(0, ge=0, description="plus a seeded uniform draw in [0, jitter_ms]")


class OAuthBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    redirect_uri: str
    auto_approve: bool = False


def build_control_app(server: SandboxServer) -> Starlette:
    def provider(request: Request) -> Any:
        return server.provider(request.path_params["provider"])

    async def advance(request: Request) -> Response:
        body = await parse_body(request, AdvanceBody)
        old, new = server.advance(seconds=body.seconds, minutes=body.minutes, hours=body.hours, days=body.days)
        return json_response({"old": iso(old), "new": iso(new)})

    async def clock(request: Request) -> Response:
        return json_response({"now": iso(server.clock.now())})

    async def get_faults(request: Request) -> Response:
        p = provider(request)
        return json_response({**p.faults.config.model_dump(), "stats": p.faults.stats()})

    async def put_faults(request: Request) -> Response:
        p = provider(request)
        config = await parse_body(request, FaultConfig)
        p.faults.configure(config)
        return json_response(config.model_dump())

    async def delete_faults(request: Request) -> Response:
        p = provider(request)
        p.faults.configure(FaultConfig())
        return json_response(FaultConfig().model_dump())

    async def latency(request: Request) -> Response:
        provider(request)
        body = await parse_body(request, LatencyBody)
        config = server.set_latency(request.path_params["provider"], body.ms, body.jitter_ms)
        return json_response(config.model_dump())

    async def rate_limit(request: Request) -> Response:
        p = provider(request)
        body = await parse_body(request, RateLimitBody)
        p.set_rate_limit(body.per_minute)
        return json_response({"per_minute": body.per_minute})

    async def oauth(request: Request) -> Response:
        p = provider(request)
        if not hasattr(p, "configure_oauth"):
            raise ControlError(400, f"provider {p.key!r} has no partner OAuth")
        body = await parse_body(request, OAuthBody)
        p.configure_oauth(body.redirect_uri, body.auto_approve)
        return json_response(body.model_dump())

    async def export(request: Request) -> Response:
        account = request.query_params.get("account") or None
        return json_response(server.export(request.path_params["provider"], account))

    async def info(request: Request) -> Response:
        return json_response(server.info)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SandboxError)
        return json_response({"error": exc.message}, exc.status)

    async def not_found(request: Request, exc: Exception) -> Response:
        return json_response({"error": f"no control endpoint {request.method} {request.url.path}"}, 404)

    base = "/_sandbox"
    app = Starlette(
        routes=[
            Route(f"{base}/advance", advance, methods=["POST"]),
            Route(f"{base}/clock", clock, methods=["GET"]),
            Route(f"{base}/faults/{{provider}}", get_faults, methods=["GET"]),
            Route(f"{base}/faults/{{provider}}", put_faults, methods=["PUT"]),
            Route(f"{base}/faults/{{provider}}", delete_faults, methods=["DELETE"]),
            Route(f"{base}/latency/{{provider}}", latency, methods=["PUT"]),
            Route(f"{base}/rate_limit/{{provider}}", rate_limit, methods=["PUT"]),
            Route(f"{base}/oauth/{{provider}}", oauth, methods=["PUT"]),
            Route(f"{base}/export/{{provider}}", export, methods=["GET"]),
            Route(f"{base}/info", info, methods=["GET"]),
            *webhook_routes(server, base),
            *world_routes(server, base),
        ]
    )
    app.add_exception_handler(SandboxError, refused)
    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_found)
    return app
