"""ClearChecks over simulated days: status, full report, list and export agree at every step; letters only move
forward."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import httpx
from checkr_helpers import control

RANK = {"A": 0, "P": 1, "R": 2, "C": 3, "V": 3, "X": 4}


def _all(client: httpx.Client, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = client.get("/api/reports/all", params={"api_token": token, "per_page": 1000, "page": page}).json()
        items += body["data"]
        if not body["next_page_url"]:
            return items
        page += 1


def test_status_endpoint_list_and_export_agree_as_days_pass(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=30, open_reports={"clearchecks": 20})
    p = server.providers["clearchecks"]
    p.set_rate_limit(0)
    token, account = p.accounts[0].api_token, p.accounts[0].id
    letters: dict[str, list[str]] = defaultdict(list)
    with httpx.Client(base_url=server.info["clearchecks"]["base_url"], timeout=10) as client:
        for _ in range(7):
            items = _all(client, token)
            exported = control(server, "GET", "/export/clearchecks", params={"account": account}).json()
            assert exported[account]["reports"] == items
            for item in items:
                status = client.get(f"/api/reports/{item['report_key']}/status", params={"api_token": token}).json()
                assert status == {
                    "status": item["status"],
                    "flagged_for_end_user_review": item["flagged_for_end_user_review"],
                    "reports": item["reports"],
                }
                full = client.get(f"/api/report/{item['report_key']}", params={"api_token": token}).json()
                assert (full["status"], full["completed_date"] is None) == (
                    item["status"],
                    item["completed_date"] is None,
                )
                letters[item["report_key"]].append(item["status"])
            control(server, "POST", "/advance", json={"days": 1.5}).raise_for_status()
    for key, seq in letters.items():
        ranks = [RANK[s] for s in seq]
        assert ranks == sorted(ranks), f"{key} went backwards: {seq}"
        assert "C" not in seq or set(seq[seq.index("C") :]) == {"C"}, f"{key} changed after completing: {seq}"
    moved = [seq for seq in letters.values() if len(set(seq)) > 1]
    assert len(moved) >= 10
    assert any(seq[0] == "A" and seq[-1] in "CVX" for seq in moved), "some report went all the way"


def test_open_reports_knob_gives_that_many_open_reports(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=10, open_reports={"clearchecks": 1000})
    p = server.providers["clearchecks"]
    p.set_rate_limit(0)
    start = datetime.fromisoformat(control(server, "GET", "/clock").json()["now"].replace("Z", "+00:00"))
    day_before = (start - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with httpx.Client(base_url=server.info["clearchecks"]["base_url"], timeout=30) as client:
        items = _all(client, p.accounts[1].api_token)
        recent = [r for r in items if r["order_date"] >= day_before]
        assert len(recent) == 1000 and all(r["status"] in "APR" for r in recent)
        assert sum(r["status"] not in "CVX" for r in items) >= 1000
        server.advance(days=1)
        later = {r["report_key"]: r["status"] for r in _all(client, p.accounts[1].api_token)}
    assert sum(later[r["report_key"]] != r["status"] for r in recent) > 300, "they change over the next day"
