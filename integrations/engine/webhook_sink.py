"""Webhook events -> validated records, ready for the warehouse (the webhook applier writes them).

The definition's `webhooks:` section says which sync an event's object belongs to, and when that
version of the object was true (the event's own time, at the declared path; a `hook` where data
cannot say it).
The object is validated exactly like a synced record, and stamped with that time, so a replayed,
duplicated or out-of-order delivery never replaces a newer version (warehouse/upsert.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from integrations.engine.batches import build_batches, targets_for
from integrations.engine.registry import get_integration
from integrations.engine.webhook_config import object_items, read_event
from warehouse.records import RecordBatch, RejectedRecord


def event_records(
    integration: str, event: dict[str, Any], *, default_time: datetime
) -> tuple[list[RecordBatch], list[RejectedRecord]]:
    """The records one event carries (batches with rows only) and its rejects.

    Each item is (sync name, object) or (sync name, object, time observed); without a time,
    `default_time` (when the event was received, by our clock) stands in. Rows carry
    `webhook:<event id>` as their run id. Raises on a payload it cannot read (a bad time, a hook's error)."""
    integ = get_integration(integration)
    config = integ.definition.webhooks
    if config is None:
        return [], []
    if config.hook:
        items = integ.resolve(config.hook)(event)
    else:  # an `extends` child without a routed sync receives no records for it
        syncs = {s.name for s in integ.definition.syncs}
        items = [item for item in object_items(config, event) if item[0] in syncs]
    run_id = f"webhook:{read_event(config, event).id or ''}"
    batches: list[RecordBatch] = []
    rejects: list[RejectedRecord] = []
    for item in items:
        sync_name, obj, observed = (*item, None) if len(item) == 2 else item
        sync = integ.definition.sync(sync_name)
        targets = targets_for(integ, sync)
        transform = integ.resolve(sync.transform) if sync.transform else None
        found, bad, _ = build_batches(sync, targets, [obj], transform)
        for b in found:
            if b.rows:
                b.track_seen = False
                b.observed_at = observed or default_time
                b.run_ids = [run_id] * len(b.rows)
                batches.append(b)
        rejects += bad
    return batches, rejects
