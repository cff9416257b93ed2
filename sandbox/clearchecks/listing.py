"""Paginated list answers, and the list-only faults (cut-off body, malformed page, duplicates,
missing field, looping or foreign `next_page_url`) a sync must survive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sandbox.clearchecks.gate import error
from sandbox.clearchecks.paginator import PageParamError, envelope, page_url, parse_page_request
from sandbox.faults import FaultInjector

FOREIGN_BASE = "http://clearchecks-elsewhere.invalid"

Fetch = Callable[[int, int], list[dict[str, Any]]]  # (offset, limit) -> records


class CutOffResponse(Response):
    """Promises the whole body (Content-Length) but sends half, then the connection closes."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
        # returning without finishing makes uvicorn close the socket mid-body


def list_response(
    request: Request,
    *,
    fetch: Fetch,
    total: int,
    required_field: str,
    faults: FaultInjector,
    headers: dict[str, str],
) -> Response:
    try:
        req = parse_page_request(dict(request.query_params))
    except PageParamError as exc:
        return error(400, str(exc), headers)
    path = f"{str(request.base_url).rstrip('/')}{request.url.path}"
    config = faults.config
    data = fetch(req.offset, req.per_page) if req.offset < total else []
    body = envelope(path, req, data, total)
    if config.duplicate_record and req.page > 1 and data:
        body["data"] = fetch(req.offset - 1, 1) + data
    if config.missing_field:
        every = config.missing_field_every
        for i, record in enumerate(body["data"]):
            position = req.offset + i - (1 if config.duplicate_record and req.page > 1 else 0)
            if position % every == every - 1:
                record.pop(required_field, None)
    if config.next_href_loop and req.page == 2:
        body["next_page_url"] = page_url(path, req, 1)
    if config.next_href_foreign and req.page == 1 and body["next_page_url"]:
        body["next_page_url"] = page_url(f"{FOREIGN_BASE}{request.url.path}", req, 2)
    raw = orjson.dumps(body)
    media = "application/json"
    if config.malformed_page is not None and req.page == config.malformed_page:
        return Response(raw[: len(raw) // 2] + b"<!-- upstream error -->", 200, headers, media)
    if faults.draw(config.drop_rate):
        return CutOffResponse(raw, 200, headers, media)
    return Response(raw, 200, headers, media)
