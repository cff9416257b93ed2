"""Checkr webhook events -> records for the warehouse (Checkr-only knowledge: event types, event time)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

# event type prefix -> the sync whose model and table the event's object belongs to
_SYNC_BY_PREFIX = {"report.": "reports", "candidate.": "candidates", "invitation.": "invitations"}


def records_from_event(event: dict[str, Any]) -> list[tuple[str, dict[str, Any], datetime | None]]:
    """Return (sync name, object, when it was true) to upsert; events without a full object yield nothing.

    A Checkr event's `created_at` is the moment of the change it reports, and its object is the
    record as it was then (Checkr report objects have no `updated_at`): that time orders the
    versions of a record, so a late or repeated delivery never replaces a newer one."""
    etype = str(event.get("type", ""))
    obj = (event.get("data") or {}).get("object") or {}
    for prefix, sync in _SYNC_BY_PREFIX.items():
        if etype.startswith(prefix) and isinstance(obj, dict) and len(obj) > 3:
            return [(sync, obj, _event_time(event.get("created_at")))]
    return []


def _event_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))  # a malformed time fails the event, loudly
    return when if when.tzinfo is not None else None
