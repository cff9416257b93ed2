"""Checkr's reports re-poll is due-based (issue 16 item 1), as its definition.yaml declares: not before
the report's own `estimated_completion_time`, then 15 min, 30 min, 1 h (capped) between checks that
find nothing new, started over by a change seen anywhere, most overdue first within the budget.
Real sandbox over loopback HTTP, real DuckDB file; our clock is moved with `Env.hours_pass`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.engine.conftest import Env

OPEN = "SELECT id FROM checkr.reports WHERE status NOT IN ('complete', 'canceled') ORDER BY id"


def _webhook_version(env: Env, sandbox: Any, report_id: str, **changes: Any) -> None:
    """A `report.updated` event (at the provider's time) carrying the stored report with `changes`, landed as the applier lands it."""
    import orjson

    from integrations.engine.webhook_sink import event_records
    from warehouse.loader import Warehouse
    from warehouse.records import ObjectWrite

    sandbox.advance(seconds=30)  # after what was fetched before, and before what is fetched next
    ((raw,),) = env.rows(f"SELECT _raw FROM checkr.reports WHERE id = '{report_id}'")
    report = {**orjson.loads(raw), **changes}
    event = {"id": f"evt_{report_id}", "type": "report.updated", "account_id": "acct",
             "created_at": sandbox.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"), "data": {"object": report}}
    records, rejects = event_records("checkr", event, default_time=datetime.now(UTC))
    assert records and not rejects
    with Warehouse(env.db) as wh:
        wh.write_objects([ObjectWrite("checkr", "c1", records, run_id=f"webhook:evt_{report_id}")])
    sandbox.advance(seconds=30)


def test_checkr_reports_are_rechecked_when_due_with_growing_capped_intervals(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=20, open_reports={"checkr": 6})
    env.connect(sandbox, "checkr", "c1")
    assert env.sync("checkr", "c1", "candidates").ok
    open_ids = [r for (r,) in env.rows(OPEN)]
    assert len(open_ids) >= 4
    assert env.sync("checkr", "c1", "reports").requests == 0  # just listed: nothing due for 15 min
    env.hours_pass(0.3)
    assert env.sync("checkr", "c1", "reports").requests == len(open_ids)  # past their estimate, 15 min on
    assert env.sync("checkr", "c1", "reports").requests == 0  # just checked
    env.hours_pass(0.3)
    assert env.sync("checkr", "c1", "reports").requests == len(open_ids)  # 15 min after the first check
    env.hours_pass(0.3)
    assert env.sync("checkr", "c1", "reports").requests == 0  # nothing new twice: 30 min now
    env.hours_pass(0.3)
    assert env.sync("checkr", "c1", "reports").requests == len(open_ids)
    for _ in range(3):  # then 1 h, and never longer (the last interval repeats)
        env.hours_pass(0.9)
        assert env.sync("checkr", "c1", "reports").requests == 0
        env.hours_pass(0.2)
        assert env.sync("checkr", "c1", "reports").requests == len(open_ids)


def test_not_before_the_estimate_and_a_change_starts_the_intervals_over(env: Env, fresh_sandbox: Any) -> None:
    from warehouse.loader import Warehouse

    sandbox = fresh_sandbox(scale=20, open_reports={"checkr": 6})
    env.connect(sandbox, "checkr", "c1")
    assert env.sync("checkr", "c1", "candidates").ok
    later, changed, *rest = [r for (r,) in env.rows(OPEN)]
    env.hours_pass(0.3)
    assert env.sync("checkr", "c1", "reports").requests == 2 + len(rest)
    for _ in range(2):  # nothing new twice: the next checks are 30 min, then 1 h apart
        env.hours_pass(0.6)
        assert env.sync("checkr", "c1", "reports").requests == 2 + len(rest)
    eta = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _webhook_version(env, sandbox, later, estimated_completion_time=eta)  # Checkr re-estimated it: 3 h from now
    _webhook_version(env, sandbox, changed, adjudication="engaged")  # any other change seen by a webhook
    env.hours_pass(0.3)  # 15 min: only the changed one, whose intervals started over
    assert env.sync("checkr", "c1", "reports").requests == 1
    env.hours_pass(0.8)  # 1 h 6 min after the others' check, 48 min after the changed one's
    assert env.sync("checkr", "c1", "reports").requests == len(rest) + 1  # not the re-estimated one
    env.hours_pass(2)  # (our hours: the provider's estimate does not move with them)
    assert env.sync("checkr", "c1", "reports").requests == 1 + len(rest)  # still before the new estimate
    with Warehouse(env.db) as wh:  # ...until it passes
        wh.execute("UPDATE checkr.reports SET estimated_completion_time = estimated_completion_time - INTERVAL 3 HOUR "
                   f"WHERE id = '{later}'")
    assert env.sync("checkr", "c1", "reports").requests == 1


def test_most_overdue_first_within_the_budget(env: Env, fresh_sandbox: Any) -> None:
    from integrations.engine.due import due_arguments
    from integrations.engine.registry import get_integration
    from warehouse.loader import TableTarget, Warehouse

    sandbox = fresh_sandbox(scale=20, open_reports={"checkr": 6})
    env.connect(sandbox, "checkr", "c1")
    assert env.sync("checkr", "c1", "candidates").ok
    first, second, *rest = [r for (r,) in env.rows(OPEN)]
    env.hours_pass(0.5)
    _webhook_version(env, sandbox, first, adjudication="engaged")  # changed now: due last
    env.hours_pass(0.5)
    _webhook_version(env, sandbox, second, adjudication="engaged")  # changed later still: not due yet
    env.hours_pass(0.2)
    integ = get_integration("checkr")
    sync = integ.definition.sync("reports")
    assert sync.repoll is not None and sync.repoll.due is not None
    kw = due_arguments(sync.repoll.due, sync, integ.definition.rate_limit)
    assert kw["limit"] == 3600  # 0.2 x 1,200/min x the 15 minutes between runs
    table = TableTarget("checkr", "reports", integ.model("Report"), "id")
    with Warehouse(env.db) as wh:
        due = wh.due_record_ids(table, integration="checkr", connection_id="c1", state_field="status",
                                terminal=sync.repoll.terminal_states, **{**kw, "limit": len(rest)})
    assert sorted(due) == sorted(rest) and first not in due  # the budget cut the least overdue
    with Warehouse(env.db) as wh:
        due = wh.due_record_ids(table, integration="checkr", connection_id="c1", state_field="status",
                                terminal=sync.repoll.terminal_states, **kw)
    assert due[-1] == first and second not in due
