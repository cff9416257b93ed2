"""The flows every integration has: test a connection, sync one now, re-read one sync from the start.

The flows of the actions each definition declares are generated from it (flows/action_flows.py).
"""

from __future__ import annotations

from prefect import flow

from connections.provider_check import CheckResult, check_connection
from flows.artifacts import artifact_key
from flows.sync_flows import sync_integration
from integrations.engine.results import SyncResult


@flow(name="test-connection", flow_run_name="{integration}-test-connection", retries=0)
def connection_test(integration: str, connection_id: str) -> CheckResult:
    """One cheap authenticated call with the stored credentials; fails the run when it is refused.

    A 401/403 marks the connection invalid; success re-activates an invalid one.
    """
    from prefect.artifacts import create_markdown_artifact

    from connections.store import open_store

    result = check_connection(open_store(), integration, connection_id)
    create_markdown_artifact(
        markdown=f"**{integration} / `{connection_id}`**: {'ok' if result.ok else 'FAILED'} — {result.detail}",
        key=artifact_key("test-connection", integration),
    )
    if not result.ok:
        raise RuntimeError(f"{integration} connection {connection_id!r} failed its test: {result.detail}")
    return result


@flow(name="sync-connection-now", flow_run_name="{integration}-sync-now", retries=0)
def sync_connection_now(integration: str, connection_id: str, syncs: list[str] | None = None) -> list[SyncResult]:
    """Run one connection's syncs now (all of them unless `syncs` names some), from their cursors."""
    return sync_integration(integration=integration, connections=[connection_id], syncs=syncs)


@flow(name="full-resync", flow_run_name="{integration}-full-resync", retries=0)
def full_resync(integration: str, connection_id: str, sync: str) -> list[SyncResult]:
    """Re-read one connection's sync from the start (cursor ignored; deletes applied on completion)."""
    return sync_integration(integration=integration, connections=[connection_id], syncs=[sync], full_refresh=True)


COMMON_ACTION_FLOWS = {
    "test_connection": connection_test,
    "sync_connection_now": sync_connection_now,
    "full_resync": full_resync,
}
