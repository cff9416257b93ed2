"""ClearChecks sandbox over real HTTP: shapes against the public samples, the list envelope, export agreement."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.clearchecks import ClearChecksProvider
from sandbox.clock import SandboxClock

FIXTURES = Path(__file__).parents[1] / "fixtures" / "clearchecks"
PAGINATOR_KEYS = {
    "current_page", "data", "first_page_url", "from", "last_page", "last_page_url",
    "next_page_url", "path", "per_page", "prev_page_url", "to", "total",
}  # fmt: skip
REPORT_ITEM_TYPES = {
    "report_key": str, "order_id": str, "report_sku": str, "status": str, "reports": dict,
    "flagged_for_end_user_review": bool, "applicant": dict, "order_date": str, "price": int,
    "currency": str, "team_id": str,
}  # fmt: skip


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="module")
def cc(sandbox: Any) -> Iterator[tuple[ClearChecksProvider, httpx.Client]]:
    """The shared sandbox's ClearChecks, unthrottled while this module runs (restored afterwards)."""
    provider: ClearChecksProvider = sandbox.providers["clearchecks"]
    limit = provider.limiter.limit
    provider.set_rate_limit(0)
    try:
        with httpx.Client(base_url=sandbox.info["clearchecks"]["base_url"], timeout=10) as client:
            yield provider, client
    finally:
        provider.set_rate_limit(limit)


def token(p: ClearChecksProvider, i: int = 0) -> dict[str, str]:
    return {"api_token": p.accounts[i].api_token}


def same_types(sample: Any, actual: Any) -> None:
    """Every key of the public sample is present with the same JSON type (null accepts anything)."""
    for key, value in sample.items():
        assert key in actual, f"missing {key}"
        if value is not None:
            assert type(actual[key]) is type(value), f"{key}: {type(actual[key]).__name__} != {type(value).__name__}"


def test_account_and_teams_match_the_public_samples(cc: tuple[ClearChecksProvider, httpx.Client]) -> None:
    p, client = cc
    account = client.get("/api/accounts", params=token(p)).json()
    assert set(account) == set(fixture("account_response.json"))
    same_types(fixture("account_response.json"), account)
    teams = client.get("/api/accounts/teams", params=token(p)).json()
    assert isinstance(teams, list) and teams
    for team in teams:
        same_types(fixture("teams_response_partial.json")[0], team)
        assert isinstance(team["created_at"], str) and team["created_at"].endswith("Z")
    assert str(teams[0]["id"]) == p.info("http://x")["accounts"][0]["id"]


