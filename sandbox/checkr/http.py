"""Checkr's HTTP conventions: orjson bodies, `{"error": ...}`, form-or-JSON request bodies, page parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sandbox.checkr.world import ApiError

JSON = "application/json"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON, headers=headers)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message}, status, headers)


async def read_body(request: Request) -> dict[str, Any]:
    """Form-encoded by default, JSON when the client says so (Checkr accepts both)."""
    raw = await request.body()
    if not raw:
        return {}
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == JSON:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"Request body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ApiError(400, "Request body must be a JSON object")
        return data
    try:
        pairs = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=True)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "Request body is not valid application/x-www-form-urlencoded") from exc
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key.endswith("[]"):
            out.setdefault(key[:-2], []).append(value)
        else:
            out[key] = value
    return out


def page_params(request: Request) -> tuple[int, int]:
    q = request.query_params
    page, per_page = q.get("page", "1"), q.get("per_page", "25")
    if not page.isdigit() or int(page) < 1:
        raise ApiError(400, f"page must be an integer of at least 1, got {page!r}")
    if not per_page.isdigit() or not 1 <= int(per_page) <= 100:
        raise ApiError(400, f"per_page must be an integer between 1 and 100, got {per_page!r}")
    return int(page), int(per_page)


def time_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, f"{name} must be an ISO 8601 date or date-time, got {value!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def basic_username(request: Request) -> str | None:
    """The Basic-auth username (API key or OAuth token); the password must be empty or absent."""
    import base64
    import binascii

    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, _password = decoded.partition(":")
    return user or None
