"""Webhook objects -> warehouse, between scheduled syncs (the connections inbox calls this).

The integration's `webhook_handler` says which sync an event's object belongs to; the
object is then validated and upserted exactly like a synced record, so a replayed or
out-of-order delivery of the same object changes nothing.
"""

from __future__ import annotations

from typing import Any

from integrations.engine.registry import get_integration
from integrations.engine.sync_runner import build_batches, targets_for
from warehouse.loader import Warehouse, WriteCounts


def apply_webhook_event(integration: str, connection_id: str, event: dict[str, Any], warehouse: Warehouse) -> WriteCounts:
    integ = get_integration(integration)
    handler_ref = integ.definition.webhook_handler
    if not handler_ref:
        return WriteCounts()
    handler = integ.resolve(handler_ref)
    total = WriteCounts()
    for sync_name, obj in handler(event):
        sync = integ.definition.sync(sync_name)
        targets = targets_for(integ, sync)
        transform = integ.resolve(sync.transform) if sync.transform else None
        batches, rejects, _ = build_batches(sync, targets, [obj], transform)
        for b in batches:
            b.track_seen = False
        warehouse.ensure_tables(targets.all())
        total = total + warehouse.upsert_objects(
            [b for b in batches if b.rows],
            integration=integration,
            connection_id=connection_id,
            run_id=f"webhook:{event.get('id', '')}",
            rejects=rejects,
        )
    return total
