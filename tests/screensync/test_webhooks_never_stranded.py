"""Issue 12, defects 2 and 3, met as a user meets them: `screensync serve-web` in its own process
receives signed Checkr deliveries; every acknowledged event reaches the warehouse by itself, and
an older delivery never rolls a newer version back.

(Before the webhook applier these failed: concurrent deliveries left events pending with "Unique
file handle conflict", a held warehouse stranded them for good, and a late `report.created`
turned a complete report back to pending.)
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from connections.sqlite_store import SqliteConnectionStore
from tests.connections.store_helpers import add_connection
from tests.support.webhooks import cli_env, deliver, report_event, serve_web, wait_until
from warehouse.read import query

ACCOUNT = "acct0000000000000000cafe"
API_KEY = "sk_test_direct_customer_key_1"


@dataclass
class Site:
    store: SqliteConnectionStore
    warehouse: Path
    env: dict[str, str]
    log: Path

    def statuses(self) -> dict[str, str]:
        return {e["event_id"]: e["status"] for e in self.store.events()}

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        return query(sql, path=self.warehouse)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    key = Fernet.generate_key().decode()
    store = SqliteConnectionStore(tmp_path / "connections.sqlite", keys=[key])
    add_connection(store, "cust-1", "api_key", ACCOUNT, API_KEY)
    warehouse = tmp_path / "warehouse.duckdb"
    return Site(store, warehouse, cli_env(store.path, key, warehouse), tmp_path / "serve-web.log")


def test_563_concurrent_signed_deliveries_all_land(site: Site) -> None:
    events = [report_event(f"evt{i:04d}", f"rep{i:04d}", ACCOUNT) for i in range(563)]
    with serve_web(site.env, site.log) as base, httpx.Client(timeout=60) as client, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda e: deliver(client, base, e, API_KEY).status_code, events))
        assert answers == [200] * 563
        wait_until(lambda: not site.store.events(status="pending"), timeout=90, what="the inbox to drain")
    assert set(site.statuses().values()) == {"processed"}
    assert site.rows("SELECT count(*) FROM checkr.reports WHERE connection_id = 'cust-1'") == [(563,)]
    # applied in batches, not one file open and checkpoint per event (which grew the file ~0.5 MB each)
    # (measured 12-20 MB batched; the change feed's own small row groups per write add 2-8 MB until a vacuum)
    assert site.warehouse.stat().st_size < 32 * 1024 * 1024


HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])   # an analyst's session holding the warehouse open
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


def test_deliveries_while_the_warehouse_is_held_land_once_it_is_free(site: Site) -> None:
    with serve_web(site.env, site.log) as base, httpx.Client(timeout=60) as client:
        assert deliver(client, base, report_event("evt-first", "rep-first", ACCOUNT), API_KEY).status_code == 200
        wait_until(lambda: site.statuses() == {"evt-first": "processed"}, what="the first event")  # file exists
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(site.warehouse)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
            for i in range(6):
                assert deliver(client, base, report_event(f"evt{i}", f"rep{i}", ACCOUNT), API_KEY).status_code == 200

            def waiting_named() -> bool:
                rows = site.store.events(status="pending")
                return len(rows) == 6 and all(f"PID {holder.pid}" in (r["detail"] or "") for r in rows)

            wait_until(waiting_named, what="pending events naming the process that holds the warehouse")
        finally:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(timeout=30)
        # nobody runs anything: the web app's applier retries on its own
        wait_until(lambda: set(site.statuses().values()) == {"processed"}, what="the held events to land")
    assert site.rows("SELECT count(*) FROM checkr.reports") == [(7,)]


def test_an_older_delivery_never_rolls_a_report_back(site: Site) -> None:
    completed = report_event("e3", "rep-1", ACCOUNT, etype="report.completed", status="complete",
                             at="2026-06-05T09:00:00Z")
    created = report_event("e1", "rep-1", ACCOUNT, etype="report.created", status="pending",
                           at="2026-06-01T09:00:00Z")
    updated = report_event("e2", "rep-1", ACCOUNT, etype="report.updated", status="pending",
                           at="2026-06-03T09:00:00Z", estimated_completion_time="2026-06-06T00:00:00Z")
    with serve_web(site.env, site.log) as base, httpx.Client(timeout=60) as client:
        for event in (completed, created, updated):  # the newest first, the older ones late
            assert deliver(client, base, event, API_KEY).status_code == 200
            wait_until(lambda e=event: site.statuses().get(e["id"]) == "processed", what=f"event {event['id']}")
    assert site.rows("SELECT status, result FROM checkr.reports WHERE id = 'rep-1'") == [("complete", "clear")]
    history = site.rows("SELECT status, _change, _run_id FROM checkr.reports_history WHERE id = 'rep-1' "
                        "ORDER BY _observed_at")
    assert history == [("pending", "late", "webhook:e1"), ("pending", "late", "webhook:e2"),
                       ("complete", "insert", "webhook:e3")]


def _invitation_event(event_id: str, etype: str, at: str, *, deleted_at: str | None) -> dict[str, object]:
    """A Checkr invitation event, the invitation as it was at `at` (the shape of Checkr's objects)."""
    invitation = {
        "id": "inv-1", "object": "invitation", "uri": "/v1/invitations/inv-1", "status": "pending",
        "invitation_url": "https://apply.checkr.com/invite/inv-1", "completed_at": None,
        "deleted_at": deleted_at, "expires_at": "2026-06-10T00:00:00Z", "package": "driver_pro",
        "candidate_id": "cand-1", "report_id": None, "created_at": "2026-06-01T00:00:00Z", "tags": [],
        "archived": False, "archived_info": None,
    }
    return {"id": event_id, "object": "event", "type": etype, "created_at": at, "webhook_url": "https://x.test/wh",
            "account_id": ACCOUNT, "data": {"object": invitation}}


def test_a_cancelled_invitation_lands_deleted_and_an_older_delivery_does_not_revive_it(site: Site) -> None:
    """`invitation.deleted` carries the invitation with `deleted_at` set (definition: `deleted_field`):
    stored soft-deleted, with the reason, even when the warehouse never held it; the `invitation.created`
    that arrives after it, older, stays in history only."""
    deleted = _invitation_event("i2", "invitation.deleted", "2026-06-02T00:00:00Z", deleted_at="2026-06-02T00:00:00Z")
    created = _invitation_event("i1", "invitation.created", "2026-06-01T00:00:00Z", deleted_at=None)
    with serve_web(site.env, site.log) as base, httpx.Client(timeout=60) as client:
        for event in (deleted, created):
            assert deliver(client, base, event, API_KEY).status_code == 200
            wait_until(lambda e=event: site.statuses().get(e["id"]) == "processed", what=f"event {event['id']}")
    assert site.rows("SELECT _deleted_at IS NOT NULL, _deleted_reason FROM checkr.invitations WHERE id = 'inv-1'") == [
        (True, "deleted at the provider (deleted_at is set)")]
    history = site.rows("SELECT _change, _run_id FROM checkr.invitations_history WHERE id = 'inv-1' ORDER BY _observed_at")
    assert ("late", "webhook:i1") in history
