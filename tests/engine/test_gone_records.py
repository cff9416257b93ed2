"""Issue 12 item 5: a record the provider no longer has (404 when fetched again by id) is marked gone
— soft-deleted with the time and the reason — and the sync goes on; the run result counts it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.conftest import Env

TERMINAL = ("complete", "canceled")


def _open_reports(env: Env, connection_id: str) -> list[str]:
    return [r[0] for r in env.rows(
        f"SELECT id FROM checkr.reports WHERE connection_id = '{connection_id}' AND _deleted_at IS NULL "
        f"AND status NOT IN {TERMINAL} ORDER BY id")]


@pytest.mark.both_backends
def test_a_404_on_one_repolled_report_marks_it_gone_and_the_others_update(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=20, open_reports={"checkr": 6})
    env.connect(sandbox, "checkr", "c1")
    assert env.sync("checkr", "c1", "candidates").ok
    open_ids = _open_reports(env, "c1")
    assert len(open_ids) >= 4
    gone = open_ids[1]  # not the last one: the re-poll must go on after it
    sandbox.remove("checkr", "report", gone)
    sandbox.advance(days=5)  # every other open report completes meanwhile
    env.hours_pass(1)  # all of them due again on our side (repoll due: 15 min after a change)

    result = env.sync("checkr", "c1", "reports")
    assert result.ok, result.error
    assert result.gone == 1
    assert result.updated == len(open_ids) - 1
    assert _open_reports(env, "c1") == []
    ((deleted_at, reason, status),) = env.rows(
        f"SELECT _deleted_at, _deleted_reason, status FROM checkr.reports WHERE id = '{gone}'")
    assert deleted_at is not None and status not in TERMINAL  # its last known version is kept
    assert "404" in reason and "/reports/" in reason
    history = env.rows(f"SELECT _change FROM checkr.reports_history WHERE id = '{gone}' ORDER BY _valid_from")
    assert [c for (c,) in history][-1] == "delete"

    env.hours_pass(1)  # due again, were it still open
    again = env.sync("checkr", "c1", "reports")  # a gone record is not asked for again
    assert again.ok and again.gone == 0 and again.requests == 0


def test_a_full_sync_says_why_it_marked_a_record_deleted(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=20)
    account = env.connect(sandbox, "checkr", "c1")
    assert env.sync("checkr", "c1", "packages").ok
    victim = next(p["id"] for p in sandbox.export("checkr", account)[account]["packages"])
    sandbox.remove("checkr", "package", victim)
    result = env.sync("checkr", "c1", "packages")
    assert result.ok and result.deleted == 1
    ((reason,),) = env.rows(f"SELECT _deleted_reason FROM checkr.packages WHERE id = '{victim}'")
    assert reason == "not listed by a full sync"
    live = env.rows("SELECT count(*) FROM checkr.packages WHERE _deleted_reason IS NOT NULL AND _deleted_at IS NULL")
    assert live == [(0,)]


def test_a_clearchecks_report_that_vanished_is_marked_deleted_by_the_next_reports_sync(
    env: Env, fresh_sandbox: Any
) -> None:
    sandbox = fresh_sandbox(scale=20, rate_limits={"clearchecks": 6000})
    account = env.connect(sandbox, "clearchecks", "cc-1")
    assert env.sync("clearchecks", "cc-1", "reports").ok
    victim = sandbox.export("clearchecks", account)[account]["reports"][3]["report_key"]
    sandbox.remove("clearchecks", "report", victim)
    result = env.sync("clearchecks", "cc-1", "reports")
    assert result.ok and result.deleted == 1
    live = {r[0] for r in env.rows("SELECT report_key FROM clearchecks.reports WHERE _deleted_at IS NULL")}
    assert live == sandbox.truth("clearchecks", account).ids("reports")
