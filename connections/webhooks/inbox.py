"""The durable webhook inbox: every verified delivery is recorded (idempotently, by event id) before
we answer 2xx, so a crash after that answer loses nothing and the provider's retries cover a crash
before it.

Object events (those the definition's `webhooks.objects` routes to a sync) stay `pending` here
until the webhook applier (flows/webhook_applier.py) has written them to the warehouse; it reads them with `pending`
(or, where several appliers share one store, takes them with `claim`) and settles them with `settle`. Statuses: `pending`, `processed`, `failed` (the applier could not use
it; `detail` says why; `screensync webhooks replay --failed` retries), `dropped` (its connection is
revoked), `unmatched` (no connection for its account), `ignored` (a type we do not use).
"""

from __future__ import annotations

import json
from typing import Any

from connections.store import ConnectionStore

QUEUED = "queued for the warehouse"


def pending(store: ConnectionStore, *, limit: int | None = None, integration: str | None = None) -> list[dict[str, Any]]:
    """The oldest pending events (each row as `store.events` gives it)."""
    return store.events(status="pending", integration=integration, limit=limit)


def claim(
    store: ConnectionStore, *, limit: int, integration: str | None = None, lease_seconds: float = 300.0
) -> list[dict[str, Any]]:
    """Like `pending`, but each event goes to one caller only (until settled or its lease runs out):
    several appliers, on several hosts, can drain one inbox without applying an event twice."""
    return store.claim_events(limit, integration, lease_seconds=lease_seconds)


def body(store: ConnectionStore, row: dict[str, Any]) -> dict[str, Any]:
    """The decoded event of an inbox row (bodies are stored encrypted)."""
    event = json.loads(store.event_body(row["integration"], row["event_id"]))
    if not isinstance(event, dict):
        raise ValueError("the stored body is not a JSON object")
    return event


def settle(store: ConnectionStore, outcomes: list[tuple[str, str, str, str | None]]) -> None:
    """(integration, event id, status, detail) for many events at once."""
    if outcomes:
        store.set_event_statuses(outcomes)


def requeue(store: ConnectionStore, rows: list[dict[str, Any]], detail: str) -> None:
    """Set these events back to `pending` (to be applied again), saying why."""
    settle(store, [(r["integration"], r["event_id"], "pending", detail) for r in rows])
