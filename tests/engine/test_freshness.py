"""Freshness you can see (issue 16 item 4): the last webhook arrival and the oldest overdue open record
per connection, in `unified.sync_freshness` and `screensync status` (real sandbox sync, real signed
webhook delivery through the web app and the applier, a real DuckDB file and DuckLake)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from screensync.status import collect_status
from tests.engine.conftest import Env
from tests.support.webhooks import deliver, report_event, wait_until


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.both_backends
def test_webhook_arrival_and_overdue_open_reports_show_per_connection(env: Env, fresh_sandbox: Any) -> None:
    from common.asgi_thread import serve_in_thread
    from connections.web.app import create_app
    from flows.webhook_applier import WebhookApplier

    sandbox = fresh_sandbox(scale=20, open_reports={"checkr": 4})
    account = env.connect(sandbox, "checkr", "c1")
    key = sandbox.info["checkr"]["accounts"][0]["api_key"]
    assert all(r.ok for r in env.sync_all("checkr", "c1"))
    open_reports = dict(env.rows("SELECT id, estimated_completion_time FROM checkr.reports "
                                 "WHERE status NOT IN ('complete', 'canceled')"))
    assert len(open_reports) >= 2
    # the sandbox's clock starts in June 2026, before this machine's: every open report is past its estimate
    ((last_webhook, overdue, oldest_hours),) = env.rows(
        "SELECT DISTINCT last_webhook_at, overdue_records, oldest_overdue_hours FROM unified.sync_freshness "
        "WHERE connection_id = 'c1'")  # per connection: the same on each of its syncs' rows
    assert (last_webhook, overdue) == (None, len(open_reports))

    rid = min(open_reports, key=lambda r: open_reports[r])  # the oldest overdue one: a webhook pushes it out
    (seen,) = env.rows(f"SELECT _observed_at FROM checkr.reports WHERE id = '{rid}'")[0]
    now = datetime.now(UTC)
    event = report_event("e-eta", rid, account, etype="report.updated", status="pending",
                         at=_iso(seen + timedelta(minutes=1)), estimated_completion_time=_iso(now + timedelta(days=1)))
    with serve_in_thread(create_app(env.store, applier=WebhookApplier(env.store, env.db))) as web, httpx.Client() as c:
        assert deliver(c, web, event, key).status_code == 200
        wait_until(lambda: not env.store.events(status="pending", integration="checkr"), what="the event applied")

    rest = [eta for r, eta in open_reports.items() if r != rid]
    expected_hours = (now - min(rest)).total_seconds() / 3600
    ((last_webhook, overdue, oldest_hours),) = env.rows(
        "SELECT DISTINCT last_webhook_at, overdue_records, oldest_overdue_hours FROM unified.sync_freshness "
        "WHERE integration = 'checkr' AND connection_id = 'c1'")
    assert last_webhook is not None and abs(last_webhook - now) < timedelta(minutes=2)
    assert overdue == len(rest) and abs(oldest_hours - expected_hours) < 0.2
    assert rid not in {r for (r,) in env.rows("SELECT record_id FROM unified.open_records WHERE due_at < now()")}

    rows = [r for r in collect_status(warehouse=env.db, connections=env.store.list(), scheduled=None)
            if r.connection_id == "c1"]
    assert rows and all(r.overdue_records == len(rest) and r.last_webhook_at == last_webhook for r in rows)
    assert all(r.oldest_overdue_seconds and abs(r.oldest_overdue_seconds / 3600 - expected_hours) < 0.2 for r in rows)
