"""After a sync the warehouse equals the sandbox's ground truth — full, then incremental after
the clock moves (deletes included), and re-running an unchanged source changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.conftest import SANDBOX_KEY, Env, without

CHECKR_TABLES = {"candidates": "candidates", "reports": "reports", "packages": "packages",
                 "invitations": "invitations", "invoices": "invoices"}
CLEARCHECKS_TABLES = {"reports": "reports", "packages": "packages", "invoices": "invoices"}


def _truth_ids(records: list[dict[str, Any]], key: str = "id") -> dict[str, dict[str, Any]]:
    return {str(r[key]): r for r in records}


def assert_checkr_equal(env: Env, sandbox: Any, integration: str, connection_id: str, account_id: str) -> None:
    schema = integration.replace("-", "_")
    truth = sandbox.export(SANDBOX_KEY[integration])[account_id]
    for table, key in CHECKR_TABLES.items():
        stored = env.raws(schema, table, connection_id)
        expected = {rid: without(r, "reports") for rid, r in _truth_ids(truth[key]).items()}
        assert stored.keys() == expected.keys(), f"{schema}.{table}: ids differ"
        assert stored == expected, f"{schema}.{table}: records differ"
    (account_raw,) = env.raws(schema, "accounts", connection_id).values()
    assert account_raw == truth["account"]


def assert_clearchecks_equal(env: Env, sandbox: Any, connection_id: str, account_id: str) -> None:
    truth = sandbox.export("clearchecks")[account_id]
    keys = {"reports": "report_key", "packages": "sku", "invoices": "id"}
    for table in CLEARCHECKS_TABLES:
        stored = env.raws("clearchecks", table, connection_id)
        expected = {str(r[keys[table]]): r for r in truth[table]}
        assert stored.keys() == expected.keys(), f"clearchecks.{table}: ids differ"
        assert stored == expected, f"clearchecks.{table}: records differ"
    (account_raw,) = env.raws("clearchecks", "accounts", connection_id).values()
    assert account_raw == truth["account"]


@pytest.mark.parametrize("integration", ["checkr", "checkr-partner-staging"])
def test_full_sync_equals_ground_truth_checkr(env: Env, sandbox: Any, integration: str) -> None:
    account_id = env.connect(sandbox, integration, "cust-1")
    results = env.sync_all(integration, "cust-1")
    assert all(r.ok for r in results), [(r.sync, r.error) for r in results]
    assert_checkr_equal(env, sandbox, integration, "cust-1", account_id)
    # re-running an unchanged source changes nothing
    again = env.sync_all(integration, "cust-1")
    assert all(r.ok for r in again)
    assert sum(r.added + r.updated + r.deleted for r in again) == 0
    history = env.rows(f"SELECT count(*) FROM {integration.replace('-', '_')}.reports_history")[0][0]
    assert history == len(env.raws(integration.replace("-", "_"), "reports", "cust-1"))


@pytest.mark.both_backends
def test_full_sync_equals_ground_truth_clearchecks(env: Env, sandbox: Any) -> None:
    account_id = env.connect(sandbox, "clearchecks", "cc-1")
    results = env.sync_all("clearchecks", "cc-1")
    assert all(r.ok for r in results), [(r.sync, r.error) for r in results]
    assert_clearchecks_equal(env, sandbox, "cc-1", account_id)
    statuses = dict(env.rows("SELECT status_code, any_value(status) FROM clearchecks.reports GROUP BY 1"))
    assert statuses.get("C") == "complete"
    assert all(v != "unknown" for v in statuses.values())


def test_incremental_sync_catches_up_after_the_clock_moves(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=60)
    account_id = env.connect(sandbox, "checkr", "cust-1")
    assert all(r.ok for r in env.sync_all("checkr", "cust-1"))
    pending_before = env.rows("SELECT count(*) FROM checkr.reports WHERE status = 'pending'")[0][0]
    sandbox.advance(days=10)
    env.hours_pass(1)  # the open reports are due for a re-poll again
    results = {r.sync: r for r in env.sync_all("checkr", "cust-1")}
    assert all(r.ok for r in results.values()), {k: r.error for k, r in results.items()}
    assert results["candidates"].mode == "incremental"
    assert_checkr_equal(env, sandbox, "checkr", "cust-1", account_id)
    if pending_before:
        assert results["reports"].updated > 0  # open reports were re-polled and completed
    deleted = env.rows("SELECT count(*) FROM checkr.packages WHERE _deleted_at IS NOT NULL")[0][0]
    truth_packages = {p["id"] for p in sandbox.export("checkr")[account_id]["packages"]}
    stored_all = {r[0] for r in env.rows("SELECT id FROM checkr.packages")}
    assert deleted == len(stored_all - truth_packages)


def test_unified_views_return_expected_rows(env: Env, sandbox: Any) -> None:
    env.connect(sandbox, "checkr", "cust-1")
    env.connect(sandbox, "clearchecks", "cc-1")
    for integ, cid in (("checkr", "cust-1"), ("clearchecks", "cc-1")):
        assert all(r.ok for r in env.sync_all(integ, cid))
    counts = dict(env.rows("SELECT provider, count(*) FROM unified.background_checks GROUP BY 1"))
    assert counts["checkr"] == env.rows("SELECT count(*) FROM checkr.reports")[0][0]
    assert counts["clearchecks"] == env.rows("SELECT count(*) FROM clearchecks.reports")[0][0]
    bad = env.rows("SELECT count(*) FROM unified.background_checks WHERE completed_at IS NOT NULL "
                   "AND (turnaround_hours IS NULL OR turnaround_hours < 0)")[0][0]
    assert bad == 0
    emails = env.rows("SELECT count(*) FROM unified.background_checks WHERE provider = 'checkr' "
                      "AND candidate_email IS NULL")[0][0]
    assert emails == 0  # every Checkr report joined its candidate
    spend = dict(env.rows("SELECT provider, sum(amount_cents) FROM unified.invoices GROUP BY 1"))
    assert spend["clearchecks"] > 0
    fresh = env.rows("SELECT count(*) FROM unified.sync_freshness WHERE connection_id IN ('cust-1', 'cc-1')")[0][0]
    assert fresh >= 8
    accounts = dict(env.rows("SELECT provider, count(*) FROM unified.accounts GROUP BY 1"))
    assert accounts == {"checkr": 1, "clearchecks": 1}
