"""Clock advances change the Checkr sandbox (and send a webhook per change); export equals what the API serves."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
from checkr_helpers import all_pages, api, control, receiver


def _served(client: httpx.Client) -> dict[str, Any]:
    candidates = all_pages(client, "/candidates")
    return {
        "account": client.get("/account").json(),
        "candidates": candidates,
        "reports": [client.get(f"/reports/{rid}").json() for c in candidates for rid in c["report_ids"]],
        "packages": all_pages(client, "/packages"),
        "invitations": all_pages(client, "/invitations"),
        "invoices": all_pages(client, "/invoices"),
    }


def test_export_equals_the_list_endpoints(sandbox: Any) -> None:
    for key in ("checkr", "checkr_staging"):
        truth = control(sandbox, "GET", f"/export/{key}").json()
        section = sandbox.info[key]
        assert sorted(truth) == sorted(a["id"] for a in section["accounts"])
        for n, account in enumerate(section["accounts"]):
            assert truth[account["id"]] == _served(api(section, n))


def test_advance_completes_creates_expires_issues_and_notifies(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=150)  # enough records that most kinds of change happen in a month
    section = server.info["checkr"]
    client = api(section, 1)
    mine = client.post("/candidates", json={"email": "clock@example.org"}).json()
    slug = client.get("/packages").json()["data"][0]["slug"]
    client.post("/reports", json={"candidate_id": mine["id"], "package": slug}).raise_for_status()
    for _ in range(4):  # some complete, some expire (deterministic per id)
        client.post("/invitations", json={"candidate_id": mine["id"], "package": slug}).raise_for_status()
    before = _served(client)
    pending = [r for r in before["reports"] if r["status"] == "pending"]
    waiting = [i for i in before["invitations"] if i["status"] == "pending"]
    assert pending and waiting
    with receiver() as hooks:
        control(server, "PUT", "/webhooks", json={"url": hooks.url, "provider": "checkr"}).raise_for_status()
        moved = control(server, "POST", "/advance", json={"days": 31}).json()
        assert moved == {"old": "2026-06-01T12:00:00Z", "new": "2026-07-02T12:00:00Z"}
        assert control(server, "GET", "/clock").json() == {"now": "2026-07-02T12:00:00Z"}
        after = _served(client)
        expected = _expected_events(before, after)
        hooks.wait_for(lambda es: _count(es, section["accounts"][1]["id"]) >= expected, "every change's webhook")
    for report in pending:
        now = client.get(f"/reports/{report['id']}").json()
        assert now["status"] in ("complete", "canceled")
        if now["status"] == "complete":
            assert now["result"] in ("clear", "consider") and now["completed_at"] and now["turnaround_time"] > 0
    assert len(after["candidates"]) > len(before["candidates"])
    assert {i["status"] for i in after["invitations"] if i["id"] in {w["id"] for w in waiting}} <= {
        "completed",
        "expired",
    }
    assert len(after["invoices"]) == len(before["invoices"]) + 1 and after["invoices"][0]["period_start"] == (
        "2026-06-01T00:00:00Z"
    )
    slugs_before = {p["id"] for p in before["packages"]}
    slugs_after = {p["id"] for p in after["packages"]}
    assert slugs_before - slugs_after and slugs_after - slugs_before  # one retired, one launched
    assert control(server, "POST", "/advance", json={"days": -1}).status_code == 400


def _expected_events(before: dict[str, Any], after: dict[str, Any]) -> Counter[str]:
    new_candidates = {c["id"] for c in after["candidates"]} - {c["id"] for c in before["candidates"]}
    old_reports = {r["id"]: r for r in before["reports"]}
    created = [r for r in after["reports"] if r["id"] not in old_reports]
    completed = [
        r
        for r in after["reports"]
        if r["status"] == "complete" and old_reports.get(r["id"], {"status": "pending"})["status"] == "pending"
    ]
    old_inv = {i["id"]: i for i in before["invitations"]}
    inv_new = [i for i in after["invitations"] if i["id"] not in old_inv]
    inv_done = [
        i
        for i in after["invitations"]
        if i["status"] == "completed" and old_inv.get(i["id"], {"status": "pending"})["status"] == "pending"
    ]
    inv_expired = [
        i
        for i in after["invitations"]
        if i["status"] == "expired" and old_inv.get(i["id"], {"status": "pending"})["status"] == "pending"
    ]
    pk_before, pk_after = {p["id"] for p in before["packages"]}, {p["id"] for p in after["packages"]}
    return Counter(
        {
            "candidate.created": len(new_candidates),
            "report.created": len(created),
            "report.completed": len(completed),
            "invitation.created": len(inv_new),
            "invitation.completed": len(inv_done),
            "invitation.expired": len(inv_expired),
            "package.created": len(pk_after - pk_before),
            "package.deleted": len(pk_before - pk_after),
        }
    )


def _count(events: list[dict[str, Any]], account_id: str) -> Counter[str]:
    return Counter(e["type"] for e in events if e["account_id"] == account_id)


def test_advance_without_a_body_is_a_clear_400(sandbox: Any) -> None:
    r = control(sandbox, "POST", "/advance", json={})
    assert r.status_code == 400 and "seconds" in r.json()["error"]
