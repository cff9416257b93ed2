"""Without a by-id endpoint, an incremental sync keeps its cursor from passing what it quarantined.

An incremental sync asks only for records after its cursor, so a record quarantined today would
never be read again once the cursor moved past it. Where the sync declares `refetch:` the record
is fetched again by id (refetch.py); where it cannot, the cursor stored at the end of the run is
held just before the earliest record of every page that held a quarantined record (lists are read
in cursor order), so the next run reads those pages again. When a page has no readable cursor
value at all, the cursor does not move this run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

START = "start"  # hold at the cursor the run started from: do not move it


def as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def page_floor(records: list[Any], field: str) -> datetime | str:
    """Just before the earliest cursor value on the page, or START when none can be read."""
    values = [v for r in records if isinstance(r, dict) and (v := as_datetime(r.get(field))) is not None]
    return min(values) - timedelta(seconds=1) if values else START


def earlier(hold: Any, floor: datetime | str) -> Any:
    if hold == START or floor == START:
        return START
    current = as_datetime(hold)
    return floor if current is None or floor < current else current  # type: ignore[operator]


def cursor_to_store(max_cursor: Any, hold: Any, start: Any) -> Any:
    """The cursor the run may store: what it read up to, but never past a hold."""
    if hold is None:
        return max_cursor
    if hold == START:
        return start
    top = as_datetime(max_cursor)
    held = as_datetime(hold)
    return hold if top is None or (held is not None and held < top) else max_cursor
