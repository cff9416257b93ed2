"""Each fault knob of the Checkr sandbox, seen by a real HTTP client (each test resets what it set)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from checkr_helpers import api, control

from sandbox.checkr.listing import FOREIGN_HOST
from sandbox.server import SandboxServer


@pytest.fixture
def faults(sandbox: SandboxServer) -> Iterator[Any]:
    def set_faults(**config: Any) -> None:
        control(sandbox, "PUT", "/faults/checkr", json=config).raise_for_status()

    yield set_faults
    control(sandbox, "DELETE", "/faults/checkr").raise_for_status()


@pytest.fixture
def client(sandbox: SandboxServer) -> httpx.Client:
    return api(sandbox.info["checkr"], 1)


def test_error_rate(faults: Any, client: httpx.Client) -> None:
    faults(error_rate=1.0)
    r = client.get("/account")
    assert r.status_code == 503 and r.json() == {"error": "Service Unavailable"}
    faults(error_rate=0.5, seed=3)
    codes = [client.get("/account").status_code for _ in range(40)]
    assert 0 < codes.count(503) < 40 and set(codes) == {200, 503}


def test_429_bursts(faults: Any, client: httpx.Client) -> None:
    faults(burst_429_rate=1.0, burst_429_length=3)
    r = client.get("/account")
    assert r.status_code == 429 and r.json() == {"error": "Too Many Requests"}
    assert "X-Ratelimit-Reset" in r.headers
    faults(burst_429_rate=0.2, burst_429_length=3, seed=1)
    codes = [client.get("/account").status_code for _ in range(60)]
    runs = "".join("x" if c == 429 else "." for c in codes).split(".")
    assert any(len(run) >= 3 for run in runs)  # bursts, not single failures


def test_latency_is_added(faults: Any, client: httpx.Client, sandbox: SandboxServer) -> None:
    faults(latency_ms=400)
    r = client.get("/account")
    assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.4  # a lower bound only, never an upper one


def test_dropped_connection_mid_body(faults: Any, client: httpx.Client) -> None:
    faults(drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/candidates")
    assert client.get("/account").status_code == 200  # only list responses are cut


def test_malformed_page(faults: Any, client: httpx.Client) -> None:
    faults(malformed_page=2)
    assert client.get("/candidates").json()["count"] > 0
    r = client.get("/candidates", params={"page": 2})
    assert r.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)


def test_duplicate_record_across_pages(faults: Any, client: httpx.Client) -> None:
    clean = client.get("/candidates", params={"per_page": 5}).json()["data"]
    faults(duplicate_record=True)
    first = client.get("/candidates", params={"per_page": 5}).json()["data"]
    second = client.get("/candidates", params={"per_page": 5, "page": 2}).json()["data"]
    assert first == clean and second[0] == first[-1] and len(second) == 6


def test_missing_required_field(faults: Any, client: httpx.Client) -> None:
    faults(missing_field=True, missing_field_every=3)
    page = client.get("/candidates", params={"per_page": 12}).json()["data"]
    broken = [n for n, c in enumerate(page) if "id" not in c or "created_at" not in c]
    assert broken == [2, 5, 8, 11]
    assert {"id", "created_at"} & set(page[0]) == {"id", "created_at"}


def test_next_href_loops_or_goes_elsewhere(faults: Any, client: httpx.Client) -> None:
    faults(next_href_loop=True)
    second = client.get("/candidates", params={"page": 2, "per_page": 5}).json()
    assert httpx.URL(second["next_href"]).params["page"] == "1"
    faults(next_href_foreign=True)
    first = client.get("/candidates", params={"per_page": 5}).json()
    assert httpx.URL(first["next_href"]).host == FOREIGN_HOST


def test_bad_fault_config_is_rejected(sandbox: SandboxServer) -> None:
    r = control(sandbox, "PUT", "/faults/checkr", json={"error_rate": 2})
    assert r.status_code == 400 and "error_rate" in r.json()["error"]
    r = control(sandbox, "PUT", "/faults/nope", json={})
    assert r.status_code == 404 and "nope" in r.json()["error"]


def test_rate_limit_per_credential(sandbox: SandboxServer) -> None:
    section = sandbox.info["checkr_staging"]
    control(sandbox, "PUT", "/rate_limit/checkr_staging", json={"per_minute": 3}).raise_for_status()
    try:
        a, b = api(section, 0), api(section, 1)
        codes = [a.get("/account").status_code for _ in range(5)]
        # a window can roll over between calls; at most one reset fits in five quick requests
        assert codes.count(429) >= 1 and codes[:3].count(200) >= 1
        limited = next(r for r in (a.get("/account") for _ in range(5)) if r.status_code == 429)
        assert limited.headers["X-Ratelimit-Remaining"] == "0" and limited.json() == {"error": "Too Many Requests"}
        assert b.get("/account").status_code == 200  # another credential has its own budget
    finally:
        control(sandbox, "PUT", "/rate_limit/checkr_staging", json={"per_minute": 1200}).raise_for_status()
