"""Checkr sandbox contract over real HTTP: envelope, field names and JSON types vs the fixtures, errors, headers."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from checkr_helpers import all_pages, api, fixture

from sandbox.server import SandboxServer

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
HEX24 = re.compile(r"^[0-9a-f]{24}$")

# fields the fixtures show with a value that the API also sends as null (Checkr's spec marks them nullable)
NULLABLE = {
    "account": {"account_deauthorization", "support_phone", "default_compliance_city", "default_compliance_state"},
    "company": {"tax_id"},
    "candidate": {
        "middle_name",
        "mother_maiden_name",
        "phone",
        "custom_id",
        "adjudication",
        "driver_license_number",
        "driver_license_state",
        "previous_driver_license_number",
        "previous_driver_license_state",
        "postal_address",
    },
    "postal_address": {"street2"},
    "report": {
        "result",
        "completed_at",
        "turnaround_time",
        "adjudication",
        "assessment",
        "drug_screening",
        "program_id",
        "estimated_completion_time",
    },
    "invitation": {"archived_info", "completed_at"},
    "package": {"deleted_at"},
    "node": {"parent_custom_id"},
}


def assert_shape(actual: dict[str, Any], expected: dict[str, Any], kind: str, extra_ok: set[str] = frozenset()) -> None:
    """Same keys as the fixture; each value the fixture's JSON type (or null where Checkr allows it)."""
    missing = set(expected) - set(actual)
    extra = set(actual) - set(expected) - extra_ok
    assert not missing and not extra, f"{kind}: missing {missing}, unexpected {extra}"
    for key, want in expected.items():
        got = actual[key]
        if got is None and (want is None or key in NULLABLE.get(kind, set()) or key.endswith("_id")):
            continue
        if want is None:
            continue  # the fixture shows null: any JSON type is allowed there
        assert type(got) is type(want), f"{kind}.{key}: {type(got).__name__}, fixture has {type(want).__name__}"
        if isinstance(want, dict) and want and key in NULLABLE:
            assert_shape(got, want, key)
        if isinstance(want, str) and ISO.match(want):
            assert ISO.match(got), f"{kind}.{key} = {got!r} is not an ISO UTC timestamp"


@pytest.fixture(scope="module")
def checkr(sandbox: SandboxServer) -> dict[str, Any]:
    return sandbox.info["checkr"]


@pytest.fixture(scope="module")
def client(checkr: dict[str, Any]) -> httpx.Client:
    return api(checkr, 1)


