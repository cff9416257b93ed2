"""Issue 12 item 1: new reports on candidates synced earlier reach the warehouse.

Checkr has no `updated_after` and no report list; the candidates sync reads only candidates created
after its cursor. What the definition declares instead, each tested here over loopback HTTP:
references (an invitation's `report_id`, a report's `candidate_id`) fetched by id when the record
they name is not stored; a scheduled full sweep of the candidates (which also notices what vanished).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from integrations.engine.webhook_sink import event_records
from tests.engine.conftest import Env
from warehouse.loader import Warehouse
from warehouse.records import ObjectWrite


def _ids(env: Env, table: str, connection_id: str, live: bool = True) -> set[str]:
    where = " AND _deleted_at IS NULL" if live else ""
    return {r[0] for r in env.rows(f"SELECT id FROM checkr.{table} WHERE connection_id = '{connection_id}'{where}")}


def _api(sandbox: Any, account: int) -> httpx.Client:
    acct = sandbox.info["checkr"]["accounts"][account]
    return httpx.Client(base_url=sandbox.info["checkr"]["base_url"] + "/v1", auth=(acct["api_key"], ""), timeout=30)


def test_a_report_from_an_invitation_completed_later_lands_with_the_invitations_sync(
    env: Env, fresh_sandbox: Any
) -> None:
    sandbox = fresh_sandbox(scale=40, seed=5)
    account = env.connect(sandbox, "checkr", "c1", account=1)  # account 0 needs a node on invitations
    assert env.sync("checkr", "c1", "candidates").ok
    old = sorted(_ids(env, "candidates", "c1"))[:8]
    package = sandbox.export("checkr", account)[account]["packages"][0]["slug"]
    with _api(sandbox, 1) as api:  # old candidates are invited now; most complete within two days
        invited = {api.post("/invitations", json={"candidate_id": cid, "package": package}).json()["id"]
                   for cid in old}
    assert env.sync("checkr", "c1", "invitations").ok
    sandbox.advance(days=3)
    assert env.sync("checkr", "c1", "candidates").ok  # incremental: the old candidates are not read again
    referenced = {i["report_id"] for i in sandbox.export("checkr", account)[account]["invitations"]
                  if i["report_id"] and i["id"] in invited}
    assert len(referenced) >= 3
    assert not referenced & _ids(env, "reports", "c1")  # the defect: nothing else brings them

    result = env.sync("checkr", "c1", "invitations")
    assert result.ok, result.error
    assert result.referenced == len(referenced)
    assert referenced <= _ids(env, "reports", "c1")
    again = env.sync("checkr", "c1", "invitations")  # nothing is fetched twice
    assert again.ok and again.referenced == 0


@pytest.mark.both_backends
def test_a_report_whose_candidate_is_not_stored_brings_its_candidate(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=20, seed=6)
    account = env.connect(sandbox, "checkr", "c1", account=1)
    assert all(r.ok for r in env.sync_all("checkr", "c1"))
    package = sandbox.export("checkr", account)[account]["packages"][0]["slug"]
    with _api(sandbox, 1) as api:
        cand = api.post("/candidates", json={"email": "late.arrival@example.com"}).json()
        report = api.post("/reports", json={"candidate_id": cand["id"], "package": package}).json()
    event = {"id": "evt_1", "type": "report.created", "account_id": account, "data": {"object": report}}
    with Warehouse(env.db) as wh:  # the report arrives by webhook before any sync saw its candidate
        records, rejects = event_records("checkr", event, default_time=datetime.now(UTC))
        assert records and not rejects
        wh.write_objects([ObjectWrite("checkr", "c1", records, run_id="webhook")])
    assert cand["id"] not in _ids(env, "candidates", "c1")

    env.hours_pass(2)  # the report is due for its re-poll (no sooner: it just arrived)
    result = env.sync("checkr", "c1", "reports")
    assert result.ok, result.error
    assert result.referenced == 1
    assert cand["id"] in _ids(env, "candidates", "c1")


def _run_every_schedule_once(env: Env, connection_id: str) -> None:
    """What Prefect runs for the generated deployment in a day: each schedule's syncs with its parameters."""
    from flows.deployments import sync_deployment

    for schedule in sync_deployment("checkr")["schedules"]:
        params = schedule["parameters"]
        for model in params["syncs"]:
            result = env.sync("checkr", connection_id, model, full_refresh=params.get("full_refresh", False))
            assert result.ok, (model, result.error)


