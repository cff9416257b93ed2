"""Control routes that change or read the world: activity, removals, ground truth, simulated days."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.clock import iso
from sandbox.control_http import json_response, parse_body

if TYPE_CHECKING:
    from sandbox.server import SandboxServer


class RemoveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="candidate, report, invitation or package (ClearChecks: report)")
    id: str = Field(description="the record's id (ClearChecks: its report_key)")


class SimulateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: float = Field(gt=0, le=366)
    seed: int = 0
    min_step_minutes: float = Field(5.0, gt=0)
    max_step_minutes: float = Field(360.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> SimulateBody:
        if self.min_step_minutes > self.max_step_minutes:
            raise ValueError("min_step_minutes must not exceed max_step_minutes")
        return self


def world_routes(server: SandboxServer, base: str) -> list[Route]:
    async def put_activity(request: Request) -> Response:
        p = server.provider(request.path_params["provider"])
        config = await parse_body(request, p.activity_model)
        return json_response(server.set_activity(request.path_params["provider"], config).model_dump())

    async def delete_activity(request: Request) -> Response:
        return json_response(server.set_activity(request.path_params["provider"]).model_dump())

    async def remove(request: Request) -> Response:
        key = request.path_params["provider"]
        server.provider(key)
        body = await parse_body(request, RemoveBody)
        return json_response(server.remove(key, body.kind, body.id))

    async def removed(request: Request) -> Response:
        account = request.query_params.get("account") or None
        return json_response(server.removed(request.path_params["provider"], account))

    async def truth(request: Request) -> Response:
        t = server.truth(request.path_params["provider"], request.path_params["account"])
        return json_response(t.model_dump())

    async def simulate(request: Request) -> Response:
        body = await parse_body(request, SimulateBody)
        steps = await run_in_threadpool(
            lambda: server.simulate(
                days=body.days,
                rng=body.seed,
                min_step=timedelta(minutes=body.min_step_minutes),
                max_step=timedelta(minutes=body.max_step_minutes),
            )
        )
        return json_response({"old": iso(steps[0][0]), "new": iso(steps[-1][1]), "steps": [iso(n) for _, n in steps]})

    return [
        Route(f"{base}/activity/{{provider}}", put_activity, methods=["PUT"]),
        Route(f"{base}/activity/{{provider}}", delete_activity, methods=["DELETE"]),
        Route(f"{base}/remove/{{provider}}", remove, methods=["POST"]),
        Route(f"{base}/removed/{{provider}}", removed, methods=["GET"]),
        Route(f"{base}/truth/{{provider}}/{{account}}", truth, methods=["GET"]),
        Route(f"{base}/simulate", simulate, methods=["POST"]),
    ]
