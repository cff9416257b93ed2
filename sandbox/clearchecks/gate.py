"""What every `/api` request passes before its handler: injected faults, auth, rate limit.

Answers use `{"error": "..."}`: ClearChecks documents no error body, so this shape is ASSUMED.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.faults import FaultInjector
from sandbox.ratelimit import FixedWindowLimiter


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


@dataclass
class Passed:
    token: str
    headers: dict[str, str]  # rate-limit headers to put on the answer


async def gate(
    request: Request,
    *,
    faults: FaultInjector,
    limiter: FixedWindowLimiter,
    token_known: Callable[[str], bool],
    credential: str | None = None,
) -> Passed | Response:
    """`credential` overrides the api_token (the decrypt call is keyed on the private key instead)."""
    config = faults.config
    await faults.delay()
    token = credential if credential is not None else request.query_params.get("api_token", "")
    if credential is None:
        if not token:
            return error(401, "missing api_token query parameter")
        if not token_known(token):
            return error(401, "invalid api_token")
    decision = limiter.hit(token)
    headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}
    if not decision.allowed:
        retry = max(1, int(decision.reset_epoch - time.time() + 0.999))
        headers |= {"Retry-After": str(retry), "X-RateLimit-Reset": str(int(decision.reset_epoch))}
        return error(429, "Too Many Attempts.", headers)
    if faults.take_429():
        return error(429, "Too Many Attempts.", headers | {"Retry-After": "1"})
    if faults.draw(config.error_rate):
        return error(500, "Server Error", headers)
    return Passed(token=token, headers=headers)
