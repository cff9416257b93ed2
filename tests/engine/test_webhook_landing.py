"""A report change delivered by webhook lands in the warehouse without a sync run."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest

from tests.engine.conftest import Env


def _completion_processed(env: Env, report_ids: set[str]) -> bool:
    """A report.completed event for one of `report_ids` has been handled (so its upsert is done)."""
    for e in env.store.events(status="processed", integration="checkr"):
        if e["event_type"] == "report.completed":
            body = orjson.loads(env.store.event_body("checkr", e["event_id"]))
            if body["data"]["object"]["id"] in report_ids:
                return True
    return False


@pytest.mark.both_backends
def test_webhook_delivered_report_change_lands(env: Env, fresh_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from common.asgi_thread import serve_in_thread
    from connections.web.app import create_app
    from flows.webhook_applier import WebhookApplier

    monkeypatch.setenv("SCREENSYNC_WAREHOUSE", str(env.db))
    sandbox = fresh_sandbox(scale=200)
    env.connect(sandbox, "checkr", "cust-1")
    assert all(r.ok for r in env.sync_all("checkr", "cust-1"))
    pending = dict(env.rows("SELECT id, status FROM checkr.reports WHERE status = 'pending'"))
    runs_before = env.rows("SELECT count(*) FROM _screensync.sync_runs")[0][0]
    with serve_in_thread(create_app(env.store, applier=WebhookApplier(env.store, env.db))) as web:
        httpx.put(f"{sandbox.info['control_url']}/webhooks",
                  json={"url": f"{web}/webhooks/checkr", "provider": "checkr"}).raise_for_status()
        sandbox.advance(days=20)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _completion_processed(env, set(pending)):
            time.sleep(0.2)
    events = env.store.events(integration="checkr")
    assert any(e["event_type"] == "report.completed" and e["status"] == "processed" for e in events), events[:5]
    now = dict(env.rows("SELECT id, status FROM checkr.reports"))
    completed = [rid for rid in pending if now.get(rid) == "complete"]
    assert completed, "no pending report was completed by a webhook"
    history = env.rows(f"SELECT count(*) FROM checkr.reports_history WHERE id = '{completed[0]}'")[0][0]
    assert history == 2  # pending, then complete
    assert env.rows("SELECT count(*) FROM _screensync.sync_runs")[0][0] == runs_before  # no sync ran
