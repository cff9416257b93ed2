"""POST/DELETE on the Checkr sandbox: form and JSON bodies, validation errors, idempotency, invitations."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from checkr_helpers import all_pages, api, control


def test_create_candidate_form_and_json(fresh_sandbox: Any) -> None:
    client = api(fresh_sandbox.info["checkr"], 1)
    form = client.post("/candidates", data={"email": "ada@example.org", "first_name": "Ada", "ssn": "111-22-3333"})
    assert form.status_code == 201, form.text
    assert form.json()["email"] == "ada@example.org" and form.json()["ssn"] == "XXX-XX-3333"
    js = client.post("/candidates", json={"email": "bo@example.org", "metadata": {"team": "ops"}})
    assert js.status_code == 201 and js.json()["metadata"] == {"team": "ops"}
    listed = all_pages(client, "/candidates")
    assert [c["id"] for c in listed[:2]] == [js.json()["id"], form.json()["id"]]  # newest first
    assert client.get(f"/candidates/{form.json()['id']}").json() == form.json()
    assert client.get("/candidates", params={"email": "ada@example.org"}).json()["data"] == [form.json()]


def test_bad_bodies_are_400_with_a_clear_error(fresh_sandbox: Any) -> None:
    client = api(fresh_sandbox.info["checkr"], 1)
    r = client.post("/candidates", data={"first_name": "No Email"})
    assert r.status_code == 400 and r.json() == {"error": "email is a required field"}
    r = client.post("/candidates", json={"email": "not-an-email"})
    assert r.status_code == 400 and "not-an-email" in r.json()["error"]
    r = client.post("/candidates", content=b"{oops", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    r = client.post("/reports", json={"package": "essential"})
    assert r.status_code == 400 and r.json() == {"error": "candidate_id is a required field"}


def test_order_a_report_and_the_duplicate_limit(fresh_sandbox: Any) -> None:
    client = api(fresh_sandbox.info["checkr"], 1)
    cand = client.post("/candidates", json={"email": "cy@example.org"}).json()
    slug = client.get("/packages").json()["data"][0]["slug"]
    r = client.post("/reports", data={"candidate_id": cand["id"], "package": slug})
    assert r.status_code == 200  # Checkr answers 200 here
    report = r.json()
    assert report["status"] == "pending" and report["result"] is None and report["package"] == slug
    assert client.get(f"/candidates/{cand['id']}").json()["report_ids"] == [report["id"]]
    assert client.post("/reports", json={"candidate_id": cand["id"], "package": "no_such"}).json() == {
        "error": "Package not found"
    }
    assert client.post("/reports", json={"candidate_id": "0" * 24, "package": slug}).status_code == 404
    for _ in range(2):
        assert client.post("/reports", json={"candidate_id": cand["id"], "package": slug}).status_code == 200
    r = client.post("/reports", json={"candidate_id": cand["id"], "package": slug})
    assert r.status_code == 409 and "Duplicate report" in r.json()["error"]


def test_idempotency_key_replays_the_saved_response(fresh_sandbox: Any) -> None:
    client = api(fresh_sandbox.info["checkr"], 1)
    headers = {"Idempotency-Key": "abc-123"}
    first = client.post("/candidates", json={"email": "idem@example.org"}, headers=headers)
    again = client.post("/candidates", json={"email": "idem@example.org"}, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    emails = [c["email"] for c in all_pages(client, "/candidates")]
    assert emails.count("idem@example.org") == 1
    other = client.post("/candidates", json={"email": "idem@example.org"}, headers={"Idempotency-Key": "xyz"})
    assert other.json()["id"] != first.json()["id"]


def test_same_idempotency_key_in_flight_is_409(fresh_sandbox: Any) -> None:
    section = fresh_sandbox.info["checkr"]
    control(fresh_sandbox, "PUT", "/faults/checkr", json={"latency_ms": 1500}).raise_for_status()
    results: list[int] = []

    def post() -> None:
        results.append(
            api(section, 1)
            .post("/candidates", json={"email": "race@example.org"}, headers={"Idempotency-Key": "race"})
            .status_code
        )

    slow = threading.Thread(target=post)
    slow.start()
    # wait until the first request holds the key (the sandbox counts it on arrival)
    while fresh_sandbox.request_count("checkr") < 1:
        threading.Event().wait(0.01)
    post()
    slow.join()
    control(fresh_sandbox, "DELETE", "/faults/checkr").raise_for_status()
    assert sorted(results) == [201, 409]


def test_invitations_create_list_delete(fresh_sandbox: Any) -> None:
    section = fresh_sandbox.info["checkr"]
    flat, tree = api(section, 1), api(section, 0)
    cand = flat.post("/candidates", json={"email": "inv@example.org"}).json()
    slug = flat.get("/packages").json()["data"][0]["slug"]
    r = flat.post("/invitations", data={"candidate_id": cand["id"], "package": slug})
    assert r.status_code == 201
    inv = r.json()
    assert inv["status"] == "pending" and inv["report_id"] is None and inv["deleted_at"] is None
    assert all_pages(flat, "/invitations", candidate_id=cand["id"]) == [inv]
    gone = flat.delete(f"/invitations/{inv['id']}")
    assert gone.status_code == 200 and gone.json()["deleted_at"] is not None
    assert all_pages(flat, "/invitations", candidate_id=cand["id"]) == []
    assert flat.get(f"/invitations/{inv['id']}").json()["deleted_at"] is not None
    assert flat.delete(f"/invitations/{inv['id']}").status_code == 404
    done = next(i for i in all_pages(flat, "/invitations", status="completed"))
    assert flat.delete(f"/invitations/{done['id']}").status_code == 400
    # an account with nodes needs one on every invitation
    tree_cand = tree.post("/candidates", json={"email": "n@example.org"}).json()
    tree_slug = tree.get("/packages").json()["data"][0]["slug"]
    r = tree.post("/invitations", json={"candidate_id": tree_cand["id"], "package": tree_slug})
    assert r.status_code == 400 and "node" in r.json()["error"]
    node = tree.get("/nodes").json()["data"][0]["custom_id"]
    assert (
        tree.post(
            "/invitations", json={"candidate_id": tree_cand["id"], "package": tree_slug, "node": node}
        ).status_code
        == 201
    )


def test_web_sdk_session_token(sandbox: Any) -> None:
    r = api(sandbox.info["checkr"], 0).post("/web_sdk/session_tokens", json={"scopes": ["order"]})
    assert r.status_code == 200 and r.json()["token"]
    assert httpx.post(sandbox.info["checkr"]["base_url"] + "/v1/web_sdk/session_tokens").status_code == 401
