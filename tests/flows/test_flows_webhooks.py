"""A sync flow run applies the webhook events waiting in the inbox: with no web app applying them
(it only receives, or it is down), scheduled flows alone still bring every event to the warehouse."""

from __future__ import annotations

import json
from typing import Any

from flow_helpers import FlowEnv, read_rows

from connections.models import Connection, ConnectionMetadata, Credentials
from flows.sync_flows import sync_integration
from tests.support.webhooks import report_event


def test_a_sync_flow_run_applies_the_events_waiting_in_the_inbox(flow_env: FlowEnv, sandboxes: Any) -> None:
    checkr = sandboxes.info["checkr"]
    account = checkr["accounts"][0]
    flow_env.store.add(
        Connection(connection_id="ck-1", integration="checkr", credential_kind="api_key",
                   metadata=ConnectionMetadata(base_url=checkr["base_url"], provider_account_id=account["id"])),
        Credentials(token=account["api_key"]),
    )
    for i in range(3):  # recorded by a receiver (verified, acknowledged); nobody applied them
        event = report_event(f"evt-{i}", f"rep-hook-{i}", account["id"])
        flow_env.store.record_event("checkr", event["id"], event["type"], account["id"], json.dumps(event).encode())

    state = sync_integration(integration="checkr", syncs=["account"], return_state=True)

    assert state.is_completed(), state.message
    assert {e["status"] for e in flow_env.store.events()} == {"processed"}
    assert read_rows(flow_env.warehouse, "SELECT id FROM checkr.reports ORDER BY id") == [
        ("rep-hook-0",), ("rep-hook-1",), ("rep-hook-2",)
    ]
