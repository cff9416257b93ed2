"""When and how long to wait before retrying a provider request.

A wait honours what the provider says first (Retry-After, or an exhausted window's reset
header in the definition's format) and otherwise backs off exponentially with jitter.

The retry loop is a small explicit loop in the client rather than a tenacity decorator:
each wait depends on the response that failed (its status, Retry-After and rate-limit
headers), the wait must also pause the shared rate limiter, and two caps (attempts and
total seconds waited) apply. Expressing that through tenacity's wait/stop callbacks would
need the response smuggled through `RetryCallState`, which is harder to read than the loop.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

from pydantic import BaseModel, ConfigDict, Field

from integrations.engine.definition import RateLimitConfig
from integrations.engine.rate_limiter import parse_reset

# waiting until a reset given to the second: a little margin so we do not arrive a hair early
RESET_MARGIN_S = 0.25


class RetryPolicy(BaseModel):
    """Caps both attempts and total waiting, so a sick provider fails a run instead of hanging it."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(6, ge=1, description="attempts per request, the first included")
    max_total_wait: float = Field(120.0, ge=0, description="seconds of waiting across all retries of one request")
    base_delay: float = Field(0.5, gt=0, description="backoff before the first retry")
    max_delay: float = Field(30.0, gt=0, description="no single backoff is longer")
    jitter: float = Field(0.25, ge=0, le=1, description="each backoff is scaled by a random factor in 1 ± jitter")

    def backoff(self, retry: int, *, rng: Callable[[], float] = random.random) -> float:
        """Backoff before retry number `retry` (1-based): doubling from base_delay, capped, jittered.

        Jitter keeps many clients that failed together from retrying together.
        """
        if retry < 1:
            raise ValueError(f"retry number must be 1 or more, got {retry}")
        plain = min(self.max_delay, self.base_delay * 2 ** min(retry - 1, 62))
        return max(0.0, plain * (1 + self.jitter * (2 * rng() - 1)))


def parse_retry_after(value: str, *, now_wall: float) -> float | None:
    """Retry-After is either delta seconds or an HTTP date (RFC 9110 §10.2.3)."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now_wall)
    except (TypeError, ValueError, IndexError):
        return None


def server_wait(
    headers: Mapping[str, str],
    rate_limit: RateLimitConfig,
    *,
    status_code: int = 429,
    now_wall: float | None = None,
) -> float | None:
    """Seconds the server asked us to wait, or None when it did not say.

    Retry-After always counts. The reset header only counts on a 429 whose window is used
    up (remaining is 0, or not reported): a 429 with quota left is throttling of another
    kind (bursts, concurrency), and waiting out the whole window for it would be wrong.
    """
    now_wall = time.time() if now_wall is None else now_wall
    retry_after = headers.get("Retry-After")
    if retry_after:
        told = parse_retry_after(retry_after, now_wall=now_wall)
        if told is not None:
            return told
    if status_code != 429 or not rate_limit.reset_header or not headers.get(rate_limit.reset_header):
        return None
    if rate_limit.remaining_header and headers.get(rate_limit.remaining_header):
        try:
            if int(headers[rate_limit.remaining_header]) > 0:
                return None
        except ValueError:
            pass
    wait = parse_reset(headers[rate_limit.reset_header], rate_limit.reset_format, now_wall=now_wall)
    return None if wait is None else max(0.0, wait) + RESET_MARGIN_S
