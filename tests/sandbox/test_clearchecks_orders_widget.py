"""Write paths over real HTTP: orders -> status -> report -> widget token, billing, the account widget, decrypt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.clearchecks import ClearChecksProvider


@pytest.fixture
def cc(fresh_sandbox: Any) -> Iterator[tuple[Any, ClearChecksProvider, httpx.Client, dict[str, str]]]:
    server = fresh_sandbox(scale=10)
    provider: ClearChecksProvider = server.providers["clearchecks"]
    provider.set_rate_limit(0)
    with httpx.Client(base_url=server.info["clearchecks"]["base_url"], timeout=10) as client:
        yield server, provider, client, {"api_token": provider.accounts[0].api_token}


ORDER = {"report_sku": "HIRE3", "applicant_emails": ["ann.lee@example.com", "bo@example.com"], "terms_agree": "Y"}


def test_order_status_report_widget_token_round_trip(cc: Any) -> None:
    server, _, client, auth = cc
    before = client.get("/api/reports/all", params=auth).json()["total"]
    made = client.post("/api/orders/new", params=auth, json={**ORDER, "drug_test": "Y"})
    assert made.status_code == 201
    applicants = made.json()["applicants"]
    assert [a["email"] for a in applicants] == ORDER["applicant_emails"]
    key = applicants[0]["report_key"]
    status = client.get(f"/api/reports/{key}/status", params=auth).json()
    assert status["status"] == "A" and set(status["reports"]) == {
        "background_report",
        "federal_criminal_status",
        "drug_status",
    }
    listed = client.get("/api/reports/all", params={**auth, "per_page": 1000}).json()
    assert listed["total"] == before + 2 and listed["data"][-2]["report_key"] == key
    assert listed["data"][-1]["order_id"] == listed["data"][-2]["order_id"]
    report = client.get(f"/api/report/{key}", params=auth).json()
    assert report["subject"]["email"] == "ann.lee@example.com" and report["completed_date"] is None
    token = client.get(f"/api/report/{key}/widget-token", params=auth).json()["report_token"]
    viewed = client.get("/widgets/report", params={"token": token})
    assert viewed.status_code == 200 and key in viewed.text
    assert client.get("/widgets/report", params={"token": token}).status_code == 410, "single use"
    server.advance(days=15)
    done = client.get(f"/api/reports/{key}/status", params=auth).json()
    assert done["status"] in {"C", "V", "X"} and set(done["reports"].values()) == {"C"}
    assert client.get(f"/api/report/{key}", params=auth).json()["completed_date"]["date"]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"report_sku": "NOPE"}, "report_sku: unknown SKU 'NOPE'"),
        ({"terms_agree": "N"}, "terms_agree must be"),
        ({"applicant_emails": []}, "applicant_emails"),
        ({"applicant_emails": ["not-an-email"]}, "not an email address"),
        ({"order_quantity": 5}, "order_quantity is 5"),
        ({"drug_test": "yes"}, "drug_test"),
    ],
)
def test_bad_orders_are_422_naming_the_field(cc: Any, change: dict[str, Any], needle: str) -> None:
    _, _, client, auth = cc
    r = client.post("/api/orders/new", params=auth, json={**ORDER, **change})
    assert r.status_code == 422 and needle in r.json()["error"]
    assert client.post("/api/orders/new", params=auth, content=b"{nope").json() == {
        "error": "the body is not valid JSON"
    }


def test_billing_update(cc: Any) -> None:
    _, p, client, auth = cc
    r = client.put("/api/accounts/billing", params=auth, json={"billing_email": "ap@example.com", "vat_id": "GB1"})
    assert r.status_code == 200 and r.json()["billing_email"] == "ap@example.com"
    assert client.get("/api/accounts/teams", params=auth).json()[0]["vat_id"] == "GB1"
    card = client.put("/api/billing", params=auth, json={"card_token": "tok_mastercard"}).json()
    assert card["card_brand"] == "mastercard" and len(card["card_last4"]) == 4
    bad = client.put("/api/accounts/billing", params=auth, json={"card_number": "4242424242424242"})
    assert bad.status_code == 422 and "card_number: unknown field" in bad.json()["error"]
    assert p.export()[p.accounts[0].id]["billing"]["billing_email"] == "ap@example.com"


def test_widget_creates_an_account_whose_sealed_token_only_the_private_key_opens(cc: Any) -> None:
    server, p, client, _ = cc
    info = server.info["clearchecks"]
    js = client.get("/widgets/accounts.js")
    assert js.status_code == 200 and "ClearChecksWidget" in js.text and info["base_url"] in js.text
    for hook in ("cc-company", "cc-first-name", "cc-last-name", "cc-email", "Create account", "Close"):
        assert hook in js.text
    assert client.get("/widgets/accounts/session", params={"source_token": "bad"}).status_code == 401
    form = {"company_name": "Acme Staffing", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
    assert client.post("/widgets/accounts", json={**form, "source_token": "bad"}).status_code == 401
    invalid = client.post("/widgets/accounts", json={**form, "email": "nope", "source_token": info["source_token"]})
    assert invalid.status_code == 422 and "Email" in invalid.json()["error"]
    created = client.post(
        "/widgets/accounts",
        json={**form, "source_token": info["source_token"]},
        headers={"Origin": "http://platform.test"},
    )
    assert created.status_code == 201 and created.headers["access-control-allow-origin"] == "*"
    sealed = created.json()["token"]

    wrong = client.post("/api/token/decrypt", json={"token": sealed, "private_key": "cc_pk_test_wrong"})
    assert wrong.status_code == 403 and "private_key" in wrong.json()["error"]
    malformed = client.post("/api/token/decrypt", json={"token": "garbage", "private_key": info["private_key"]})
    assert malformed.status_code == 400 and "malformed" in malformed.json()["error"]
    assert client.post("/api/token/decrypt", json={"token": sealed}).json()["error"].endswith("private_key")
    opened = client.post("/api/token/decrypt", json={"token": sealed, "private_key": info["private_key"]})
    assert opened.status_code == 200
    api_token = opened.json()["api_token"]
    assert api_token not in {a["api_token"] for a in info["accounts"]}
    account = client.get("/api/accounts", params={"api_token": api_token}).json()
    assert account["company_name"] == "Acme Staffing" and account["first_name"] == "Ada"
    assert client.get("/api/reports/all", params={"api_token": api_token}).json()["total"] > 0
    assert len(p.export()) == 4


def test_cors_preflight_for_the_widget_call(cc: Any) -> None:
    _, _, client, _ = cc
    r = client.options(
        "/widgets/accounts",
        headers={
            "Origin": "http://platform.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert r.status_code == 200 and "POST" in r.headers["access-control-allow-methods"]