def test_list_envelope_and_pagination(client: httpx.Client, checkr: dict[str, Any]) -> None:
    first = client.get("/candidates", params={"created_after": "2025-01-01T00:00:00Z"}).json()
    assert list(first) == ["data", "object", "next_href", "previous_href", "count"]
    assert first["object"] == "list" and first["previous_href"] is None
    assert len(first["data"]) == 25  # default per_page
    assert first["count"] > 25  # the total, not the page size
    nxt = httpx.URL(first["next_href"])
    assert str(nxt).startswith(checkr["base_url"] + "/v1/candidates")  # absolute, from the request's own base
    assert nxt.params["page"] == "2" and nxt.params["created_after"] == "2025-01-01T00:00:00Z"
    second = client.get(first["next_href"]).json()
    assert second["previous_href"] and httpx.URL(second["previous_href"]).params["page"] == "1"
    ids = [c["id"] for c in first["data"] + second["data"]]
    assert len(set(ids)) == len(ids)
    last_page = -(-first["count"] // 25)
    tail = client.get("/candidates", params={"created_after": "2025-01-01T00:00:00Z", "page": last_page}).json()
    assert tail["next_href"] is None and len(tail["data"]) == first["count"] - 25 * (last_page - 1)
    everything = all_pages(client, "/candidates", created_after="2025-01-01T00:00:00Z")
    assert len(everything) == first["count"] == len({c["id"] for c in everything})
    created = [c["created_at"] for c in everything]
    assert created == sorted(created, reverse=True)  # newest first


@pytest.mark.parametrize(
    "params", [{"page": "0"}, {"page": "x"}, {"per_page": "101"}, {"per_page": "0"}, {"per_page": "-5"}]
)
def test_invalid_page_parameters_are_400(client: httpx.Client, params: dict[str, str]) -> None:
    r = client.get("/candidates", params=params)
    assert r.status_code == 400
    (name,) = params
    assert list(r.json()) == ["error"] and name in r.json()["error"]


def test_resources_match_the_fixture_shapes(client: httpx.Client, sandbox: SandboxServer) -> None:
    assert_shape(client.get("/account").json(), fixture("generated", "account"), "account")
    candidate = client.get("/candidates", params={"per_page": 1}).json()["data"][0]
    assert HEX24.match(candidate["id"])
    assert_shape(candidate, fixture("generated", "candidate"), "candidate")
    report = client.get(f"/reports/{candidate['report_ids'][0]}").json()
    assert_shape(report, fixture("generated", "report"), "report")
    for package in client.get("/packages").json()["data"]:
        assert_shape(package, fixture("generated", "package"), "package")
    invitation = client.get("/invitations", params={"per_page": 1}).json()["data"][0]
    assert_shape(invitation, fixture("generated", "invitation"), "invitation", extra_ok={"tags"})
    nodes = api(sandbox.info["checkr"], 0).get("/nodes").json()["data"]
    assert nodes and all(assert_shape(n, fixture("generated", "node"), "node") is None for n in nodes)
    assert client.get("/nodes").json() == {
        "data": [],
        "object": "list",
        "next_href": None,
        "previous_href": None,
        "count": 0,
    }


def test_invoices_follow_the_assumed_checkr_style_shape(client: httpx.Client) -> None:
    invoices = client.get("/invoices", params={"per_page": 100}).json()["data"]
    assert len(invoices) >= 10  # a year of monthly invoices
    for inv in invoices:
        assert inv["object"] == "invoice" and HEX24.match(inv["id"]) and inv["currency"] == "usd"
        assert isinstance(inv["amount"], int) and inv["amount"] == sum(li["amount"] for li in inv["line_items"])
        for li in inv["line_items"]:
            assert set(li) == {"description", "package", "quantity", "unit_price", "amount"}
            assert li["amount"] == li["quantity"] * li["unit_price"]
        assert all(ISO.match(inv[k]) for k in ("period_start", "period_end", "created_at", "due_at"))
    assert [i["created_at"] for i in invoices] == sorted((i["created_at"] for i in invoices), reverse=True)


def test_errors_and_rate_limit_headers(checkr: dict[str, Any], client: httpx.Client) -> None:
    base = checkr["base_url"] + "/v1"
    for r in (httpx.get(f"{base}/account"), httpx.get(f"{base}/account", auth=("sk_test_wrong", ""))):
        assert r.status_code == 401 and r.json() == {"error": "Bad authentication error"}
        assert "X-Ratelimit-Limit" in r.headers
    r = client.get("/candidates/" + "0" * 24)
    assert r.status_code == 404 and r.json() == {"error": "Candidate not found"}
    assert client.get("/reports/" + "f" * 24).json() == {"error": "Resource not found"}
    assert client.get("/reports").status_code in (404, 405)  # no report list endpoint
    r = client.get("/account")
    assert r.headers["X-Ratelimit-Limit"] == "1200"
    assert 0 <= int(r.headers["X-Ratelimit-Remaining"]) < 1200
    assert ISO.match(r.headers["X-Ratelimit-Reset"])


def test_another_accounts_records_are_not_found(sandbox: SandboxServer) -> None:
    section = sandbox.info["checkr"]
    theirs = api(section, 0).get("/candidates", params={"per_page": 1}).json()["data"][0]["id"]
    assert api(section, 1).get(f"/candidates/{theirs}").status_code == 404


def test_include_reports_embeds_the_full_reports(client: httpx.Client) -> None:
    page = client.get("/candidates", params={"include": "reports", "per_page": 10}).json()["data"]
    for c in page:
        assert [r["id"] for r in c["reports"]] == c["report_ids"]
        for r in c["reports"]:
            assert r == client.get(f"/reports/{r['id']}").json()
    one = client.get(f"/candidates/{page[0]['id']}", params={"include": "reports"}).json()
    assert one == page[0]


def test_candidate_filters(client: httpx.Client) -> None:
    everyone = all_pages(client, "/candidates")
    pivot = everyone[len(everyone) // 2]["created_at"]
    after = all_pages(client, "/candidates", created_after=pivot)
    before = all_pages(client, "/candidates", created_before=pivot)
    assert after and before and all(c["created_at"] > pivot for c in after)
    assert all(c["created_at"] < pivot for c in before)
    assert len(after) + len(before) + 1 == len(everyone)
    target = everyone[3]
    found = client.get("/candidates", params={"email": target["email"]}).json()
    assert found["count"] == 1 and found["data"] == [target]
    assert client.get("/candidates", params={"email": "nobody@example.com"}).json()["count"] == 0
    r = client.get("/candidates", params={"created_after": "last tuesday"})
    assert r.status_code == 400 and "created_after" in r.json()["error"]


def test_invitation_filters(client: httpx.Client) -> None:
    invitations = all_pages(client, "/invitations")
    statuses = {i["status"] for i in invitations}
    assert {"completed", "expired"} <= statuses
    for status in statuses:
        got = all_pages(client, "/invitations", status=status)
        assert got == [i for i in invitations if i["status"] == status]
    some = invitations[0]
    assert all_pages(client, "/invitations", candidate_id=some["candidate_id"]) == [some]
    completed = next(i for i in invitations if i["status"] == "completed")
    assert client.get(f"/reports/{completed['report_id']}").json()["candidate_id"] == completed["candidate_id"]
    assert client.get("/invitations", params={"status": "nope"}).status_code == 400


def test_staging_serves_test_objects_and_no_invoices(sandbox: SandboxServer) -> None:
    staging = api(sandbox.info["checkr_staging"], 0)
    assert sandbox.info["checkr_staging"]["environment"] == "staging"
    objects = {p["object"] for p in staging.get("/packages").json()["data"]}
    assert objects == {"package", "test_package"}
    reports = [r for c in all_pages(staging, "/candidates", include="reports") for r in c["reports"]]
    assert {r["object"] for r in reports} == {"report", "test_report"}
    assert staging.get("/invoices").json()["count"] == 0
    assert {i["status"] for i in all_pages(staging, "/invitations")} <= {"pending", "completed"}  # never expire
    prod_ids = {a["id"] for a in sandbox.info["checkr"]["accounts"]}
    assert not prod_ids & {a["id"] for a in sandbox.info["checkr_staging"]["accounts"]}
