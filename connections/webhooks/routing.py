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
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from connections.models import Connection
from connections.store import ConnectionStore
from connections.webhooks.inbox import QUEUED
from connections.webhooks.verify import (
    NoWebhooks,
    matching_signers,
    signed_for,
    signing_candidates,
    webhooks_config,
)
from integrations.engine.webhook_config import WebhookEvent, read_event

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


class WebhookOutcome(BaseModel):
    status_code: int
    detail: str
    event_id: str | None = None
    duplicate: bool = False
    queued: bool = False  # an object event waits in the inbox for the applier


def receive(store: ConnectionStore, integration: str, body: bytes, headers: Mapping[str, str]) -> WebhookOutcome:
    """One delivery: `headers` as received (the definition names the one carrying the signature)."""
    if len(body) > MAX_BODY_BYTES:
        return WebhookOutcome(status_code=413, detail=f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        config = webhooks_config(integration)
    except NoWebhooks as exc:
        return WebhookOutcome(status_code=404, detail=str(exc))
    signature = headers.get(config.signature.header)
    if not signature:
        return WebhookOutcome(status_code=401, detail=f"missing {config.signature.header} header")
    try:
        event = json.loads(body.decode("utf-8"))  # JSON on the wire is UTF-8; json.loads(bytes) would guess
    except UnicodeDecodeError:
        return WebhookOutcome(status_code=400, detail="body is not UTF-8")
    except ValueError:
        return WebhookOutcome(status_code=400, detail="body is not JSON")
    if not isinstance(event, dict):
        return WebhookOutcome(status_code=400, detail="body is not a JSON object")
    signers = matching_signers(config.signature, body, signature, signing_candidates(store, integration, event))
    if not signers:
        return WebhookOutcome(status_code=401, detail="bad signature")
    facts = read_event(config, event)
    event_id, event_type = facts.id, facts.type
    if event_id is None or event_type is None:
        return WebhookOutcome(status_code=400, detail=f"event has no string {config.event.id!r} and "
                                                      f"{config.event.type!r}")
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
    new, status = store.record_event(integration, event_id, event_type, facts.account_id, body)
    if not new and status != "pending":
        return WebhookOutcome(status_code=200, detail=f"already {status}", event_id=event_id, duplicate=True)
    status, detail = route(store, integration, event, targets)
    store.set_event_status(integration, event_id, status, detail)
    log.info("webhook %s %s %s: %s", integration, event_type, event_id, status)
    return WebhookOutcome(status_code=200, detail=f"{status}: {detail}", event_id=event_id, duplicate=not new,
                          queued=status == "pending")


def facts_of(integration: str, event: dict[str, Any]) -> WebhookEvent:
    """The event read through its integration's `webhooks:` paths (kind, account, token)."""
    return read_event(webhooks_config(integration), event)


def _by_token(integration: str, facts: WebhookEvent) -> bool:
    """A deauthorization found by the token it names (the definition says where), not by account."""
    deauth = webhooks_config(integration).lifecycle.deauthorized
    return facts.kind == "deauthorized" and deauth is not None and deauth.token is not None


def affected(store: ConnectionStore, integration: str, event: dict[str, Any]) -> list[Connection] | None:
    """The connections this event would change (None: a type we do not use)."""
    facts = facts_of(integration, event)
    if facts.kind == "ignored":
        return None
    if _by_token(integration, facts):
        conn = store.find_by_token(integration, facts.token) if facts.token else None
        return [conn] if conn else []
    return store.find_by_account(integration, facts.account_id) if facts.account_id else []


def route(
    store: ConnectionStore, integration: str, event: dict[str, Any], targets: list[Connection] | None
) -> tuple[str, str]:
    """Apply one recorded event to its (authorised, not revoked) targets; (inbox status, detail). Idempotent."""
    facts = facts_of(integration, event)
    if targets is None:
        return "ignored", f"event type {facts.type} is not used"
    if not targets:
        if _by_token(integration, facts):
            return "unmatched", "no connection holds the deauthorized token"
        return "unmatched", f"no connection with account {facts.account_id}"
    ids = [c.connection_id for c in targets]
    if facts.kind == "credentialed":
        for conn in targets:
            store.update_metadata(integration, conn.connection_id, credentialed=True)
        return "processed", f"credentialed {ids}"
    if facts.kind == "deauthorized":
        for conn in targets:
            store.set_status(
                integration, conn.connection_id, "revoked", f"deauthorized by the provider ({facts.type})"
            )
        return "processed", f"revoked {ids[0] if len(ids) == 1 else ids}"
    return "pending", f"{QUEUED} ({', '.join(ids)})"
