"""Each action flow, run with typed parameters against the sandbox providers over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from flow_helpers import FlowEnv, artifacts_for, read_rows

from flows import action_flows as gen
from flows import actions as af
from integrations.checkr import actions as checkr
from integrations.clearchecks import actions as clearchecks
from integrations.engine.actions import ConnectionRefused


@pytest.fixture
def checkr_conn(flow_env: FlowEnv, sandboxes: Any) -> str:
    """Account #1: no node hierarchy, so invitations need no node."""
    info = sandboxes.info["checkr"]
    flow_env.add("checkr", "ck-1", info["accounts"][1]["api_key"], info["base_url"])
    return "ck-1"


@pytest.fixture
def clearchecks_conn(flow_env: FlowEnv, sandboxes: Any) -> str:
    info = sandboxes.info["clearchecks"]
    flow_env.add("clearchecks", "cc-1", info["accounts"][0]["api_token"], info["base_url"])
    return "cc-1"


def test_checkr_candidate_invitation_and_reads(flow_env: FlowEnv, checkr_conn: str) -> None:
    packages = gen.checkr_list_packages(connection_id=checkr_conn)
    assert isinstance(packages, checkr.PackageList) and packages.data
    slug = packages.data[0].slug

    request = {"email": "ann.flow@example.com", "first_name": "Ann", "last_name": "Flow"}
    candidate = gen.checkr_create_candidate(connection_id=checkr_conn, request=request)
    assert candidate.email == "ann.flow@example.com" and candidate.id
    again = gen.checkr_create_candidate(connection_id=checkr_conn, request=request)
    assert again.id == candidate.id, "the same input must not create a second candidate (Idempotency-Key)"

    invite = {"candidate_id": candidate.id, "package": slug, "work_locations": [{"country": "US", "state": "CA"}]}
    invitation = gen.checkr_invite_candidate(connection_id=checkr_conn, request=invite)
    assert (invitation.candidate_id, invitation.package, invitation.status) == (candidate.id, slug, "pending")
    assert gen.checkr_invite_candidate(connection_id=checkr_conn, request=invite).id == invitation.id

    token = gen.checkr_create_embeds_session_token(connection_id=checkr_conn)
    assert token.token

    log = read_rows(
        flow_env.warehouse,
        "select action, status, idempotency_key is not null, output::varchar from _screensync.action_log "
        "order by started_at",
    )
    assert [(a, s) for a, s, _, _ in log] == [
        ("list_packages", "success"),
        ("create_candidate", "success"),
        ("create_candidate", "success"),
        ("invite_candidate", "success"),
        ("invite_candidate", "success"),
        ("create_embeds_session_token", "success"),
    ]
    assert [k for a, _, k, _ in log if a in {"create_candidate", "invite_candidate"}] == [True] * 4
    assert token.token not in log[-1][3], "tokens are recorded only as ***"


def test_checkr_report_status_from_a_synced_report(flow_env: FlowEnv, checkr_conn: str) -> None:
    af.sync_connection_now(integration="checkr", connection_id=checkr_conn, syncs=["candidates"])
    report_id, status = read_rows(flow_env.warehouse, "select id, status from checkr.reports limit 1")[0]
    result = gen.checkr_get_report_status(connection_id=checkr_conn, request={"report_id": report_id})
    assert isinstance(result, checkr.ReportStatus)
    assert result.id == report_id and result.status == status


def test_clearchecks_order_status_widget_and_billing(flow_env: FlowEnv, clearchecks_conn: str) -> None:
    order = gen.clearchecks_create_order(
        connection_id=clearchecks_conn,
        request={"report_sku": "HIRE1", "applicant_emails": ["bo@example.com"], "terms_agree": "Y"},
    )
    assert isinstance(order, clearchecks.CreateOrderResult) and len(order.applicants) == 1
    key = order.applicants[0].report_key

    status = gen.clearchecks_get_report_status(connection_id=clearchecks_conn, request={"report_key": key})
    assert status.report_key == key and status.status_code and status.status

    widget = gen.clearchecks_get_report_widget_token(connection_id=clearchecks_conn, request={"report_key": key})
    assert widget.report_token

    billing = gen.clearchecks_update_billing(connection_id=clearchecks_conn, request={"billing_email": "ap@example.com"})
    assert billing.billing_email == "ap@example.com"


