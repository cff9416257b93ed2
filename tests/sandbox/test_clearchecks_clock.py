"""Time in the ClearChecks sandbox: pending reports complete, future orders appear, invoices are issued."""

from __future__ import annotations

from typing import Any

import httpx

from sandbox.clearchecks import ClearChecksProvider
from sandbox.clock import SandboxClock


def test_advancing_the_clock_completes_creates_and_invoices(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=200)
    p: ClearChecksProvider = server.providers["clearchecks"]
    p.set_rate_limit(0)
    auth = {"api_token": p.accounts[0].api_token, "per_page": 1000}
    with httpx.Client(base_url=server.info["clearchecks"]["base_url"], timeout=10) as client:
        before = client.get("/api/reports/all", params=auth).json()
        invoices_before = client.get("/api/invoices", params=auth).json()["data"]
        pending = {r["report_key"] for r in before["data"] if r["status"] in {"P", "R"}}
        assert before["total"] == 200 and pending
        server.advance(days=20)
        after = client.get("/api/reports/all", params=auth).json()
        invoices_after = client.get("/api/invoices", params=auth).json()["data"]
    assert after["total"] > before["total"], "future orders appear"
    assert after["data"][: before["total"]] != before["data"]
    by_key = {r["report_key"]: r for r in after["data"]}
    assert all(by_key[k]["status"] in {"C", "V", "X"} and by_key[k]["completed_date"] for k in pending)
    assert len(invoices_after) == len(invoices_before) + 1
    assert invoices_after[-1]["period_start"] == "2026-05-01T00:00:00Z"
    assert invoices_after[-1]["issued_at"] == "2026-06-02T00:00:00Z" and invoices_after[-1]["status"] == "paid"
    exported = server.export("clearchecks")
    assert exported[p.accounts[0].id]["reports"] == after["data"]
    assert p.last_advance["new_reports"] == sum(len(v["reports"]) for v in exported.values()) - 3 * 200
    assert p.last_advance["completed"] >= len(pending) and p.last_advance["invoices_issued"] == 3


def test_large_scale_is_lazy_and_any_page_is_cheap() -> None:
    p = ClearChecksProvider(seed=5, scale=300_000, clock=SandboxClock(), accounts=1)
    account = p.accounts[0]
    assert account.order_ts.itemsize == 8 and account.size > 300_000
    assert account.visible_count(p.now()) == 300_000
    deep = p.report_items(account, offset=299_990, limit=50)
    assert len(deep) == 10 and deep[-1]["order_date"] <= "2026-06-01T12:00:00Z"
    assert account.find(deep[0]["report_key"], p.now()) is not None
