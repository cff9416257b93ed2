"""A record the provider no longer has: a 404 or 410 when it is fetched by id.

Whatever fetched it (a re-poll, an owed record fetched again, a referenced record), the answer
means that record only, never the run: it is marked gone in the warehouse (soft-deleted with the
time and this reason, owed no more, never asked for again) and the run goes on.
"""

from __future__ import annotations

from integrations.engine.errors import ProviderError

GONE_STATUSES = (404, 410)


def gone_reason(exc: BaseException, endpoint: str) -> str | None:
    """The `_deleted_reason` for a fetch by id that failed with `exc`; None when it is not a "gone"."""
    if isinstance(exc, ProviderError) and exc.status_code in GONE_STATUSES:
        return f"gone at the provider: {exc.status_code} on GET {endpoint}"
    return None
