"""Due-based refresh (issue 16 item 1): a re-poll asks only for the open records that are due.

Declared per sync under `repoll: due:` (definition.yaml), not in code: when the provider expects a
record to be done (`after`), how long to wait between checks that find nothing (`intervals`,
growing), how much longer while webhooks for the connection flow (`webhook_stretch`) and when they
count as stopped (`webhooks_quiet_after`), and the share of the rate budget one run may spend
(`budget_share` of what the rate limit allows over the sync's own interval), so actions and other
syncs sharing the credential keep headroom. The arithmetic is in warehouse/due.py.
"""

from __future__ import annotations

from integrations.engine.definition import DueConfig, RateLimitConfig, SyncConfig
from integrations.engine.registry import DefinitionError, sync_frequency_seconds

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str, what: str) -> float:
    """'90s', '15m', '4h', '3d' -> seconds."""
    text = text.strip()
    try:
        return float(text[:-1]) * _UNITS[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise DefinitionError(f"{what}: bad duration {text!r} (use e.g. 90s, 15m, 4h, 3d)") from None


def budget(due: DueConfig, sync: SyncConfig, rate: RateLimitConfig | None) -> int | None:
    """At most this many requests per run: `budget_share` of what the rate limit allows over the
    sync's interval (None: no declared limit, or a cron schedule)."""
    every = sync_frequency_seconds(sync)
    if rate is None or every is None:
        return None
    return max(1, int(rate.requests / rate.per_seconds * every * due.budget_share))


def due_arguments(due: DueConfig, sync: SyncConfig, rate: RateLimitConfig | None) -> dict[str, object]:
    """The keyword arguments of `Warehouse.due_record_ids` this declaration gives (besides whose and which)."""
    what = f"sync {sync.name!r} repoll.due"
    return {
        "after": due.after,
        "after_plus_s": seconds(due.after_plus, what),
        "intervals_s": [seconds(i, what) for i in due.intervals] or [3600.0],
        "stretch": due.webhook_stretch,
        "quiet_s": seconds(due.webhooks_quiet_after, what),
        "limit": budget(due, sync, rate),
    }
