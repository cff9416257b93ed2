"""One webhook delivery, end to end: size, parse, verify, authorise, record durably, then act on it.

Nothing is written unless the signature verifies *and* the event is signed with the secret of
every connection it would affect (a direct customer's API key can only speak for that customer's
own connection). Events for revoked connections are acknowledged and dropped: never recorded,
never applied. Lifecycle events (credentialed, deauthorized) act on the store at once; object
events stay `pending` in the inbox for the webhook applier, which writes them to the warehouse
in batches (flows/webhook_applier.py). A replay of a settled event is answered 200 with no
second effect; a replay of one still pending is routed again, which is safe because every effect
is idempotent.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel

from connections.models import Connection
from connections.store import ConnectionStore
from connections.webhooks.inbox import (
    CREDENTIALED_EVENTS,
    DEAUTHORIZED_EVENTS,
    OBJECT_EVENT_PREFIXES,
    QUEUED,
)
from connections.webhooks.verify import matching_signers, signed_for, signing_candidates

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


class WebhookOutcome(BaseModel):
    status_code: int
    detail: str
    event_id: str | None = None
    duplicate: bool = False
    queued: bool = False  # an object event waits in the inbox for the applier


def receive(store: ConnectionStore, integration: str, body: bytes, signature: str | None) -> WebhookOutcome:
    if len(body) > MAX_BODY_BYTES:
        return WebhookOutcome(status_code=413, detail=f"body larger than {MAX_BODY_BYTES} bytes")
    if not signature:
        return WebhookOutcome(status_code=401, detail="missing X-Checkr-Signature header")
    try:
        event = json.loads(body.decode("utf-8"))  # JSON on the wire is UTF-8; json.loads(bytes) would guess
    except UnicodeDecodeError:
        return WebhookOutcome(status_code=400, detail="body is not UTF-8")
    except ValueError:
        return WebhookOutcome(status_code=400, detail="body is not JSON")
    if not isinstance(event, dict):
        return WebhookOutcome(status_code=400, detail="body is not a JSON object")
    signers = matching_signers(body, signature, signing_candidates(store, integration, event))
    if not signers:
        return WebhookOutcome(status_code=401, detail="bad signature")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
        return WebhookOutcome(status_code=400, detail="event has no string 'id' and 'type'")
    targets = affected(store, integration, event)
    if targets:
        allowed = [c for c in targets if signed_for(integration, c, signers)]
        if not allowed:
            return WebhookOutcome(
                status_code=403,
                detail=f"event signed with a key that does not belong to {[c.connection_id for c in targets]}",
                event_id=event_id,
            )
        targets = [c for c in allowed if c.status != "revoked"]
        if not targets:
            log.info("webhook %s %s %s: dropped (connection revoked)", integration, event_type, event_id)
            return WebhookOutcome(status_code=200, detail="dropped: the connection is revoked", event_id=event_id)
    account_id = event.get("account_id") if isinstance(event.get("account_id"), str) else None
    new, status = store.record_event(integration, event_id, event_type, account_id, body)
    if not new and status != "pending":
        return WebhookOutcome(status_code=200, detail=f"already {status}", event_id=event_id, duplicate=True)
    status, detail = route(store, integration, event, targets)
    store.set_event_status(integration, event_id, status, detail)
    log.info("webhook %s %s %s: %s", integration, event_type, event_id, status)
    return WebhookOutcome(status_code=200, detail=f"{status}: {detail}", event_id=event_id, duplicate=not new,
                          queued=status == "pending")


def affected(store: ConnectionStore, integration: str, event: dict[str, Any]) -> list[Connection] | None:
    """The connections this event would change (None: a type we do not use)."""
    event_type = str(event.get("type"))
    if event_type in DEAUTHORIZED_EVENTS:
        obj = (event.get("data") or {}).get("object") or {}
        token = obj.get("access_code") if isinstance(obj, dict) else None
        conn = store.find_by_token(integration, token) if isinstance(token, str) and token else None
        return [conn] if conn else []
    if event_type in CREDENTIALED_EVENTS or event_type.startswith(OBJECT_EVENT_PREFIXES):
        account_id = event.get("account_id")
        return store.find_by_account(integration, account_id) if isinstance(account_id, str) and account_id else []
    return None


def route(
    store: ConnectionStore, integration: str, event: dict[str, Any], targets: list[Connection] | None
) -> tuple[str, str]:
    """Apply one recorded event to its (authorised, not revoked) targets; (inbox status, detail). Idempotent."""
    event_type = str(event["type"])
    if targets is None:
        return "ignored", f"event type {event_type} is not used"
    if not targets:
        if event_type in DEAUTHORIZED_EVENTS:
            return "unmatched", "no connection holds the deauthorized token"
        return "unmatched", f"no connection with account {event.get('account_id')}"
    ids = [c.connection_id for c in targets]
    if event_type in CREDENTIALED_EVENTS:
        for conn in targets:
            store.update_metadata(integration, conn.connection_id, credentialed=True)
        return "processed", f"credentialed {ids}"
    if event_type in DEAUTHORIZED_EVENTS:
        for conn in targets:
            store.set_status(
                integration, conn.connection_id, "revoked", "deauthorized by the provider (token.deauthorized)"
            )
        return "processed", f"revoked {ids[0] if len(ids) == 1 else ids}"
    return "pending", f"{QUEUED} ({', '.join(ids)})"
