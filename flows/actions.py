"""On-demand action flows: one flow per declared action, with a pydantic-typed `request` parameter.

Prefect renders a typed parameter as a form in the UI and validates it before the flow body
runs, so a bad form is rejected without a request. The work is `integrations.engine.actions.
run_action`; these flows only add the artifact, the action log row and the typed return value.
Flow functions are named `<family>_<action>` (`family`: the integration a definition extends,
or its own name), which is how flows/deployments.py finds the flow for each declared action.
Action flows never retry: a create that timed out may have succeeded at the provider.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel

from connections.provider_check import CheckResult, check_connection
from flows.action_log import append_action_log
from flows.artifacts import artifact_key, publish_action_artifact
from flows.sync_flows import sync_integration
from integrations.checkr import actions as checkr
from integrations.checkr.models import Candidate, Invitation
from integrations.clearchecks import actions as clearchecks
from integrations.engine.actions import ActionFailed, run_action
from integrations.engine.results import SyncResult


def _run(integration: str, connection_id: str, action: str, request: BaseModel) -> Any:
    from connections.store import open_store

    logger = get_run_logger()
    logger.info("connection=%s action=%s: starting", connection_id, action)
    try:
        output, record = run_action(integration, connection_id, action, request, store=open_store())
    except ActionFailed as exc:
        publish_action_artifact(exc.record)
        append_action_log(exc.record)
        logger.error("connection=%s action=%s: %s", connection_id, action, exc)
        raise
    publish_action_artifact(record)
    append_action_log(record)
    logger.info("connection=%s action=%s: done in %.2fs", connection_id, action, record.duration_s)
    return output


# --- checkr and checkr-partner-staging -------------------------------------------------------


@flow(name="checkr-create-candidate", flow_run_name="{integration}-create-candidate", retries=0)
def checkr_create_candidate(
    connection_id: str, request: checkr.CreateCandidateInput, integration: str = "checkr"
) -> Candidate:
    """Create a candidate on the connected Checkr account (idempotent: same input, same candidate)."""
    return _run(integration, connection_id, "create_candidate", request)


@flow(name="checkr-invite-candidate", flow_run_name="{integration}-invite-candidate", retries=0)
def checkr_invite_candidate(
    connection_id: str, request: checkr.InviteCandidateInput, integration: str = "checkr"
) -> Invitation:
    """Trigger a background check by invitation (idempotent: a retry never orders twice)."""
    return _run(integration, connection_id, "invite_candidate", request)


@flow(name="checkr-get-report-status", flow_run_name="{integration}-get-report-status", retries=0)
def checkr_get_report_status(
    connection_id: str, request: checkr.ReportStatusInput, integration: str = "checkr"
) -> checkr.ReportStatus:
    """A report's status, result and adjudication, read live from Checkr."""
    return _run(integration, connection_id, "get_report_status", request)


@flow(name="checkr-list-packages", flow_run_name="{integration}-list-packages", retries=0)
def checkr_list_packages(
    connection_id: str, request: checkr.ListPackagesInput | None = None, integration: str = "checkr"
) -> checkr.PackageList:
    """The packages the account can order, read live from Checkr."""
    return _run(integration, connection_id, "list_packages", request or checkr.ListPackagesInput())


@flow(name="checkr-create-embeds-session-token", flow_run_name="{integration}-create-embeds-session-token", retries=0)
def checkr_create_embeds_session_token(
    connection_id: str, request: checkr.EmbedsSessionInput | None = None, integration: str = "checkr"
) -> checkr.EmbedsSessionToken:
    """A short-lived token for Checkr Embeds; logged and recorded only as ***."""
    return _run(integration, connection_id, "create_embeds_session_token", request or checkr.EmbedsSessionInput())


@flow(name="checkr-deauthorize", flow_run_name="{integration}-deauthorize", retries=0)
def checkr_deauthorize(
    connection_id: str, request: checkr.DeauthorizeInput, integration: str = "checkr"
) -> checkr.DeauthorizeResult:
    """Revoke the connection's token at Checkr and mark the connection revoked."""
    return _run(integration, connection_id, "deauthorize", request)


# --- clearchecks ------------------------------------------------------------------------------


@flow(name="clearchecks-create-order", flow_run_name="{integration}-create-order", retries=0)
def clearchecks_create_order(
    connection_id: str, request: clearchecks.CreateOrderInput, integration: str = "clearchecks"
) -> clearchecks.CreateOrderResult:
    """Order a check; ClearChecks has no idempotency key, so this flow never retries by itself."""
    return _run(integration, connection_id, "create_order", request)


@flow(name="clearchecks-get-report-status", flow_run_name="{integration}-get-report-status", retries=0)
def clearchecks_get_report_status(
    connection_id: str, request: clearchecks.ReportKeyInput, integration: str = "clearchecks"
) -> clearchecks.ReportStatus:
    """A report's status letter (and its components), read live and spelled out."""
    return _run(integration, connection_id, "get_report_status", request)


@flow(name="clearchecks-get-report-widget-token", flow_run_name="{integration}-get-report-widget-token", retries=0)
def clearchecks_get_report_widget_token(
    connection_id: str, request: clearchecks.ReportKeyInput, integration: str = "clearchecks"
) -> clearchecks.WidgetToken:
    """A single-use token for the report widget; logged and recorded only as ***."""
    return _run(integration, connection_id, "get_report_widget_token", request)


@flow(name="clearchecks-update-billing", flow_run_name="{integration}-update-billing", retries=0)
def clearchecks_update_billing(
    connection_id: str, request: clearchecks.UpdateBillingInput, integration: str = "clearchecks"
) -> clearchecks.BillingResult:
    """Update billing details (an assumed contract, to confirm with ClearChecks)."""
    return _run(integration, connection_id, "update_billing", request)


# --- every integration ------------------------------------------------------------------------


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
def sync_connection_now(integration: str, connection_id: str, models: list[str] | None = None) -> list[SyncResult]:
    """Run one connection's syncs now (all of them unless `models` names some), from their cursors."""
    return sync_integration(integration=integration, connections=[connection_id], models=models)


@flow(name="full-resync", flow_run_name="{integration}-full-resync", retries=0)
def full_resync(integration: str, connection_id: str, model: str) -> list[SyncResult]:
    """Re-read one connection's sync from the start (cursor ignored; deletes applied on completion)."""
    return sync_integration(integration=integration, connections=[connection_id], models=[model], full_refresh=True)


COMMON_ACTION_FLOWS = {
    "test_connection": connection_test,
    "sync_connection_now": sync_connection_now,
    "full_resync": full_resync,
}


def action_family(integration: str) -> str:
    from integrations.engine.registry import get_integration

    definition = get_integration(integration).definition
    return (definition.extends or definition.name).replace("-", "_")


def action_flow_name(integration: str, action: str) -> str:
    """The attribute of this module that runs `action` for `integration`."""
    return f"{action_family(integration)}_{action}"


def action_flow(integration: str, action: str) -> Any:
    name = action_flow_name(integration, action)
    found = globals().get(name)
    if found is None:
        raise LookupError(f"{integration} declares action {action!r} but flows/actions.py has no flow {name!r}")
    return found
