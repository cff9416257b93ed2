"""One Prefect event per finished sync, so failures reach people through Prefect automations.

`screensync.sync.completed` when the sync succeeded, `screensync.sync.failed` otherwise. The
resource is the (integration, connection, sync) triple, e.g. `screensync.sync.checkr.acme-hr.candidates`,
with labels to match on in an automation's trigger; the payload carries the run's counts, status
and error. Emitted from inside the flow run, so Prefect relates each event to its flow run,
deployment and work pool. The engine stays Prefect-free: this module reads its SyncResult.
"""

from __future__ import annotations

import logging
from typing import Any

from integrations.engine.results import SyncResult

log = logging.getLogger("screensync.events")

COMPLETED = "screensync.sync.completed"
FAILED = "screensync.sync.failed"
RESOURCE_PREFIX = "screensync.sync."
PAYLOAD_FIELDS = (
    "run_id", "mode", "added", "updated", "deleted", "unchanged", "rejected",
    "requests", "retries", "pages", "resumed", "duration_s", "error", "hint",
)  # fmt: skip


def event_name(result: SyncResult) -> str:
    return COMPLETED if result.ok else FAILED


def sync_resource(result: SyncResult) -> dict[str, str]:
    return {
        "prefect.resource.id": f"{RESOURCE_PREFIX}{result.integration}.{result.connection_id}.{result.sync}",
        "prefect.resource.name": f"{result.integration}/{result.connection_id}/{result.sync}",
        "screensync.integration": result.integration,
        "screensync.connection": result.connection_id,
        "screensync.sync": result.sync,
        "screensync.model": result.model,
        "screensync.status": result.status.value,
    }


def sync_payload(result: SyncResult) -> dict[str, Any]:
    payload = result.model_dump(mode="json", include=set(PAYLOAD_FIELDS))
    payload["status"] = result.status.value
    return payload


def emit_sync_events(results: list[SyncResult]) -> int:
    """Emit one event per result; returns how many were handed to Prefect. Never fails the run."""
    from prefect.events import emit_event

    sent = 0
    for result in results:
        try:
            event = emit_event(
                event=event_name(result),
                resource=sync_resource(result),
                occurred=result.finished_at,
                payload=sync_payload(result),
            )
        except Exception as exc:  # an event is a notification: losing one must not fail the sync
            log.warning("could not emit the %s event for %s: %s", event_name(result), result.sync, exc)
            continue
        sent += event is not None
    return sent
