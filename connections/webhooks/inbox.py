"""The durable webhook inbox and the single hand-off point for object events.

Every verified delivery is recorded (idempotently, by event id) before we answer 2xx, so a crash
after that answer loses nothing and the provider's retries cover a crash before it. Object events
(reports, candidates, invitations) go to the handler the sync engine registers; until one is
registered they stay `pending` here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from connections.models import Connection
from connections.store import ConnectionStore, open_store

log = logging.getLogger(__name__)

ObjectEventHandler = Callable[[str, Connection, dict[str, Any]], None]

_handler: ObjectEventHandler | None = None


def set_object_event_handler(fn: ObjectEventHandler | None) -> None:
    """Register fn(integration, connection, event) to upsert webhook objects (None unregisters)."""
    global _handler
    _handler = fn


def object_event_handler() -> ObjectEventHandler | None:
    return _handler


def dispatch_object_event(
    integration: str, connection: Connection, event: dict[str, Any], *, store: ConnectionStore | None = None
) -> bool:
    """Hand one recorded event to the registered handler; True when handled (and marked processed)."""
    store = store or open_store()
    if connection.status == "revoked":  # a revoked connection's data is never written again
        store.set_event_status(integration, str(event["id"]), "dropped", f"{connection.connection_id} is revoked")
        return True
    if _handler is None:
        return False
    try:
        _handler(integration, connection, event)
    except Exception as exc:  # recorded already: it stays pending and is retried (replay or drain)
        log.warning(
            "webhook %s %s: object handler failed (%s); left pending", integration, event.get("id"), type(exc).__name__
        )
        return False
    store.set_event_status(
        integration, str(event["id"]), "processed", f"handled for connection {connection.connection_id}"
    )
    return True


def pending_object_events(
    integration: str | None = None, *, store: ConnectionStore | None = None
) -> list[dict[str, Any]]:
    """Recorded events not yet handled, oldest first, each with its decoded `event` body."""
    store = store or open_store()
    rows = store.events(status="pending", integration=integration)
    return [{**row, "event": json.loads(store.event_body(row["integration"], row["event_id"]))} for row in rows]


def mark_processed(
    event_id: str, integration: str = "checkr", *, detail: str | None = None, store: ConnectionStore | None = None
) -> None:
    (store or open_store()).set_event_status(integration, event_id, "processed", detail)
