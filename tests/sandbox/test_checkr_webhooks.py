"""Checkr webhook signing and delivery: the public test vector, a real delivery verified, retries."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
from checkr_helpers import api, control, fixture, receiver

from sandbox.checkr.webhooks import USER_AGENT, sign


def test_signature_matches_the_published_test_vector() -> None:
    vector = fixture("verbatim", "webhook_signature_test_vector")
    assert sign(vector["secret"], vector["compact_json_body"].encode()) == vector["signature"]


def test_event_is_delivered_signed_with_the_api_key_and_retried(fresh_sandbox: Any) -> None:
    section = fresh_sandbox.info["checkr"]
    with receiver(fail_first=2) as hooks:
        control(fresh_sandbox, "PUT", "/webhooks", json={"url": hooks.url, "provider": "checkr"}).raise_for_status()
        created = api(section, 1).post("/candidates", json={"email": "hook@example.org"}).json()
        hooks.wait_for(lambda es: len(es) >= 3, "the third attempt")
    assert len(hooks.calls) == 3  # two 500s, then delivered once
    headers, raw = hooks.calls[-1]
    event = hooks.events()[-1]
    expected_keys = list(fixture("verbatim", "event_candidate_created"))
    assert sorted(event) == sorted(expected_keys)
    assert event["type"] == "candidate.created" and event["object"] == "event"
    assert event["data"]["object"] == created and event["account_id"] == section["accounts"][1]["id"]
    assert event["webhook_url"] == hooks.url
    assert raw == orjson.dumps(orjson.loads(raw))  # compact JSON, exactly the signed bytes
    key = section["accounts"][1]["api_key"].encode()
    assert headers["x-checkr-signature"] == hmac.new(key, raw, hashlib.sha256).hexdigest()
    assert headers["user-agent"] == USER_AGENT
    log = control(fresh_sandbox, "GET", "/webhooks/checkr/deliveries").json()["deliveries"]
    assert [d["ok"] for d in log] == [False, False, True] and log[0]["status"] == 500


def test_webhooks_only_for_checkr_providers(sandbox: Any) -> None:
    r = control(sandbox, "PUT", "/webhooks", json={"url": "http://127.0.0.1:9/x", "provider": "clearchecks"})
    assert r.status_code == 400 and "checkr" in r.json()["error"]
