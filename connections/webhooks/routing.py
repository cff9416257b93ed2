"""One webhook delivery, end to end: size, parse, verify, record durably, then act on it.

Nothing is written unless the signature verifies. A replay of a processed event is answered 200
with no second effect; a replay of one still pending (we crashed mid-way, or no object handler
yet) is routed again, which is safe because every effect is idempotent.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel

from connections.store import ConnectionStore
from connections.webhooks.inbox import dispatch_object_event
from connections.webhooks.verify import signature_matches, signing_secrets

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024

# Lifecycle events of partner connections; everything under these prefixes is an object event.
CREDENTIALED_EVENTS = frozenset({"account.credentialed"})
DEAUTHORIZED_EVENTS = frozenset({"token.deauthorized"})
OBJECT_EVENT_PREFIXES = ("report.", "candidate.", "invitation.")


class WebhookOutcome(BaseModel):
    status_code: int
    detail: str
    event_id: str | None = None
    duplicate: bool = False


def receive(store: ConnectionStore, integration: str, body: bytes, signature: str | None) -> WebhookOutcome:
    if len(body) > MAX_BODY_BYTES:
        return WebhookOutcome(status_code=413, detail=f"body larger than {MAX_BODY_BYTES} bytes")
    if not signature:
        return WebhookOutcome(status_code=401, detail="missing X-Checkr-Signature header")
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return WebhookOutcome(status_code=400, detail="body is not JSON")
    if not isinstance(event, dict):
        return WebhookOutcome(status_code=400, detail="body is not a JSON object")
    if not signature_matches(body, signature, signing_secrets(store, integration, event)):
        return WebhookOutcome(status_code=401, detail="bad signature")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
        return WebhookOutcome(status_code=400, detail="event has no string 'id' and 'type'")
    account_id = event.get("account_id") if isinstance(event.get("account_id"), str) else None
    new, status = store.record_event(integration, event_id, event_type, account_id, body)
    if not new and status != "pending":
        return WebhookOutcome(status_code=200, detail=f"already {status}", event_id=event_id, duplicate=True)
    status, detail = route(store, integration, event)
    if status != "pending":
        store.set_event_status(integration, event_id, status, detail)
    log.info("webhook %s %s %s: %s", integration, event_type, event_id, status)
    return WebhookOutcome(status_code=200, detail=f"{status}: {detail}", event_id=event_id, duplicate=not new)


def route(store: ConnectionStore, integration: str, event: dict[str, Any]) -> tuple[str, str]:
    """Apply one recorded event; returns (inbox status, detail). Idempotent."""
    event_type = str(event["type"])
    account_id = event.get("account_id")
    obj = (event.get("data") or {}).get("object") or {}
    if event_type in CREDENTIALED_EVENTS:
        matches = store.find_by_account(integration, str(account_id)) if account_id else []
        for conn in matches:
            store.update_metadata(integration, conn.connection_id, credentialed=True)
        if not matches:
            return "unmatched", f"no connection with account {account_id}"
        return "processed", f"credentialed {[c.connection_id for c in matches]}"
    if event_type in DEAUTHORIZED_EVENTS:
        token = obj.get("access_code") if isinstance(obj, dict) else None
        conn = store.find_by_token(integration, token) if isinstance(token, str) and token else None
        if conn is None:
            return "unmatched", "no connection holds the deauthorized token"
        if conn.status != "revoked":
            store.set_status(
                integration, conn.connection_id, "revoked", "deauthorized by the provider (token.deauthorized)"
            )
        return "processed", f"revoked {conn.connection_id}"
    if event_type.startswith(OBJECT_EVENT_PREFIXES):
        matches = store.find_by_account(integration, str(account_id)) if account_id else []
        if not matches:
            return "unmatched", f"no connection with account {account_id}"
        handled = [dispatch_object_event(integration, conn, event, store=store) for conn in matches]
        if all(handled):
            return "processed", f"handed to the object handler for {[c.connection_id for c in matches]}"
        return "pending", "no object handler registered yet"
    return "ignored", f"event type {event_type} is not used"
