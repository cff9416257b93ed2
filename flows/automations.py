"""A ready-made Prefect automation: tell people when a sync fails (docs/operations.md shows its use).

It reacts to each `screensync.sync.failed` event (flows/events.py) and sends a notification
through a saved Prefect notification block (Slack, Teams, e-mail, a custom webhook, ...), naming
the integration, connection, sync and the error. Created through the API that the current
Prefect settings point at; re-creating it replaces the previous one of the same name.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flows.events import FAILED, RESOURCE_PREFIX

AUTOMATION_NAME = "screensync: notify on sync failure"
SUBJECT = "screensync sync failed: {{ event.resource.name }}"
BODY = """\
{{ event.resource.name }} failed at {{ event.occurred }}.
Error: {{ event.payload.error }}
What to do: {{ event.payload.hint }}
Re-run: screensync sync {{ event.resource['screensync.integration'] }} -c {{ event.resource['screensync.connection'] }} -s {{ event.resource['screensync.sync'] }}"""


def notify_on_sync_failure(block_name: str, *, name: str = AUTOMATION_NAME) -> UUID:
    """Create the automation with the notification block saved as `block_name`; returns its id."""
    from prefect.automations import Automation, EventTrigger, SendNotification
    from prefect.blocks.core import Block

    block = Block.load(block_name)
    for old in _automations_named(name):
        old.delete()
    automation = Automation(
        name=name,
        description="Each screensync.sync.failed event sends a notification with the error.",
        trigger=EventTrigger(
            expect={FAILED},
            match={"prefect.resource.id": f"{RESOURCE_PREFIX}*"},
            posture="Reactive",
            threshold=1,
        ),
        actions=[SendNotification(block_document_id=block._block_document_id, subject=SUBJECT, body=BODY)],
    ).create()
    assert automation.id is not None
    return automation.id


def _automations_named(name: str) -> list[Any]:
    from prefect.automations import Automation
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [Automation(**a.model_dump()) for a in client.read_automations_by_name(name=name)]
