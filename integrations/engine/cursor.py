"""Cursor arithmetic of an incremental sync: the value sent, the largest value seen, its JSON form.

(What the cursor may not pass when records were quarantined is cursor_hold.py's job.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def cursor_param(value: Any, lookback: timedelta) -> str:
    """The request parameter for a stored cursor, `lookback` earlier (times in UTC, to the second)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return (value - lookback).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def max_cursor(current: Any, rows: list[dict[str, Any]], field: str) -> Any:
    """The larger of `current` and the largest `field` among `rows`."""
    values = [r[field] for r in rows if r.get(field) is not None]
    if not values:
        return current
    best = max(values)
    if current is None:
        return best
    if isinstance(current, str) and isinstance(best, datetime):
        current = datetime.fromisoformat(current.replace("Z", "+00:00"))
    return max(current, best)


def json_cursor(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
