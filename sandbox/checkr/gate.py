"""What stands before every `/v1` handler: auth, rate limit, injected faults, idempotent POST replay."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sandbox.checkr.http import basic_username, error_response, json_response
from sandbox.checkr.world import Account, ApiError

if TYPE_CHECKING:
    from sandbox.checkr.provider import CheckrProvider

Handler = Callable[[Request, Account], Awaitable[Response]]


class Idempotency:
    """Saved POST responses by (credential, Idempotency-Key); a key still being served answers 409."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._saved: dict[tuple[str, str], tuple[int, bytes] | None] = {}

    def begin(self, cred: str, key: str) -> tuple[int, bytes] | bool | None:
        """The saved response, None while in flight, or True when this request owns the key now."""
        with self._lock:
            if (cred, key) in self._saved:
                return self._saved[(cred, key)]
            self._saved[(cred, key)] = None
            return True

    def finish(self, cred: str, key: str, status: int, body: bytes) -> None:
        with self._lock:
            if status >= 500:
                self._saved.pop((cred, key), None)  # a failed attempt may be retried
            else:
                self._saved[(cred, key)] = (status, body)


def guarded(provider: CheckrProvider, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        provider.count_request()
        cred = basic_username(request)
        decision = provider.limiter.hit(cred or f"anonymous:{request.client.host if request.client else '-'}")
        headers = {
            "X-Ratelimit-Limit": str(decision.limit),
            "X-Ratelimit-Remaining": str(decision.remaining),
            "X-Ratelimit-Reset": decision.reset_iso,
        }
        response = await _serve(provider, handler, request, cred, decision.allowed)
        response.headers.update(headers)
        return response

    return endpoint


async def _serve(
    provider: CheckrProvider, handler: Handler, request: Request, cred: str | None, allowed: bool
) -> Response:
    faults = provider.faults
    account = provider.account_for(cred) if cred else None
    if account is None:
        await faults.delay()
        return error_response(401, "Bad authentication error")
    if not allowed or faults.take_429():
        await faults.delay()
        return error_response(429, "Too Many Requests")
    key = request.headers.get("idempotency-key") if request.method == "POST" else None
    if key and cred:
        state = provider.idempotency.begin(cred, key)
        if state is None:
            return error_response(409, "A request with this Idempotency-Key is still being processed")
        if state is not True:
            status, body = state  # type: ignore[misc]
            return Response(body, status_code=status, media_type="application/json")
    try:
        await faults.delay()  # after the key is taken: a slow POST holds its Idempotency-Key meanwhile
        if faults.draw(faults.config.error_rate):
            response = error_response(503, "Service Unavailable")
            if key and cred:
                provider.idempotency.finish(cred, key, 503, b"")
            return response
        try:
            with provider.world.lock:
                response = await handler(request, account)
        except ApiError as exc:
            response = error_response(exc.status, exc.message)
    except BaseException:
        if key and cred:
            provider.idempotency.finish(cred, key, 500, b"")
        raise
    if key and cred:
        provider.idempotency.finish(cred, key, response.status_code, bytes(response.body))
    return response


def not_found() -> Response:
    return json_response({"error": "Resource not found"}, 404)


__all__ = ["Idempotency", "guarded", "not_found", "orjson"]
