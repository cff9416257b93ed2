"""Checkr webhook events -> records for the warehouse (Checkr-only knowledge: event types)."""

from __future__ import annotations

from typing import Any

# event type prefix -> the sync whose model and table the event's object belongs to
_SYNC_BY_PREFIX = {"report.": "reports", "candidate.": "candidates", "invitation.": "invitations"}


def records_from_event(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Return (sync name, object) pairs to upsert; events without a full object yield nothing."""
    etype = str(event.get("type", ""))
    obj = (event.get("data") or {}).get("object") or {}
    for prefix, sync in _SYNC_BY_PREFIX.items():
        if etype.startswith(prefix) and isinstance(obj, dict) and len(obj) > 3:
            return [(sync, obj)]
    return []
