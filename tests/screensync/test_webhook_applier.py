"""The webhook applier: batches, failures that name their cause, revoked connections, owed records,
a busy warehouse, and `screensync webhooks list|replay`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from common.asgi_thread import serve_in_thread
from connections.sqlite_store import SqliteConnectionStore
from connections.web.app import create_app
from flows.webhook_applier import WebhookApplier
from tests.connections.store_helpers import add_connection
from tests.support.webhooks import ROOT, cli_env, deliver, report_event, wait_until
from warehouse.loader import PageWrite, RejectedRecord, Warehouse
from warehouse.read import query

ACCOUNT = "acct000000000000000000aa"
API_KEY = "sk_test_applier_customer_key"


@dataclass
class Inbox:
    store: SqliteConnectionStore
    warehouse: Path
    key: str

    def statuses(self) -> dict[str, str]:
        return {e["event_id"]: e["status"] for e in self.store.events()}

    def detail(self, event_id: str) -> str:
        return next(e["detail"] or "" for e in self.store.events() if e["event_id"] == event_id)

    def applier(self, **kw: float) -> WebhookApplier:
        return WebhookApplier(self.store, self.warehouse, **kw)  # type: ignore[arg-type]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "screensync", "webhooks", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, env=cli_env(self.store.path, self.key, self.warehouse))


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    key = Fernet.generate_key().decode()
    store = SqliteConnectionStore(tmp_path / "connections.sqlite", keys=[key])
    add_connection(store, "cust-1", "api_key", ACCOUNT, API_KEY)
    return Inbox(store, tmp_path / "warehouse.duckdb", key)


@pytest.fixture
def queued(inbox: Inbox) -> Iterator[str]:
    """The web app without an applier: deliveries wait in the inbox (what a process that only receives sees)."""
    with serve_in_thread(create_app(inbox.store)) as base:
        yield base


def test_an_unusable_event_fails_with_its_error_and_the_others_land(inbox: Inbox) -> None:
    good = [report_event(f"good{i}", f"rep{i}", ACCOUNT) for i in range(3)]
    invalid = report_event("bad-object", "rep-bad", ACCOUNT, created_at="not a date")
    unreadable = {**report_event("bad-time", "rep-x", ACCOUNT), "created_at": "yesterday"}
    with serve_in_thread(create_app(inbox.store, applier=inbox.applier())) as base, httpx.Client() as client:
        for event in (good[0], invalid, good[1], unreadable, good[2]):
            assert deliver(client, base, event, API_KEY).status_code == 200
        wait_until(lambda: "pending" not in inbox.statuses().values(), what="every event settled")
    assert inbox.statuses() == {"good0": "processed", "good1": "processed", "good2": "processed",
                                "bad-object": "failed", "bad-time": "failed"}
    assert "invalid object: reports rep-bad: Report: created_at" in inbox.detail("bad-object")
    assert inbox.detail("bad-time").startswith("ValueError: ") and "yesterday" in inbox.detail("bad-time")
    assert query("SELECT id FROM checkr.reports ORDER BY id", path=inbox.warehouse) == [("rep0",), ("rep1",), ("rep2",)]


def test_events_of_a_connection_revoked_before_they_are_applied_are_dropped(inbox: Inbox, queued: str) -> None:
    with httpx.Client() as client:
        for i in range(2):
            assert deliver(client, queued, report_event(f"e{i}", f"rep{i}", ACCOUNT), API_KEY).status_code == 200
    assert inbox.statuses() == {"e0": "pending", "e1": "pending"}
    inbox.store.set_status("checkr", "cust-1", "revoked", "customer disconnected")
    report = inbox.applier().apply_pending()
    assert (report.applied, report.settled) == (0, 2)
    assert inbox.statuses() == {"e0": "dropped", "e1": "dropped"} and "cust-1 revoked" in inbox.detail("e0")
    assert not inbox.warehouse.exists()  # a revoked connection's data is never written again


def test_a_webhook_lands_a_record_a_sync_still_owes(inbox: Inbox, queued: str) -> None:
    wh = Warehouse(inbox.warehouse)
    wh.write_page(PageWrite("checkr", "cust-1", "candidates", "run-1", "a1", [],
                            [RejectedRecord("reports", "rep-owed", "created_at: invalid", "{}")]))
    assert [o.record_id for o in wh.owed_records()] == ["rep-owed"]
    with httpx.Client() as client:
        assert deliver(client, queued, report_event("e-owed", "rep-owed", ACCOUNT), API_KEY).status_code == 200
    assert inbox.applier().apply_pending().applied == 1
    assert wh.owed_records() == []  # landed by the webhook: owed no more


HOLD = """
import sys, time
from warehouse.loader import Warehouse
with Warehouse(sys.argv[1], purpose="a long write").transaction():
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_busy_warehouse_leaves_events_pending_naming_who_holds_it(inbox: Inbox, queued: str) -> None:
    Warehouse(inbox.warehouse)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(inbox.warehouse)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with httpx.Client() as client:
            assert deliver(client, queued, report_event("e-busy", "rep-busy", ACCOUNT), API_KEY).status_code == 200
        report = inbox.applier(lock_timeout=0.5).apply_pending()
        assert report.applied == 0 and report.pending == 1
        assert f"PID {holder.pid}" in inbox.detail("e-busy") and "a long write" in inbox.detail("e-busy")
        assert inbox.statuses() == {"e-busy": "pending"}
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert inbox.applier().apply_pending().applied == 1
    assert inbox.statuses() == {"e-busy": "processed"}