def test_a_day_of_declared_schedules_lands_every_new_report_on_old_candidates(env: Env, fresh_sandbox: Any) -> None:
    """The issue's case: scale 400, clock +30 days; before, 5 of 402 reports never landed."""
    sandbox = fresh_sandbox(scale=400, seed=42)
    account = env.connect(sandbox, "checkr", "c1")
    _run_every_schedule_once(env, "c1")
    first = _ids(env, "candidates", "c1")
    sandbox.advance(days=30)
    truth = sandbox.truth("checkr", account)
    late = {rid for rid, r in truth.tables["reports"].items() if r["candidate_id"] in first} - _ids(env, "reports", "c1")
    assert late, "the scenario needs reports that appeared on candidates already synced"

    _run_every_schedule_once(env, "c1")
    assert _ids(env, "reports", "c1") == truth.ids("reports")
    assert env.raws("checkr", "candidates", "c1") == {
        cid: {k: v for k, v in c.items() if k != "reports"} for cid, c in truth.tables["candidates"].items()
    }


def test_the_sweep_marks_vanished_candidates_and_reports_deleted(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=60, seed=8)
    account = env.connect(sandbox, "checkr", "c1")
    assert all(r.ok for r in env.sync_all("checkr", "c1"))
    export = sandbox.export("checkr", account)[account]
    with_reports = [c for c in export["candidates"] if c["report_ids"]]
    gone_candidate, other = with_reports[0], with_reports[1]
    sandbox.remove("checkr", "candidate", gone_candidate["id"])
    sandbox.remove("checkr", "report", other["report_ids"][0])
    expected = {gone_candidate["id"], *gone_candidate["report_ids"], other["report_ids"][0]}

    assert env.sync("checkr", "c1", "candidates").deleted == 0  # incremental: it cannot know
    sweep = env.sync("checkr", "c1", "candidates", full_refresh=True)
    assert sweep.ok and sweep.mode == "full", sweep.error
    deleted = {r[0]: r[1] for r in env.rows(
        "SELECT id, _deleted_reason FROM checkr.candidates WHERE _deleted_at IS NOT NULL UNION ALL "
        "SELECT id, _deleted_reason FROM checkr.reports WHERE _deleted_at IS NOT NULL")}
    assert set(deleted) == expected
    assert set(deleted.values()) == {"not listed by a full sync"}
    truth = sandbox.truth("checkr", account)
    assert _ids(env, "candidates", "c1") == truth.ids("candidates")
    assert _ids(env, "reports", "c1") == truth.ids("reports")


def test_the_sweep_is_a_schedule_of_the_generated_deployment() -> None:
    from flows.deployments import sync_deployment
    from integrations.engine.registry import get_integration

    sync = get_integration("checkr").definition.sync("candidates")
    assert sync.sweep == "every 1d"
    sweeps = [s for s in sync_deployment("checkr")["schedules"] if s["parameters"].get("full_refresh")]
    assert sweeps == [{"interval": 86400, "active": True,
                       "parameters": {"syncs": ["candidates"], "full_refresh": True}}]


CAPPED = """
name: checkr-capped
extends: checkr
syncs:
  - name: invitations
    model: Invitation
    table: invitations
    endpoint: /invitations
    frequency: every 1h
    references: [{field: report_id, table: reports, max_per_run: 3}]
  - name: reports
    model: Report
    table: reports
    mode: repoll
    repoll: {table: reports, state_field: status, terminal_states: [complete, canceled], endpoint: "/reports/{id}"}
    frequency: every 15m
"""


def test_references_are_fetched_at_most_max_per_run_at_a_time(
    env: Env, fresh_sandbox: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    from connections.models import Connection, ConnectionMetadata, Credentials
    from integrations.engine import registry

    folder = tmp_path / "integrations" / "checkr_capped"
    folder.mkdir(parents=True)
    (folder / "definition.yaml").write_text(CAPPED)
    monkeypatch.setenv(registry.PATH_ENV, str(folder.parent))
    registry.reload()
    try:
        sandbox = fresh_sandbox(scale=40, seed=9)
        acct = sandbox.info["checkr"]["accounts"][1]
        env.store.add(Connection(connection_id="c1", integration="checkr-capped", credential_kind="api_key",
                                 metadata=ConnectionMetadata(base_url=sandbox.info["checkr"]["base_url"])),
                      Credentials(token=acct["api_key"]))
        named = {i["report_id"] for i in sandbox.export("checkr", acct["id"])[acct["id"]]["invitations"]
                 if i["report_id"]}
        assert len(named) > 6  # an empty warehouse: every report an invitation names is missing
        first = env.sync("checkr-capped", "c1", "invitations")
        second = env.sync("checkr-capped", "c1", "invitations")
        assert (first.referenced, second.referenced) == (3, 3)
        stored = {r[0] for r in env.rows("SELECT id FROM checkr_capped.reports")}
        assert len(stored) == 6 and stored <= named
    finally:
        monkeypatch.delenv(registry.PATH_ENV)
        registry.reload()