def test_common_actions_test_sync_and_full_resync(flow_env: FlowEnv, clearchecks_conn: str) -> None:
    assert af.connection_test(integration="clearchecks", connection_id=clearchecks_conn).ok
    first = af.sync_connection_now(integration="clearchecks", connection_id=clearchecks_conn, syncs=["packages"])
    assert [(r.sync, r.status.value) for r in first] == [("packages", "success")] and first[0].added > 0
    again = af.full_resync(integration="clearchecks", connection_id=clearchecks_conn, sync="packages")
    assert again[0].mode == "full" and again[0].added == 0 and again[0].unchanged == first[0].added


def test_invalid_input_is_a_validation_error_before_anything_runs(flow_env: FlowEnv, checkr_conn: str) -> None:
    state = gen.checkr_create_candidate(connection_id=checkr_conn, request={"email": "not-an-email"}, return_state=True)
    assert state.is_failed()
    assert "email" in state.message
    assert not flow_env.warehouse.exists() or not _logged(flow_env)


def _logged(flow_env: FlowEnv) -> list[Any]:
    return read_rows(
        flow_env.warehouse,
        "select * from information_schema.tables where table_schema = '_screensync' and table_name = 'action_log'",
    )


def test_a_revoked_connection_is_refused_with_nothing_sent(flow_env: FlowEnv, sandboxes: Any) -> None:
    info = sandboxes.info["checkr"]
    flow_env.add("checkr", "gone-1", info["accounts"][0]["api_key"], info["base_url"])
    flow_env.store.set_status("checkr", "gone-1", "revoked", "customer deauthorized")
    before = sandboxes.checkr.request_count()

    state = gen.checkr_create_candidate(connection_id="gone-1", request={"email": "cy@example.com"}, return_state=True)

    assert state.is_failed()
    with pytest.raises(ConnectionRefused, match=r"gone-1.*revoked.*nothing was sent"):
        state.result()
    assert sandboxes.checkr.request_count() == before


def test_deauthorize_revokes_then_later_actions_are_refused(flow_env: FlowEnv, sandboxes: Any) -> None:
    info = sandboxes.info["checkr"]
    flow_env.add("checkr", "bye-1", info["accounts"][0]["api_key"], info["base_url"])
    result = gen.checkr_deauthorize(connection_id="bye-1", request={"confirm": True})
    assert result.status == "revoked"
    assert flow_env.store.get("checkr", "bye-1").status == "revoked"
    state = gen.checkr_list_packages(connection_id="bye-1", return_state=True)
    assert state.is_failed() and "revoked" in state.message


def test_action_run_has_a_table_artifact(flow_env: FlowEnv, checkr_conn: str) -> None:
    state = gen.checkr_list_packages(connection_id=checkr_conn, return_state=True)
    assert state.is_completed()
    keys = {a.key for a in artifacts_for(state.state_details.flow_run_id)}
    assert "action-checkr-list-packages" in keys


def test_an_account_with_nodes_needs_a_node_to_invite(flow_env: FlowEnv, sandboxes: Any) -> None:
    info = sandboxes.info["checkr"]
    flow_env.add("checkr", "nodes-1", info["accounts"][0]["api_key"], info["base_url"])  # account #0 has nodes
    candidate = gen.checkr_create_candidate(connection_id="nodes-1", request={"email": "di@example.com"})
    invite = {
        "candidate_id": candidate.id,
        "package": "basic_plus",
        "work_locations": [{"country": "US", "state": "NY"}],
    }
    before = sandboxes.checkr.request_count()

    refused = gen.checkr_invite_candidate(connection_id="nodes-1", request=invite, return_state=True)

    assert refused.is_failed() and "node" in refused.message
    assert sandboxes.checkr.request_count() == before + 1, "only the GET /nodes check was sent, no invitation"
    invitation = gen.checkr_invite_candidate(connection_id="nodes-1", request={**invite, "node": "hq"})
    assert invitation.status == "pending" and invitation.candidate_id == candidate.id
