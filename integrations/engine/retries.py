"""When and how long to wait before retrying a provider request.

The wait honours what the provider says (Retry-After, or the rate-limit reset header in
the definition's format) and otherwise backs off exponentially with jitter. tenacity's
`wait_random_exponential` supplies the backoff; the loop itself lives in the client because
each wait depends on the response headers, and both attempts and total waiting are capped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import httpx
from pydantic import BaseModel, Field
from tenacity import RetryCallState, wait_random_exponential

from integrations.engine.definition import RateLimitConfig
from integrations.engine.rate_limiter import parse_reset

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class RetryPolicy(BaseModel):
    max_attempts: int = Field(6, ge=1)
    max_total_wait: float = Field(120.0, ge=0)  # seconds of waiting across all retries of one request
    base_delay: float = Field(0.5, gt=0)
    max_delay: float = Field(30.0, gt=0)

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for retry number `attempt` (1-based)."""
        wait = wait_random_exponential(multiplier=self.base_delay, max=self.max_delay)
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return float(wait(state))


def is_retryable(exc: BaseException | None = None, response: httpx.Response | None = None) -> bool:
    if response is not None:
        return response.status_code in RETRYABLE_STATUS
    return isinstance(exc, httpx.TransportError)


def server_wait(headers: Mapping[str, str], rate_limit: RateLimitConfig, *, now_wall: float | None = None) -> float | None:
    """Seconds the server asked us to wait (Retry-After, else the reset header), if it said."""
    now_wall = time.time() if now_wall is None else now_wall
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(retry_after).timestamp() - now_wall)
            except (TypeError, ValueError):
                pass
    if rate_limit.reset_header and headers.get(rate_limit.reset_header):
        wait = parse_reset(headers[rate_limit.reset_header], rate_limit.reset_format, now_wall=now_wall)
        if wait is not None:
            return max(0.0, wait)
    return None
