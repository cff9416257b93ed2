"""Checkr's list envelope and the list-level faults (bad pages, duplicates, broken records, bad links).

Handlers hand over a total and a `fetch(start, stop)` for a slice, so a 100k-record list
never renders more than one page (plus one record when a duplicate is injected).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sandbox.checkr.http import JSON, json_response, page_params
from sandbox.faults import FaultInjector

FOREIGN_HOST = "sandbox-foreign-host.invalid"

Fetch = Callable[[int, int], list[dict[str, Any]]]


class TruncatedResponse(Response):
    """Announces the full Content-Length, sends half the body, then stops: a connection dropped mid-body."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body, media_type=JSON)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
        # returning without the final body message makes uvicorn close the connection


def page_link(request: Request, page: int, per_page: int) -> str:
    return str(request.url.include_query_params(page=page, per_page=per_page))


def list_response(request: Request, count: int, fetch: Fetch, faults: FaultInjector) -> Response:
    page, per_page = page_params(request)
    start = (page - 1) * per_page
    stop = min(start + per_page, count)
    cfg = faults.config
    dup = cfg.duplicate_record and page > 1 and 0 < start <= count
    items = fetch(start - 1 if dup else start, stop) if start < count or dup else []
    if cfg.missing_field:
        every = cfg.missing_field_every
        for offset, item in enumerate(items):
            pos = start - (1 if dup else 0) + offset
            if (pos + 1) % every == 0:
                item.pop("id" if (pos // every) % 2 == 0 else "created_at", None)
    next_href = page_link(request, page + 1, per_page) if stop < count else None
    if cfg.next_href_loop and page == 2:
        next_href = page_link(request, 1, per_page)
    if cfg.next_href_foreign and page == 1 and next_href:
        next_href = next_href.replace(f"{request.url.scheme}://{request.url.netloc}", f"http://{FOREIGN_HOST}", 1)
    envelope = {
        "data": items,
        "object": "list",
        "next_href": next_href,
        "previous_href": page_link(request, page - 1, per_page) if page > 1 else None,
        "count": count,
    }
    if cfg.malformed_page is not None and page == cfg.malformed_page:
        return Response(orjson.dumps(envelope)[:-7] + b",,]", media_type=JSON)
    if faults.draw(cfg.drop_rate):
        return TruncatedResponse(orjson.dumps(envelope))
    return json_response(envelope)
