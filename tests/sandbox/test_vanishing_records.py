"""Records that vanish (by control call or a seeded rate): GET answers 404, lists and export omit them."""

from __future__ import annotations

from typing import Any

import httpx
from checkr_helpers import all_pages, api, control, receiver


def _checkr_view(client: httpx.Client) -> tuple[list[str], list[str]]:
    """Candidate ids paged 7 at a time (newest first) and every report id they list."""
    candidates = all_pages_small(client, "/candidates")
    return [c["id"] for c in candidates], [r for c in candidates for r in c["report_ids"]]


def all_pages_small(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    url: str | None = str(client.build_request("GET", path, params={"per_page": 7, **params}).url)
    while url:
        body = client.get(url).raise_for_status().json()
        out += body["data"]
        url = body["next_href"]
    return out


def test_checkr_records_removed_by_control_call(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=40)
    section = server.info["checkr"]
    client = api(section, 1)
    account = section["accounts"][1]["id"]
    mine = client.post("/candidates", json={"email": "gone@example.org"}).json()  # an API-made one vanishes too
    candidates, reports = _checkr_view(client)
    total = client.get("/candidates", params={"per_page": 1}).json()["count"]
    victim = next(c for c in all_pages(client, "/candidates") if len(c["report_ids"]) == 2 and c["id"] != mine["id"])
    lone_report = reports[5]
    r = control(server, "POST", "/remove/checkr", json={"kind": "candidate", "id": victim["id"]})
    assert r.status_code == 200 and set(victim["report_ids"]) <= set(r.json()["removed"])
    control(server, "POST", "/remove/checkr", json={"kind": "candidate", "id": mine["id"]}).raise_for_status()
    assert server.remove("checkr", "report", lone_report) == {"removed": [lone_report]}
    assert client.get(f"/candidates/{victim['id']}").status_code == 404
    assert client.get(f"/candidates/{mine['id']}").status_code == 404
    for rid in [*victim["report_ids"], lone_report]:
        assert client.get(f"/reports/{rid}").status_code == 404
    after_candidates, after_reports = _checkr_view(client)
    assert after_candidates == [c for c in candidates if c not in (victim["id"], mine["id"])], "paging skips nothing"
    assert after_reports == [r for r in reports if r not in {*victim["report_ids"], lone_report}]
    assert client.get("/candidates", params={"per_page": 1}).json()["count"] == total - 2
    assert client.get("/candidates", params={"email": victim["email"]}).json()["count"] == 0
    exported = control(server, "GET", "/export/checkr", params={"account": account}).json()
    assert list(exported) == [account]
    assert [c["id"] for c in exported[account]["candidates"]] == after_candidates
    assert [r["id"] for r in exported[account]["reports"]] == after_reports
    removed = control(server, "GET", "/removed/checkr", params={"account": account}).json()[account]
    assert set(removed["candidates"]) == {victim["id"], mine["id"]}
    assert set(removed["reports"]) == {*victim["report_ids"], lone_report}
    again = control(server, "POST", "/remove/checkr", json={"kind": "report", "id": lone_report})
    assert again.status_code == 404


def test_checkr_invitations_and_packages_are_deleted_with_a_webhook(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=20)
    client = api(server.info["checkr"], 1)
    cand = client.post("/candidates", json={"email": "inv@example.org"}).json()
    package = client.get("/packages").json()["data"][0]
    invitation = client.post("/invitations", json={"candidate_id": cand["id"], "package": package["slug"]}).json()
    with receiver() as hooks:
        server.providers["checkr"].set_webhook_url(hooks.url)
        r = control(server, "POST", "/remove/checkr", json={"kind": "invitation", "id": invitation["id"]})
        assert r.status_code == 200 and r.json()["object"]["deleted_at"]
        assert invitation["id"] not in {i["id"] for i in all_pages(client, "/invitations")}
        r = control(server, "POST", "/remove/checkr", json={"kind": "package", "id": package["id"]})
        assert r.status_code == 200
        assert package["id"] not in {p["id"] for p in all_pages(client, "/packages")}
        assert client.get(f"/packages/{package['id']}").json()["deleted_at"] == r.json()["object"]["deleted_at"]
        server.flush_webhooks("checkr")
        sent = {(e["type"], e["data"]["object"]["id"]) for e in hooks.events()}
    assert sent == {("invitation.deleted", invitation["id"]), ("package.deleted", package["id"])}
    again = control(server, "POST", "/remove/checkr", json={"kind": "invitation", "id": invitation["id"]})
    assert again.status_code == 404
    bad = control(server, "POST", "/remove/checkr", json={"kind": "invoice", "id": package["id"]})
    assert bad.status_code == 400 and "kind" in bad.json()["error"]
    assert control(server, "POST", "/remove/checkr", json={"kind": "report"}).status_code == 400


def test_checkr_records_vanish_at_a_seeded_rate(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=60)
    section = server.info["checkr"]
    activity = {"seed": 3, "report_vanish_per_day": 2, "candidate_vanish_per_day": 1}
    control(server, "PUT", "/activity/checkr", json=activity).raise_for_status()
    control(server, "POST", "/advance", json={"days": 4}).raise_for_status()
    removed = control(server, "GET", "/removed/checkr").json()
    assert sum(len(r["candidates"]) for r in removed.values()) >= 3
    assert sum(len(r["reports"]) for r in removed.values()) >= 6
    for n, account in enumerate(section["accounts"]):
        client = api(section, n)
        gone = removed[account["id"]]
        candidates, reports = _checkr_view(client)
        assert not set(gone["candidates"]) & set(candidates) and not set(gone["reports"]) & set(reports)
        assert len(candidates) == len(set(candidates)) == client.get("/candidates").json()["count"]
        for cid in gone["candidates"]:
            assert client.get(f"/candidates/{cid}").status_code == 404
        for rid in gone["reports"]:
            assert client.get(f"/reports/{rid}").status_code == 404
        truth = server.truth("checkr", account["id"])
        assert list(truth.tables["candidates"]) == candidates and truth.removed["reports"] == gone["reports"]


def _cc_keys(client: httpx.Client, token: str) -> list[str]:
    keys: list[str] = []
    page = 1
    while True:
        body = client.get("/api/reports/all", params={"api_token": token, "per_page": 9, "page": page}).json()
        keys += [r["report_key"] for r in body["data"]]
        if not body["next_page_url"]:
            return keys
        page += 1


def test_clearchecks_reports_vanish(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=50)
    p = server.providers["clearchecks"]
    p.set_rate_limit(0)
    token, account = p.accounts[0].api_token, p.accounts[0].id
    with httpx.Client(base_url=server.info["clearchecks"]["base_url"], timeout=10) as client:
        made = client.post(
            "/api/orders/new",
            params={"api_token": token},
            json={"report_sku": "HIRE1", "applicant_emails": ["a@example.org", "b@example.org"], "terms_agree": "Y"},
        ).json()["applicants"]
        keys = _cc_keys(client, token)
        victims = [keys[3], keys[20], made[0]["report_key"]]
        for key in victims:
            assert control(server, "POST", "/remove/clearchecks", json={"kind": "report", "id": key}).status_code == 200
        for key in victims:
            for path in (f"/api/reports/{key}/status", f"/api/report/{key}"):
                assert client.get(path, params={"api_token": token}).status_code == 404
        after = _cc_keys(client, token)
        assert after == [k for k in keys if k not in victims], "paging skips nothing"
        total = client.get("/api/reports/all", params={"api_token": token}).json()["total"]
        assert total == len(keys) - 3
        control(server, "PUT", "/activity/clearchecks", json={"report_vanish_per_day": 3}).raise_for_status()
        control(server, "POST", "/advance", json={"days": 3}).raise_for_status()
        removed = control(server, "GET", "/removed/clearchecks", params={"account": account}).json()[account]
        assert set(victims) < set(removed["reports"])
        final = _cc_keys(client, token)
        assert not set(removed["reports"]) & set(final)
    exported = control(server, "GET", "/export/clearchecks", params={"account": account}).json()[account]
    assert [r["report_key"] for r in exported["reports"]] == final
    assert control(server, "POST", "/remove/clearchecks", json={"kind": "report", "id": keys[3]}).status_code == 404
    r = control(server, "POST", "/remove/clearchecks", json={"kind": "candidate", "id": keys[4]})
    assert r.status_code == 400 and "report" in r.json()["error"]
