"""Checkr's `/v1` routes, as the sandbox models them (see docs/providers/checkr.md)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.checkr.gate import guarded
from sandbox.checkr.http import json_response, read_body, time_param
from sandbox.checkr.listing import list_response
from sandbox.checkr.world import Account, ApiError

if TYPE_CHECKING:
    from sandbox.checkr.provider import CheckrProvider


def _includes(request: Request) -> set[str]:
    return {part.strip() for part in request.query_params.get("include", "").split(",") if part.strip()}


def routes(p: CheckrProvider) -> list[Route]:
    world = p.world

    def now() -> int:
        return p.now()

    def with_reports(a: Account, candidate: dict[str, Any], t: int) -> dict[str, Any]:
        candidate["reports"] = [
            world.report_object(a, world.find_report(a, rid, t), t) for rid in candidate["report_ids"]
        ]
        return candidate

    async def get_account(request: Request, a: Account) -> Response:
        return json_response(world.account_object(a))

    async def list_candidates(request: Request, a: Account) -> Response:
        t = now()
        after, before = time_param(request, "created_after"), time_param(request, "created_before")
        email = request.query_params.get("email") or None
        embed = "reports" in _includes(request)
        count, gen, overlay = world.candidate_refs(a, t, after, before, email)

        def fetch(start: int, stop: int) -> list[dict[str, Any]]:
            refs = world.merged_desc(a.tl.cand_created, gen, overlay, start, stop)
            objs = [world.candidate_object(a, r, t) for r in refs]
            return [with_reports(a, c, t) for c in objs] if embed else objs

        return list_response(request, count, fetch, p.faults)

    async def create_candidate(request: Request, a: Account) -> Response:
        body = await read_body(request)
        created = world.create_candidate(a, body, now())
        p.notify("candidate.created", a, created)
        return json_response(created, 201)

    async def get_candidate(request: Request, a: Account) -> Response:
        t = now()
        c = world.candidate_object(a, world.find_candidate(a, request.path_params["id"], t), t)
        return json_response(with_reports(a, c, t) if "reports" in _includes(request) else c)

    async def create_report(request: Request, a: Account) -> Response:
        body = await read_body(request)
        created = world.create_report(a, body, now())
        p.notify("report.created", a, created)
        return json_response(created, 200)  # Checkr answers 200, not 201, here

    async def get_report(request: Request, a: Account) -> Response:
        t = now()
        report = world.report_object(a, world.find_report(a, request.path_params["id"], t), t)
        if "candidate" in _includes(request):
            report["candidate"] = world.candidate_object(a, world.find_candidate(a, report["candidate_id"], t), t)
        return json_response(report)

    async def list_packages(request: Request, a: Account) -> Response:
        items = world.packages(a, now())
        return list_response(request, len(items), lambda s, e: items[s:e], p.faults)

    async def get_package(request: Request, a: Account) -> Response:
        return json_response(world.find_package(a, request.path_params["id"], now()))

    async def list_invitations(request: Request, a: Account) -> Response:
        t = now()
        q = request.query_params
        facts = world.invitations(a, t, q.get("candidate_id") or None, q.get("status") or None)
        return list_response(
            request, len(facts), lambda s, e: [world.invitation_object(f, t) for f in facts[s:e]], p.faults
        )

    async def create_invitation(request: Request, a: Account) -> Response:
        body = await read_body(request)
        created = world.create_invitation(a, body, now())
        p.notify("invitation.created", a, created)
        return json_response(created, 201)

    async def get_invitation(request: Request, a: Account) -> Response:
        t = now()
        return json_response(world.invitation_object(world.find_invitation(a, request.path_params["id"], t), t))

    async def delete_invitation(request: Request, a: Account) -> Response:
        deleted = world.delete_invitation(a, request.path_params["id"], now())
        p.notify("invitation.deleted", a, deleted)
        return json_response(deleted)

    async def list_invoices(request: Request, a: Account) -> Response:
        items = world.invoices(a, now())
        return list_response(request, len(items), lambda s, e: items[s:e], p.faults)

    async def list_nodes(request: Request, a: Account) -> Response:
        items = world.nodes(a)
        return list_response(request, len(items), lambda s, e: items[s:e], p.faults)

    async def session_token(request: Request, a: Account) -> Response:
        body = await read_body(request)
        scopes = body.get("scopes", ["order"])
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ApiError(400, "scopes must be a list of strings")
        return json_response({"token": "sess_" + secrets.token_urlsafe(24)})

    def r(path: str, handler: Any, methods: list[str]) -> Route:
        return Route(f"/v1{path}", guarded(p, handler), methods=methods)

    return [
        r("/account", get_account, ["GET"]),
        r("/candidates", list_candidates, ["GET"]),
        r("/candidates", create_candidate, ["POST"]),
        r("/candidates/{id}", get_candidate, ["GET"]),
        r("/reports", create_report, ["POST"]),
        r("/reports/{id}", get_report, ["GET"]),
        r("/packages", list_packages, ["GET"]),
        r("/packages/{id}", get_package, ["GET"]),
        r("/invitations", list_invitations, ["GET"]),
        r("/invitations", create_invitation, ["POST"]),
        r("/invitations/{id}", get_invitation, ["GET"]),
        r("/invitations/{id}", delete_invitation, ["DELETE"]),
        r("/invoices", list_invoices, ["GET"]),
        r("/nodes", list_nodes, ["GET"]),
        r("/web_sdk/session_tokens", session_token, ["POST"]),
    ]
