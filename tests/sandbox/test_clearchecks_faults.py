"""Every ClearChecks fault knob and the auth/rate-limit gate, over real HTTP on a private sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from sandbox.clearchecks import ClearChecksProvider
from sandbox.faults import FaultConfig


@pytest.fixture
def cc(fresh_sandbox: Any) -> Iterator[tuple[ClearChecksProvider, httpx.Client, dict[str, str]]]:
    server = fresh_sandbox(scale=30)
    provider: ClearChecksProvider = server.providers["clearchecks"]
    provider.set_rate_limit(0)
    with httpx.Client(base_url=server.info["clearchecks"]["base_url"], timeout=10) as client:
        yield provider, client, {"api_token": provider.accounts[0].api_token}


def page(client: httpx.Client, auth: dict[str, str], n: int, per_page: int = 10) -> httpx.Response:
    return client.get("/api/reports/all", params={**auth, "page": n, "per_page": per_page})


def test_missing_or_unknown_token_is_401_json(cc: Any) -> None:
    _, client, _ = cc
    missing = client.get("/api/accounts")
    assert missing.status_code == 401 and missing.json() == {"error": "missing api_token query parameter"}
    wrong = client.get("/api/reports/all", params={"api_token": "cc_test_nope"})
    assert wrong.status_code == 401 and wrong.json() == {"error": "invalid api_token"}
    assert "cc_test_nope" not in wrong.text


def test_rate_limit_headers_then_429_per_token(cc: Any) -> None:
    p, client, auth = cc
    p.set_rate_limit(3)
    seen = [client.get("/api/accounts", params=auth) for _ in range(4)]
    assert [r.status_code for r in seen] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in seen] == ["2", "1", "0", "0"]
    assert all(r.headers["X-RateLimit-Limit"] == "3" for r in seen)
    assert int(seen[-1].headers["Retry-After"]) >= 1 and "error" in seen[-1].json()
    other = client.get("/api/accounts", params={"api_token": p.accounts[1].api_token})
    assert other.status_code == 200, "the limit is per api_token"
    p.set_rate_limit(0)
    unlimited = client.get("/api/accounts", params=auth)
    assert unlimited.status_code == 200 and unlimited.headers["X-RateLimit-Limit"] == "1000000"


def test_error_rate_and_429_bursts(cc: Any) -> None:
    p, client, auth = cc
    p.faults.configure(FaultConfig(error_rate=1.0))
    r = client.get("/api/accounts", params=auth)
    assert r.status_code == 500 and r.json() == {"error": "Server Error"}
    p.faults.configure(FaultConfig(burst_429_rate=1.0, burst_429_length=2, seed=3))
    assert client.get("/api/accounts", params=auth).status_code == 429
    p.faults.configure(FaultConfig(burst_429_rate=0.0))
    assert client.get("/api/accounts", params=auth).status_code == 200


def test_latency_is_added(cc: Any) -> None:
    p, client, auth = cc
    p.faults.configure(FaultConfig(latency_ms=300))
    with pytest.raises(httpx.ReadTimeout):
        client.get("/api/accounts", params=auth, timeout=0.05)


def test_dropped_connection_mid_body(cc: Any) -> None:
    p, client, auth = cc
    p.faults.configure(FaultConfig(drop_rate=1.0))
    with pytest.raises(httpx.RemoteProtocolError):
        page(client, auth, 1)
    assert client.get("/api/accounts", params=auth).status_code == 200, "only list answers are cut off"


def test_malformed_page(cc: Any) -> None:
    p, client, auth = cc
    p.faults.configure(FaultConfig(malformed_page=2))
    assert page(client, auth, 1).json()["current_page"] == 1
    bad = page(client, auth, 2)
    assert bad.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(bad.content)


def test_duplicate_record_across_pages(cc: Any) -> None:
    p, client, auth = cc
    p.faults.configure(FaultConfig(duplicate_record=True))
    one, two = page(client, auth, 1).json(), page(client, auth, 2).json()
    assert two["data"][0] == one["data"][-1] and len(two["data"]) == 11


def test_missing_required_field(cc: Any) -> None:
    p, client, auth = cc
    p.faults.configure(FaultConfig(missing_field=True, missing_field_every=4))
    data = page(client, auth, 1).json()["data"]
    assert [i for i, r in enumerate(data) if "report_key" not in r] == [3, 7]
    invoices = client.get("/api/invoices", params={**auth, "per_page": 4}).json()["data"]
    assert "id" not in invoices[3] and all("id" in inv for inv in invoices[:3])


def test_next_page_url_loops_or_leaves_the_host(cc: Any) -> None:
    p, client, auth = cc
    p.faults.configure(FaultConfig(next_href_loop=True))
    assert "page=1" in page(client, auth, 2).json()["next_page_url"]
    p.faults.configure(FaultConfig(next_href_foreign=True))
    nxt = page(client, auth, 1).json()["next_page_url"]
    assert httpx.URL(nxt).host != httpx.URL(str(client.base_url)).host and "page=2" in nxt


def test_reset_faults_restores_clean_answers(cc: Any) -> None:
    p, client, auth = cc
    p.faults.configure(FaultConfig(error_rate=1.0, missing_field=True))
    p.faults.configure(FaultConfig())
    data = page(client, auth, 1).json()["data"]
    assert len(data) == 10 and all("report_key" in r for r in data)
