"""A fan-out with one revoked connection among good ones: the good ones land, the run ends Failed naming the bad one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flow_helpers import FlowEnv, artifacts_for, read_rows

from flows.sync_flows import sync_integration


def test_a_connection_revoked_at_the_provider_does_not_stop_the_others(
    flow_env: FlowEnv, sandboxes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cc = sandboxes.info["clearchecks"]
    flow_env.add("clearchecks", "good-1", cc["accounts"][0]["api_token"], cc["base_url"])
    # still active here, but the customer revoked the token in ClearChecks' console
    flow_env.add("clearchecks", "revoked-1", "token-the-customer-revoked-0000", cc["base_url"])
    flow_env.add("clearchecks", "good-2", cc["accounts"][1]["api_token"], cc["base_url"])

    state = sync_integration(integration="clearchecks", syncs=["account", "packages"], return_state=True)

    assert state.is_failed()
    assert "revoked-1/account" in state.message and "revoked-1/packages" in state.message
    assert "good-1" not in state.message and "good-2" not in state.message
    landed = read_rows(
        flow_env.warehouse, "select connection_id, count(*) from clearchecks.packages group by 1 order by 1"
    )
    assert [c for c, n in landed if n > 0] == ["good-1", "good-2"]
    accounts = read_rows(flow_env.warehouse, "select distinct connection_id from clearchecks.accounts order by 1")
    assert accounts == [("good-1",), ("good-2",)]
    assert flow_env.store.get("clearchecks", "revoked-1").status == "invalid"  # skipped until reconnected

    artifacts = {a.key: a for a in artifacts_for(state.state_details.flow_run_id)}
    table = artifacts["sync-clearchecks"].data
    rows: list[dict[str, Any]] = table if isinstance(table, list) else json.loads(table)
    by_pair = {(r["connection"], r["sync"]): r for r in rows}
    assert len(by_pair) == 6
    assert by_pair[("good-1", "packages")]["status"] == "success" and by_pair[("good-1", "packages")]["added"] > 0
    assert by_pair[("good-2", "account")]["status"] == "success"
    assert by_pair[("revoked-1", "account")]["status"] == "failed"
    failures = artifacts["sync-clearchecks-failures"].data
    assert "revoked-1" in failures and "Reconnect" in failures
    assert "good-1" not in failures and "token-the-customer" not in failures

    logs = caplog.text
    assert "connection=good-1 sync=packages" in logs and "connection=revoked-1 sync=account" in logs
    for secret in ("token-the-customer-revoked-0000", cc["accounts"][0]["api_token"], cc["accounts"][1]["api_token"]):
        assert secret not in logs


def test_the_next_run_skips_the_invalid_connection_and_succeeds(flow_env: FlowEnv, sandboxes: Any) -> None:
    cc = sandboxes.info["clearchecks"]
    flow_env.add("clearchecks", "good-1", cc["accounts"][0]["api_token"], cc["base_url"])
    flow_env.add("clearchecks", "gone-1", cc["accounts"][1]["api_token"], cc["base_url"])
    flow_env.store.set_status("clearchecks", "gone-1", "revoked", "customer disconnected")

    state = sync_integration(integration="clearchecks", syncs=["account"], return_state=True)

    assert state.is_completed()
    results = state.result()
    assert [(r.connection_id, r.sync, r.status.value) for r in results] == [("good-1", "account", "success")]

    named = sync_integration(integration="clearchecks", connections=["gone-1"], syncs=["account"], return_state=True)
    assert named.is_failed() and "gone-1/account" in named.message
