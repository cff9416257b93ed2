"""Every synced row version carries when the provider served it (its `Date`), not when we wrote it:
that is what a late webhook's time is compared with (warehouse/upsert.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.conftest import Env


@pytest.mark.both_backends
def test_synced_rows_carry_the_time_the_provider_served_them(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=40, open_reports={"checkr": 5})
    env.connect(sandbox, "checkr", "cust-1")
    first = sandbox.clock.now()
    assert env.sync("checkr", "cust-1", "candidates").ok
    assert env.rows("SELECT DISTINCT _observed_at FROM checkr.candidates") == [(first,)]
    assert env.rows("SELECT DISTINCT _observed_at FROM checkr.reports") == [(first,)]
    open_reports = {r for (r,) in env.rows("SELECT id FROM checkr.reports WHERE status = 'pending'")}
    assert open_reports
    sandbox.advance(days=3)
    env.hours_pass(1)  # and on our side: the open reports are due again (repoll due: 15 min after a change)
    assert env.sync("checkr", "cust-1", "reports").ok  # the re-poll fetches the open ones again, one by one
    later = dict(env.rows("SELECT id, _observed_at FROM checkr.reports"))
    assert {later[r] for r in open_reports} == {sandbox.clock.now()}
    assert {t for r, t in later.items() if r not in open_reports} == {first}
