"""Ground truth per table (sandbox/truth.py) equals what the APIs serve; seeded random days of activity."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from checkr_helpers import all_pages, api, control

from sandbox.server import SandboxServer
from sandbox.truth import fetch_truth


def test_checkr_truth_equals_the_api(sandbox: SandboxServer) -> None:
    section = sandbox.info["checkr"]
    account = section["accounts"][2]["id"]
    truth = fetch_truth(sandbox.control_url, "checkr", account)
    client = api(section, 2)
    candidates = all_pages(client, "/candidates")
    assert truth.provider == "checkr" and truth.account_id == account
    assert truth.at == control(sandbox, "GET", "/clock").json()["now"]
    assert truth.tables["accounts"] == {account: client.get("/account").json()}
    assert truth.tables["candidates"] == {c["id"]: c for c in candidates}
    assert truth.tables["reports"] == {
        rid: client.get(f"/reports/{rid}").json() for c in candidates for rid in c["report_ids"]
    }
    for table in ("packages", "invitations", "invoices"):
        assert truth.tables[table] == {r["id"]: r for r in all_pages(client, f"/{table}")}
    retired = truth.removed["packages"]
    assert retired and all(client.get(f"/packages/{pid}").json()["deleted_at"] == at for pid, at in retired.items())
    assert truth.ids("reports") == set(truth.tables["reports"])


def test_clearchecks_truth_equals_the_api(sandbox: SandboxServer) -> None:
    cc = sandbox.info["clearchecks"]
    account = cc["accounts"][1]
    truth = fetch_truth(sandbox.control_url, "clearchecks", account["id"])
    params = {"api_token": account["api_token"], "per_page": 1000}
    with httpx.Client(base_url=cc["base_url"], params=params, timeout=30) as client:
        assert truth.tables["accounts"] == {account["id"]: client.get("/api/accounts").json()}
        assert truth.tables["reports"] == {r["report_key"]: r for r in client.get("/api/reports/all").json()["data"]}
        assert truth.tables["packages"] == {p["sku"]: p for p in client.get("/api/packages").json()["data"]}
        assert truth.tables["invoices"] == {str(i["id"]): i for i in client.get("/api/invoices").json()["data"]}
    assert truth.removed == {"reports": {}}


def test_truth_names_what_was_wrong(sandbox: SandboxServer) -> None:
    with pytest.raises(ValueError, match="nope"):
        fetch_truth(sandbox.control_url, "checkr", "nope")
    with pytest.raises(ValueError, match="unknown provider"):
        fetch_truth(sandbox.control_url, "greenhouse", "x")


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def test_simulate_advances_in_seeded_random_steps(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=10)
    body = {"days": 2, "seed": 5, "min_step_minutes": 10, "max_step_minutes": 240}
    r = control(server, "POST", "/simulate", json=body).json()
    ends = [_at(s) for s in r["steps"]]
    gaps = [b - a for a, b in zip([_at(r["old"]), *ends], ends, strict=False)]
    assert _at(r["new"]) - _at(r["old"]) == timedelta(days=2) and ends[-1] == _at(r["new"])
    assert len(gaps) >= 12 and all(timedelta(minutes=10) <= g <= timedelta(minutes=240) for g in gaps[:-1])
    assert len({round(g.total_seconds()) for g in gaps}) > len(gaps) // 2, "steps vary"
    twin = SandboxServer(seed=42, scale=10)  # the same seed gives the same steps, from Python too
    steps = twin.simulate(days=2, rng=5, min_step=timedelta(minutes=10), max_step=timedelta(minutes=240))
    assert [n for _, n in steps] == ends
    assert control(server, "POST", "/simulate", json={"days": 0}).status_code == 400
    bad = control(server, "POST", "/simulate", json={"days": 1, "min_step_minutes": 60, "max_step_minutes": 5})
    assert bad.status_code == 400 and "min_step_minutes" in bad.json()["error"]


def test_simulate_runs_a_callback_between_steps_while_the_world_changes(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=30)
    account = server.info["checkr"]["accounts"][0]["id"]
    server.set_activity("checkr", {"new_reports_per_day": 20})
    before = server.truth("checkr", account).ids("reports")
    seen: list[tuple[datetime, datetime]] = []
    counts: list[int] = []

    def between(old: datetime, new: datetime) -> None:
        seen.append((old, new))
        counts.append(len(fetch_truth(server.control_url, "checkr", account).tables["reports"]))

    steps = server.simulate(
        days=1, rng=random.Random(3), min_step=timedelta(hours=1), max_step=timedelta(hours=6), between=between
    )
    assert seen == steps and len(steps) > 3
    assert counts == sorted(counts) and counts[-1] >= len(before) + 10
