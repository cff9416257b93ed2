"""Composition root for webhooks: object events from the connections inbox land in the warehouse.

`connections` records and routes deliveries without knowing about DuckDB; the engine's
`apply_webhook_event` upserts without knowing about HTTP. This module joins the two in
the processes that receive webhooks (`screensync serve-web`, the demo).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from connections.models import Connection
from connections.store import ConnectionStore, open_store
from connections.webhooks.inbox import mark_processed, pending_object_events, set_object_event_handler
from integrations.engine.webhook_sink import apply_webhook_event
from screensync import settings
from warehouse.loader import Warehouse

log = logging.getLogger("screensync.webhooks")

# A webhook waits at most this long for a running sync to release the warehouse file;
# past it the event stays pending in the inbox and `drain_pending` applies it later.
LOCK_TIMEOUT_S = 5.0
# DuckDB attaches a file once per process: deliveries handled on the web app's threads and
# `drain_pending` take turns here instead of failing with "Unique file handle conflict".
_IN_PROCESS = threading.Lock()


def upsert_into_warehouse(integration: str, connection: Connection, event: dict[str, Any]) -> None:
    with _IN_PROCESS, Warehouse(settings.warehouse_path(), lock_timeout=LOCK_TIMEOUT_S) as wh:
        counts = apply_webhook_event(integration, connection.connection_id, event, wh)
    log.info("webhook %s %s for %s: +%d ~%d =%d", integration, event.get("type"), connection.connection_id,
             counts.added, counts.updated, counts.unchanged)


def install() -> None:
    set_object_event_handler(upsert_into_warehouse)


def drain_pending(store: ConnectionStore | None = None) -> int:
    """Apply object events still pending in the inbox (e.g. received while the warehouse was busy)."""
    store = store or open_store()
    done = 0
    for row in pending_object_events(store=store):
        event = row["event"]
        integration = row["integration"]
        account_id = event.get("account_id")
        for conn in store.find_by_account(integration, str(account_id)) if account_id else []:
            if conn.status != "revoked":  # a revoked connection's data is never written again
                upsert_into_warehouse(integration, conn, event)
        mark_processed(row["event_id"], integration, detail="applied by drain_pending", store=store)
        done += 1
    return done
