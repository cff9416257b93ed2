"""ClearChecks incremental (issue 16 item 2): between full lists, only open reports are asked for
their status by report_key, merged over the stored report (real sandbox over loopback HTTP)."""

from __future__ import annotations

from typing import Any

import orjson

from tests.engine.conftest import Env

OPEN = "SELECT id FROM clearchecks.reports WHERE status_code NOT IN ('C', 'X') ORDER BY id"


def test_status_repoll_asks_only_open_reports_and_lands_what_the_list_would(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=30, open_reports={"clearchecks": 8}, rate_limits={"clearchecks": 6000})
    account = env.connect(sandbox, "clearchecks", "cc-1")
    assert env.sync("clearchecks", "cc-1", "reports").ok
    total = env.rows("SELECT count(*) FROM clearchecks.reports")[0][0]
    open_ids = [r for (r,) in env.rows(OPEN)]
    assert 0 < len(open_ids) < total
    sandbox.advance(days=10)  # open reports move on
    # just listed: nothing is due for an hour (the sandbox's orders are older than their 3 days already)
    assert env.sync("clearchecks", "cc-1", "report_status").requests == 0
    env.hours_pass(2)

    status = env.sync("clearchecks", "cc-1", "report_status")
    assert status.ok, status.error
    assert status.requests == len(open_ids)  # one per open report, none for the closed ones
    assert status.updated >= 1 and status.added == 0
    truth = {r["report_key"]: r["status"] for r in sandbox.export("clearchecks", account)[account]["reports"]}
    stored = dict(env.rows("SELECT id, status_code FROM clearchecks.reports"))
    assert {r: stored[r] for r in open_ids} == {r: truth[r] for r in open_ids}
    # merged over the stored report: nothing else was lost
    assert env.rows("SELECT count(*) FROM clearchecks.reports WHERE applicant_email IS NULL OR order_date IS NULL "
                    "OR report_sku IS NULL") == [(0,)]
    merged = {r: orjson.loads(raw) for r, raw in env.rows("SELECT id, _raw FROM clearchecks.reports")}
    # the next full list differs only in what the status does not carry: the completion date
    again = env.sync("clearchecks", "cc-1", "reports")
    assert again.ok and again.added == 0
    listed = {r: orjson.loads(raw) for r, raw in env.rows("SELECT id, _raw FROM clearchecks.reports")}
    changed = {r for r in listed if listed[r] != merged[r]}
    assert len(changed) == again.updated
    for r in changed:
        assert {**listed[r], "completed_date": None} == {**merged[r], "completed_date": None}
        assert merged[r]["completed_date"] is None and listed[r]["completed_date"] is not None


def test_status_checks_back_off_while_nothing_changes_and_start_over_on_a_change(
    env: Env, fresh_sandbox: Any
) -> None:
    sandbox = fresh_sandbox(scale=30, open_reports={"clearchecks": 8}, rate_limits={"clearchecks": 6000})
    env.connect(sandbox, "clearchecks", "cc-1")
    assert env.sync("clearchecks", "cc-1", "reports").ok
    open_ids = [r for (r,) in env.rows(OPEN)]
    env.hours_pass(2)
    first = env.sync("clearchecks", "cc-1", "report_status")  # nothing moved at the provider: all unchanged
    assert first.requests == len(open_ids) and first.updated == 0
    assert env.sync("clearchecks", "cc-1", "report_status").requests == 0  # just checked
    env.hours_pass(1.5)
    assert env.sync("clearchecks", "cc-1", "report_status").requests == len(open_ids)  # 1 h after a check
    sandbox.advance(days=10)
    assert env.sync("clearchecks", "cc-1", "reports").updated >= 1  # the list sees changes: those start over
    changed = {r for (r,) in env.rows(
        "SELECT r.id FROM clearchecks.reports r JOIN _screensync.due_checks d ON d.record_id = r.id "
        "WHERE r._last_modified_at > d.checked_at AND r.status_code NOT IN ('C', 'X')")}
    still_open = {r for (r,) in env.rows(OPEN)}
    env.hours_pass(1.5)
    # unchanged twice in a row: they wait 2 h now; the changed ones 1 h
    assert env.sync("clearchecks", "cc-1", "report_status").requests == len(changed)
    env.hours_pass(1)  # 2.5 h since the unchanged ones' check, 1 h since the changed ones' first one
    assert env.sync("clearchecks", "cc-1", "report_status").requests == len(still_open)


def test_a_run_spends_at_most_its_share_of_the_rate_budget() -> None:
    from integrations.engine.definition import DueConfig, RateLimitConfig
    from integrations.engine.due import budget
    from integrations.engine.registry import get_integration

    sync = get_integration("clearchecks").definition.sync("report_status")
    assert budget(DueConfig(budget_share=0.2), sync, RateLimitConfig(requests=60, per_seconds=60)) == 360
    assert budget(DueConfig(budget_share=0.05), sync, RateLimitConfig(requests=1200, per_seconds=60)) == 1800


def test_flowing_webhooks_push_checks_out_and_quiet_ones_pull_them_back(env: Env, fresh_sandbox: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from warehouse.loader import ObjectWrite, Warehouse

    sandbox = fresh_sandbox(scale=30, open_reports={"clearchecks": 8}, rate_limits={"clearchecks": 6000})
    env.connect(sandbox, "clearchecks", "cc-1")
    assert env.sync("clearchecks", "cc-1", "reports").ok
    open_ids = [r for (r,) in env.rows(OPEN)]
    env.hours_pass(2)
    assert env.sync("clearchecks", "cc-1", "report_status").requests == len(open_ids)
    env.hours_pass(1.5)
    with Warehouse(env.db) as wh:  # a webhook for this connection arrived ten minutes ago (the applier's write)
        wh.write_objects([ObjectWrite("clearchecks", "cc-1", [], received_at=datetime.now(UTC) - timedelta(minutes=10),
                                      events=1)])
    assert env.sync("clearchecks", "cc-1", "report_status").requests == 0  # 1 h x 4 while webhooks flow
    env.hours_pass(1)  # ...and then none for over an hour: treated as having none
    assert env.sync("clearchecks", "cc-1", "report_status").requests == len(open_ids)