def test_report_list_envelope_pages_through_every_report_once(cc: tuple[ClearChecksProvider, httpx.Client]) -> None:
    p, client = cc
    first = client.get("/api/reports/all", params={**token(p, 1), "per_page": 20}).json()
    total = first["total"]
    assert set(first) == PAGINATOR_KEYS and total >= 50
    assert first["current_page"] == 1 and first["from"] == 1 and first["to"] == 20 and first["prev_page_url"] is None
    assert first["last_page"] == -(-total // 20) and first["per_page"] == 20
    assert "api_token" not in first["next_page_url"] and "per_page=20" in first["next_page_url"]
    keys: list[str] = []
    url: str | None = first["next_page_url"]
    keys += [r["report_key"] for r in first["data"]]
    for _ in range(10):  # bounded: a broken next link must fail the test, not hang it
        if not url:
            break
        page = client.get(httpx.URL(url).copy_merge_params(token(p, 1))).json()
        keys += [r["report_key"] for r in page["data"]]
        url = page["next_page_url"]
    assert page["current_page"] == first["last_page"] and page["to"] == total and page["next_page_url"] is None
    assert len(keys) == len(set(keys)) == total
    beyond = client.get("/api/reports/all", params={**token(p, 1), "page": 99}).json()
    assert beyond["data"] == [] and beyond["from"] is None and beyond["total"] == total


@pytest.mark.parametrize(
    ("params", "needle"),
    [({"page": "0"}, "page must be at least 1"), ({"per_page": "abc"}, "per_page must be a whole number"),
     ({"per_page": "5000"}, "per_page must be at most 1000")],
)  # fmt: skip
def test_bad_page_parameters_are_400_naming_the_parameter(
    cc: tuple[ClearChecksProvider, httpx.Client], params: dict[str, str], needle: str
) -> None:
    p, client = cc
    r = client.get("/api/reports/all", params={**token(p), **params})
    assert r.status_code == 400 and needle in r.json()["error"]


def test_report_items_have_consistent_types_and_components(cc: tuple[ClearChecksProvider, httpx.Client]) -> None:
    p, client = cc
    items = client.get("/api/reports/all", params={**token(p), "per_page": 100}).json()["data"]
    status_sample = fixture("report_status_response_example.json")
    allowed_components = set(status_sample["reports"]) | {"employment_status"}
    packages = {pk["sku"]: pk for pk in client.get("/api/packages", params=token(p)).json()["data"]}
    for item in items:
        for key, typ in REPORT_ITEM_TYPES.items():
            assert isinstance(item[key], typ), key
        assert item["status"] in {"A", "P", "R", "C", "V", "X"}
        assert set(item["reports"]) <= allowed_components
        assert set(packages[item["report_sku"]]["components"]) <= set(item["reports"])
        assert set(item["applicant"]) == {"first_name", "last_name", "email"}
        assert (item["completed_date"] is None) == (item["status"] in {"A", "P", "R"})
        assert item["price"] >= packages[item["report_sku"]]["price"]
    statuses = {i["status"] for i in items}
    assert "C" in statuses and statuses & {"V", "X"} and statuses & {"A", "P", "R"}
    assert len({i["report_sku"] for i in items}) >= 3


def test_status_full_report_and_widget_token_shapes(cc: tuple[ClearChecksProvider, httpx.Client]) -> None:
    p, client = cc
    item = client.get("/api/reports/all", params=token(p)).json()["data"][0]
    key = item["report_key"]
    status = client.get(f"/api/reports/{key}/status", params=token(p)).json()
    assert set(status) == set(fixture("report_status_response_example.json"))
    assert status["status"] == item["status"] and status["reports"] == item["reports"]
    report = client.get(f"/api/report/{key}", params=token(p)).json()
    for section, inner in [("order_date", "date"), ("completed_date", "date"), ("ssn_trace", "message"),
                           ("address_history", "addresses"), ("county_criminal", "county_records"),
                           ("criminal_records", "records")]:  # fmt: skip
        assert inner in report[section], section
    assert report["subject"]["ssn"].startswith("XXX-XX-") and report["report_description"].startswith(
        item["report_sku"]
    )
    assert set(report["blj"]) == {"liens", "bankruptcies", "judgments"}
    assert report["criminal_records"]["count"] == len(report["criminal_records"]["records"])
    widget = client.get(f"/api/report/{key}/widget-token", params=token(p)).json()
    assert set(widget) == set(fixture("report_widget_token_response.json"))
    assert widget["report_token"].count(".") == 2
    other = client.get(f"/api/reports/{key}/status", params=token(p, 1))
    assert other.status_code == 404 and other.json() == {"error": "report not found"}


def test_packages_and_invoices_shapes_and_sums(cc: tuple[ClearChecksProvider, httpx.Client]) -> None:
    p, client = cc
    packages = client.get("/api/packages", params=token(p)).json()
    assert {"HIRE1", "HIRE3", "EE6"} <= {pk["sku"] for pk in packages["data"]}
    for pk in packages["data"]:
        assert isinstance(pk["price"], int) and pk["currency"] == "usd" and pk["components"] and pk["name"]
    invoices = client.get("/api/invoices", params={**token(p), "per_page": 100}).json()
    assert set(invoices) == PAGINATOR_KEYS and invoices["total"] >= 10
    reports = p.export()[p.accounts[0].id]["reports"]
    for inv in invoices["data"]:
        assert inv["amount"] == sum(line["amount"] for line in inv["line_items"])
        month = [r for r in reports if inv["period_start"] <= r["order_date"] < inv["period_end"]]
        assert inv["amount"] == sum(r["price"] for r in month) and inv["report_count"] == len(month)
        assert inv["issued_at"] <= "2026-06-01T12:00:00Z" and inv["status"] in {"open", "paid"}


def test_export_is_exactly_what_the_endpoints_serve(cc: tuple[ClearChecksProvider, httpx.Client]) -> None:
    p, client = cc
    exported = p.export()
    assert set(exported) == {a["id"] for a in p.info("http://x")["accounts"]}
    for i, account in enumerate(p.accounts):
        data = exported[account.id]
        params = {**token(p, i), "per_page": 1000}
        assert data["account"] == client.get("/api/accounts", params=token(p, i)).json()
        assert data["teams"] == client.get("/api/accounts/teams", params=token(p, i)).json()
        assert data["reports"] == client.get("/api/reports/all", params=params).json()["data"]
        assert data["invoices"] == client.get("/api/invoices", params=params).json()["data"]
        assert data["packages"] == client.get("/api/packages", params=params).json()["data"]


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = ClearChecksProvider(seed=7, scale=20, clock=SandboxClock()).export()
    b = ClearChecksProvider(seed=7, scale=20, clock=SandboxClock()).export()
    c = ClearChecksProvider(seed=8, scale=20, clock=SandboxClock()).export()
    assert a == b
    assert [r["report_key"] for v in a.values() for r in v["reports"]] != [
        r["report_key"] for v in c.values() for r in v["reports"]
    ]


def test_info_has_the_agreed_shape() -> None:
    p = ClearChecksProvider(seed=1, scale=1, clock=SandboxClock())
    info = p.info("http://127.0.0.1:9/")
    assert set(info) == {"base_url", "source_token", "private_key", "accounts"}
    assert info["base_url"] == "http://127.0.0.1:9" and len(info["accounts"]) == 3
    assert all(set(a) == {"id", "name", "api_token"} for a in info["accounts"])
    assert len({a["api_token"] for a in info["accounts"]}) == 3
