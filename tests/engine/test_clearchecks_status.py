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
