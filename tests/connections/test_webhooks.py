"""Webhook deliveries over real HTTP to the connect app: verification, durability, idempotence, routing;
on both store backends (the app serves `any_store`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from store_helpers import add_connection, raw_bytes

from connections.store import ConnectionStore
from connections.webhooks import inbox
from connections.webhooks.verify import sign
from tests.support.asgi_server import serve_asgi

CLIENT_SECRET = "partner-client-secret-7d1e"
PARTNER_TOKEN = "oauth-access-token-91ab"
DIRECT_KEY = "direct-api-key-55c3"


@pytest.fixture
def seeded(any_store: ConnectionStore) -> ConnectionStore:
    store = any_store
    store.set_app_secrets("checkr", {"client_id": "cid", "client_secret": CLIENT_SECRET})
    add_connection(store, "cust-1", "oauth", "acct_partner_cust", PARTNER_TOKEN)
    add_connection(store, "direct-1", "api_key", "acct_direct", DIRECT_KEY)
    return store


@pytest.fixture
def web(seeded: ConnectionStore) -> Iterator[str]:
    from connections.web.app import create_app

    with serve_asgi(create_app(seeded)) as base:
        yield base


def event(event_id: str, etype: str, account_id: str, obj: dict[str, Any] | None = None) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": etype,
            "created_at": "2026-01-01T00:00:00Z",
            "account_id": account_id,
            "data": {"object": obj or {"id": "x", "object": "account"}},
        },
        separators=(",", ":"),
    ).encode()


def deliver(
    web: str, body: bytes, secret: str | None, integration: str = "checkr", signature: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Checkr-Signature"] = signature
    elif secret is not None:
        headers["X-Checkr-Signature"] = sign(secret, body)
    return httpx.post(f"{web}/webhooks/{integration}", content=body, headers=headers)


def test_signature_matches_the_published_test_vector() -> None:
    assert sign("test-secret", b'{"monday":"75F","tuesday":"80F"}') == (
        "b7412f05e981a473b5ecbdb5393afaea02a679db6d7c8e56803512ec4ba98151"
    )


def test_valid_delivery_marks_account_credentialed(seeded: ConnectionStore, web: str) -> None:
    r = deliver(web, event("evt_1", "account.credentialed", "acct_partner_cust"), CLIENT_SECRET)
    assert r.status_code == 200, r.text
    assert seeded.get("checkr", "cust-1").metadata.credentialed is True
    assert seeded.get("checkr", "direct-1").metadata.credentialed is False
    assert [e["status"] for e in seeded.events()] == ["processed"]


def test_direct_account_events_verify_with_its_api_key(seeded: ConnectionStore, web: str) -> None:
    body = event("evt_d", "account.credentialed", "acct_direct")
    assert deliver(web, body, CLIENT_SECRET + "x").status_code == 401
    # the API key of a *different* account does not verify it either
    assert deliver(web, event("evt_d2", "account.credentialed", "acct_partner_cust"), DIRECT_KEY).status_code == 401
    assert deliver(web, body, DIRECT_KEY).status_code == 200
    assert seeded.get("checkr", "direct-1").metadata.credentialed is True


@pytest.mark.parametrize(
    "signature",
    [None, "", "Please create an API key to check the authenticity of our webhooks.", "0" * 64, sign("wrong", b"x")],
)
def test_forged_or_unsigned_deliveries_are_401_and_write_nothing(
    seeded: ConnectionStore, web: str, signature: str | None
) -> None:
    body = event("evt_forged", "token.deauthorized", "acct_partner", {"access_code": PARTNER_TOKEN})
    r = deliver(web, body, None, signature=signature)
    assert r.status_code == 401
    assert seeded.events() == []
    assert seeded.get("checkr", "cust-1").status == "active"


def test_body_tampered_after_signing_is_rejected(seeded: ConnectionStore, web: str) -> None:
    body = event("evt_t", "account.credentialed", "acct_partner_cust")
    sig = sign(CLIENT_SECRET, body)
    tampered = body.replace(b"evt_t", b"evt_u")
    assert deliver(web, tampered, None, signature=sig).status_code == 401
    assert seeded.events() == []


def test_replayed_delivery_has_one_effect(seeded: ConnectionStore, web: str) -> None:
    body = event("evt_r", "account.credentialed", "acct_partner_cust")
    first = deliver(web, body, CLIENT_SECRET)
    seeded.update_metadata("checkr", "cust-1", credentialed=False)  # a second effect would set it again
    second = deliver(web, body, CLIENT_SECRET)
    assert first.status_code == second.status_code == 200
    assert second.json()["duplicate"] is True
    assert seeded.get("checkr", "cust-1").metadata.credentialed is False
    assert len(seeded.events()) == 1


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1,2,3]", json.dumps({"type": "account.credentialed"}).encode(), b""],
    ids=["not-json", "not-object", "no-id", "empty"],
)
def test_malformed_deliveries_are_400_and_write_nothing(seeded: ConnectionStore, web: str, body: bytes) -> None:
    r = deliver(web, body, CLIENT_SECRET)
    assert r.status_code == 400, r.text
    assert seeded.events() == []


def test_oversized_delivery_is_413_and_writes_nothing(seeded: ConnectionStore, web: str) -> None:
    padding = "x" * (1024 * 1024 + 10)
    body = event("evt_big", "report.created", "acct_partner_cust", {"id": "r", "pad": padding})
    r = deliver(web, body, CLIENT_SECRET)
    assert r.status_code == 413
    assert seeded.events() == []


def test_unknown_integration_is_404(web: str) -> None:
    assert deliver(web, b"{}", "x", integration="nope").status_code == 404


def test_provider_deauthorization_revokes_the_connection(seeded: ConnectionStore, web: str) -> None:
    body = event("evt_deauth", "token.deauthorized", "acct_partner_itself", {"access_code": PARTNER_TOKEN})
    r = deliver(web, body, CLIENT_SECRET)
    assert r.status_code == 200, r.text
    conn = seeded.get("checkr", "cust-1")
    assert conn.status == "revoked" and "token.deauthorized" in (conn.status_reason or "")
    assert seeded.get("checkr", "direct-1").status == "active"
    raw = raw_bytes(seeded)
    assert b"evt_deauth" in raw and PARTNER_TOKEN.encode() not in raw  # the inbox body (with access_code) is encrypted too


def test_object_events_wait_in_the_inbox_for_the_applier(seeded: ConnectionStore, web: str) -> None:
    """Acknowledged once durably stored; applying it to the warehouse is the applier's job
    (tests/screensync/test_webhook_applier.py), so the receiver only queues it."""
    report = {"id": "rep_1", "object": "report", "status": "pending", "candidate_id": "cand_1"}
    body = event("evt_obj", "report.created", "acct_partner_cust", report)
    first = deliver(web, body, CLIENT_SECRET)
    assert first.status_code == 200 and first.json()["queued"] is True
    (row,) = inbox.pending(seeded)
    assert row["event_id"] == "evt_obj" and row["detail"] == "queued for the warehouse (cust-1)"
    assert inbox.body(seeded, row)["data"]["object"]["id"] == "rep_1"
    again = deliver(web, body, CLIENT_SECRET)  # the provider's retry: still one event, still queued
    assert again.status_code == 200 and again.json()["duplicate"] is True and len(seeded.events()) == 1
    inbox.settle(seeded, [("checkr", "evt_obj", "processed", "applied to the warehouse")])
    assert inbox.pending(seeded) == []
    late = deliver(web, body, CLIENT_SECRET)
    assert late.json()["detail"] == "already processed" and late.json()["queued"] is False


def test_unmatched_and_unused_events_are_kept_with_a_reason(seeded: ConnectionStore, web: str) -> None:
    assert deliver(web, event("evt_u", "report.created", "acct_unknown"), CLIENT_SECRET).status_code == 200
    assert deliver(web, event("evt_v", "verification.created", "acct_partner_cust"), CLIENT_SECRET).status_code == 200
    statuses = {e["event_id"]: e["status"] for e in seeded.events()}
    assert statuses == {"evt_u": "unmatched", "evt_v": "ignored"}


OTHER_DIRECT_KEY = "other-direct-api-key-8d2f"


def test_a_lifecycle_event_counts_only_under_the_affected_connections_own_secret(
    seeded: ConnectionStore, web: str
) -> None:
    """Another direct customer signs with their own API key, for their own account, an event that
    would revoke cust-1 (partner) and direct-1: refused, nothing recorded, nobody revoked."""
    add_connection(seeded, "evil", "api_key", "acct_evil", OTHER_DIRECT_KEY)
    for n, victim_token in enumerate((PARTNER_TOKEN, DIRECT_KEY)):
        body = event(f"evt_x{n}", "token.deauthorized", "acct_evil", {"access_code": victim_token})
        r = deliver(web, body, OTHER_DIRECT_KEY)
        assert r.status_code == 403, r.text
    assert seeded.events() == []
    assert seeded.get("checkr", "cust-1").status == seeded.get("checkr", "direct-1").status == "active"
    # under the affected connection's own secret the same event is honoured
    own = event("evt_own", "token.deauthorized", "acct_direct", {"access_code": DIRECT_KEY})
    assert deliver(web, own, DIRECT_KEY).status_code == 200
    assert seeded.get("checkr", "direct-1").status == "revoked"


def test_webhooks_for_a_revoked_connection_are_neither_recorded_nor_applied(
    seeded: ConnectionStore, web: str
) -> None:
    seeded.set_status("checkr", "cust-1", "revoked", "deauthorized by us")
    report = {"id": "rep_9", "object": "report", "status": "complete", "candidate_id": "cand_1"}
    r = deliver(web, event("evt_late", "report.completed", "acct_partner_cust", report), CLIENT_SECRET)
    assert r.status_code == 200 and "revoked" in r.json()["detail"]
    credentialed = deliver(web, event("evt_cred", "account.credentialed", "acct_partner_cust"), CLIENT_SECRET)
    assert credentialed.status_code == 200
    assert seeded.events() == []
    assert seeded.get("checkr", "cust-1").metadata.credentialed is False


def test_a_signed_body_that_is_not_utf8_is_400(seeded: ConnectionStore, web: str) -> None:
    body = event("evt_16", "account.credentialed", "acct_partner_cust").decode().encode("utf-16")
    r = deliver(web, body, CLIENT_SECRET)
    assert r.status_code == 400 and "UTF-8" in r.text
    assert seeded.events() == []


def test_an_integration_declaring_no_webhooks_refuses_deliveries(seeded: ConnectionStore, web: str) -> None:
    r = httpx.post(f"{web}/webhooks/clearchecks", content=b"{}", headers={"X-Checkr-Signature": sign("k", b"{}")})
    assert r.status_code == 404 and "declares no webhooks" in r.json()["detail"]
    assert seeded.events() == []


def test_webhook_objects_naming_a_missing_sync_fail_at_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from integrations.engine import registry

    folder = tmp_path / "acme_hooks"
    folder.mkdir()
    (folder / "definition.yaml").write_text(
        "name: acme-hooks\nextends: checkr\n"
        "webhooks:\n  signature: {header: X-Acme-Sig, keys: {api_key: token}}\n"
        "  objects: [{prefix: 'order.', sync: orders}]\n"
    )
    monkeypatch.setenv(registry.PATH_ENV, str(tmp_path))
    registry.reload()
    try:
        with pytest.raises(registry.DefinitionError, match=r"webhooks\.objects names sync 'orders'"):
            registry.get_integration("acme-hooks")
    finally:
        monkeypatch.delenv(registry.PATH_ENV)
        registry.reload()
