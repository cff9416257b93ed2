"""The one place a provider's answer is judged: ok, retry (after how long), auth failed, redirect, fatal.

Every provider call goes through ProviderClient.request, which acts on this verdict; the
connection test, deauthorize and the sync and action runs therefore read an answer alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import httpx

from integrations.engine.definition import RateLimitConfig
from integrations.engine.retries import server_wait

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
AUTH_FAILED_STATUS = frozenset({401, 403})


class Outcome(StrEnum):
    OK = "ok"  # below 300: use it
    RETRY = "retry"  # 429 or a transient 5xx: wait (`wait`, else backoff) and send again
    AUTH_FAILED = "auth_failed"  # 401/403: the credential is invalid or revoked; never retried
    REDIRECT = "redirect"  # 3xx: never followed (a token must not travel to where it points)
    FATAL = "fatal"  # any other 4xx/5xx: retrying cannot help


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    wait: float | None = None  # RETRY only: seconds the provider asked for, None to back off


def classify(response: httpx.Response, rate_limit: RateLimitConfig) -> Verdict:
    """What to do with `response`, by its status and (for a retry) its Retry-After / reset headers."""
    status = response.status_code
    if status < 300:
        return Verdict(Outcome.OK)
    if status < 400:
        return Verdict(Outcome.REDIRECT)
    if status in AUTH_FAILED_STATUS:
        return Verdict(Outcome.AUTH_FAILED)
    if status in RETRYABLE_STATUS:
        return Verdict(Outcome.RETRY, server_wait(response.headers, rate_limit, status_code=status))
    return Verdict(Outcome.FATAL)
