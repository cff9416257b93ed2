"""The webhook inbox part on both backends: idempotent recording, claims that hand each event to
one worker until it is settled or its lease runs out."""

from __future__ import annotations

import time

from connections.store import ConnectionStore
from connections.webhooks import inbox


def _record(store: ConnectionStore, n: int) -> None:
    for i in range(n):
        store.record_event("checkr", f"evt_{i}", "report.completed", "acct_1", b'{"n": %d}' % i)


def test_a_retried_delivery_is_one_row_keeping_its_status(any_store: ConnectionStore) -> None:
    assert any_store.record_event("checkr", "evt_1", "report.completed", None, b"{}") == (True, "pending")
    any_store.set_event_status("checkr", "evt_1", "processed")
    assert any_store.record_event("checkr", "evt_1", "report.completed", None, b"{}") == (False, "processed")
    assert [(e["event_id"], e["status"]) for e in any_store.events()] == [("evt_1", "processed")]


def test_claims_are_exclusive_until_settled_or_expired(any_store: ConnectionStore) -> None:
    _record(any_store, 5)
    first = inbox.claim(any_store, limit=3)
    assert [r["event_id"] for r in first] == ["evt_0", "evt_1", "evt_2"]  # oldest first
    assert [r["event_id"] for r in inbox.claim(any_store, limit=10)] == ["evt_3", "evt_4"]
    assert inbox.claim(any_store, limit=10) == []
    assert len(inbox.pending(any_store)) == 5  # claimed events are still pending until settled
    inbox.requeue(any_store, first[:1], "warehouse busy")  # handed back: claimable at once
    inbox.settle(any_store, [("checkr", "evt_1", "processed", None)])
    assert [r["event_id"] for r in inbox.claim(any_store, limit=10)] == ["evt_0"]
    assert any_store.events(status="processed")[0]["event_id"] == "evt_1"


def test_a_dead_workers_claims_return_when_the_lease_runs_out(any_store: ConnectionStore) -> None:
    _record(any_store, 2)
    assert len(inbox.claim(any_store, limit=10, lease_seconds=0.2)) == 2
    assert inbox.claim(any_store, limit=10) == []
    time.sleep(0.3)
    assert [r["event_id"] for r in inbox.claim(any_store, limit=10)] == ["evt_0", "evt_1"]