def test_webhooks_list_and_replay(inbox: Inbox, queued: str) -> None:
    with httpx.Client() as client:
        for i in range(3):
            assert deliver(client, queued, report_event(f"e{i}", f"rep{i}", ACCOUNT), API_KEY).status_code == 200
        bad = report_event("e-bad", "rep-bad", ACCOUNT, created_at="not a date")
        assert deliver(client, queued, bad, API_KEY).status_code == 200
    listed = inbox.cli("list", "--status", "pending")
    assert listed.returncode == 0, listed.stderr
    assert all(f"e{i}" in listed.stdout for i in range(3)) and "4 pending" in listed.stderr

    pending = inbox.cli("replay", "--pending")  # nobody applied them yet: now
    assert pending.returncode == 1, pending.stderr  # e-bad failed
    assert inbox.statuses() == {"e0": "processed", "e1": "processed", "e2": "processed", "e-bad": "failed"}
    failed = inbox.cli("list", "--status", "failed")
    assert "e-bad" in failed.stdout and "created_at" in failed.stdout and "replay --failed" in failed.stderr

    # an event that failed for a reason since fixed (here: said so by hand) applies on replay
    inbox.store.set_event_status("checkr", "e1", "failed", "disk full")
    again = inbox.cli("replay", "--failed")
    assert again.returncode == 1 and inbox.statuses()["e1"] == "processed"  # e-bad still fails
    assert inbox.statuses()["e-bad"] == "failed"
    one = inbox.cli("replay", "e0")  # a processed one, applied again: nothing changes
    assert one.returncode == 0, one.stderr
    assert query("SELECT count(*) FROM checkr.reports_history", path=inbox.warehouse) == [(3,)]
    unknown = inbox.cli("replay", "nope")
    assert unknown.returncode == 2 and "no such event" in unknown.stderr


def test_an_event_another_host_has_claimed_is_not_applied_twice(inbox: Inbox, queued: str) -> None:
    """Appliers on two hosts share one store: what one has claimed, the other leaves alone until the
    claim is settled or its lease runs out."""
    from connections.webhooks import inbox as inbox_events

    with httpx.Client() as client:
        for i in range(3):
            assert deliver(client, queued, report_event(f"h{i}", f"rep{i}", ACCOUNT), API_KEY).status_code == 200
    other_host = inbox_events.claim(inbox.store, limit=1, lease_seconds=300)  # the oldest, mid-batch elsewhere
    assert [r["event_id"] for r in other_host] == ["h0"]
    report = inbox.applier().apply_pending()
    assert report.applied == 2
    assert inbox.statuses() == {"h0": "pending", "h1": "processed", "h2": "processed"}
    assert query("SELECT id FROM checkr.reports ORDER BY id", path=inbox.warehouse) == [("rep1",), ("rep2",)]
    inbox_events.requeue(inbox.store, other_host, "the other host gave it back")  # its claim ends
    assert inbox.applier().apply_pending().applied == 1
    assert inbox.statuses() == {"h0": "processed", "h1": "processed", "h2": "processed"}
