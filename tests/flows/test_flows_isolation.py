"""A fan-out with one revoked connection among good ones: the good ones land, the run ends Failed naming the bad one."""

from __future__ import annotations

import json
from typing import Any

from flow_helpers import FlowEnv, artifacts_for, read_rows

from flows.sync_flows import sync_integration


def test_one_revoked_connection_does_not_stop_the_others(flow_env: FlowEnv, sandbox: Any) -> None:
    checkr = sandbox.info["checkr"]
    keys = [a["api_key"] for a in checkr["accounts"]]
    flow_env.add("checkr", "good-1", keys[0], checkr["base_url"])
    flow_env.add("checkr", "revoked-1", keys[1 % len(keys)], checkr["base_url"])
    flow_env.add("checkr", "good-2", keys[-1], checkr["base_url"])
    flow_env.store.set_status("checkr", "revoked-1", "revoked", "customer deauthorized")

    state = sync_integration(integration="checkr", models=["account", "packages"], return_state=True)

    assert state.is_failed()
    assert "revoked-1/account" in state.message and "revoked-1/packages" in state.message
    assert "good-1" not in state.message and "good-2" not in state.message
    landed = read_rows(flow_env.warehouse, "select distinct connection_id from checkr.accounts order by 1")
    assert landed == [("good-1",), ("good-2",)]
    packages = read_rows(
        flow_env.warehouse, "select connection_id, count(*) from checkr.packages group by 1 order by 1"
    )
    assert [c for c, n in packages if n > 0] == ["good-1", "good-2"]

    artifacts = {a.key: a for a in artifacts_for(state.state_details.flow_run_id)}
    table = artifacts["sync-checkr"]
    rows: list[dict[str, Any]] = table.data if isinstance(table.data, list) else json.loads(table.data)
    by_pair = {(r["connection"], r["sync"]): r for r in rows}
    assert by_pair[("good-1", "account")]["status"] == "success"
    assert by_pair[("good-1", "packages")]["added"] > 0
    assert by_pair[("revoked-1", "account")]["status"] == "failed"
    failures = artifacts["sync-checkr-failures"].data
    assert "revoked-1" in failures and "Reconnect" in failures
    assert "good-1" not in failures
