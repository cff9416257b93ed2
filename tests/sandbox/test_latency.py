"""Per-provider latency with seeded jitter on every API route, served concurrently, with the other faults intact."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from checkr_helpers import api, control

from sandbox.faults import FaultConfig, FaultInjector


def test_jitter_draws_are_seeded_and_within_bounds() -> None:
    draws = []
    for _ in range(2):
        f = FaultInjector(FaultConfig(latency_ms=100, latency_jitter_ms=50, seed=4))
        draws.append([f.latency_seconds() for _ in range(200)])
    assert draws[0] == draws[1] and all(0.1 <= d <= 0.15 for d in draws[0]) and len(set(draws[0])) > 100
    plain = FaultInjector(FaultConfig(error_rate=0.5, seed=4))
    jittered = FaultInjector(FaultConfig(error_rate=0.5, latency_ms=10, latency_jitter_ms=5, seed=4))
    seq = []
    for f in (plain, jittered):
        out = []
        for _ in range(50):
            f.latency_seconds()
            out.append(f.draw(0.5))
        seq.append(out)
    assert seq[0] == seq[1], "jitter draws do not shift the fault sequence"


def _delayed(server: Any, key: str) -> int:
    return int(control(server, "GET", f"/faults/{key}").json()["stats"]["delayed_requests"])


def test_latency_applies_to_every_checkr_route_and_answer(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=10)
    section = server.info["checkr"]
    client = api(section, 0)
    candidate = client.get("/candidates", params={"per_page": 1}).json()["data"][0]
    r = control(server, "PUT", "/latency/checkr", json={"ms": 60, "jitter_ms": 20})
    assert r.status_code == 200 and (r.json()["latency_ms"], r.json()["latency_jitter_ms"]) == (60, 20)
    answers = [
        client.get("/account"),
        client.get(f"/candidates/{candidate['id']}"),
        client.get(f"/reports/{candidate['report_ids'][0]}"),
        client.get("/reports/000000000000000000000000"),  # 404
        client.post("/candidates", json={"email": "slow@example.org"}),
        httpx.get(section["base_url"] + "/v1/account", auth=("sk_test_wrong", "")),  # 401
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 404, 201, 401]
    assert all(a.elapsed.total_seconds() >= 0.06 for a in answers)  # a lower bound only
    assert _delayed(server, "checkr") == len(answers), "each answer waited its latency"
    assert _delayed(server, "checkr_staging") == 0, "latency is per provider"


def test_latency_applies_to_clearchecks_by_key_routes(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=10)
    server.providers["clearchecks"].set_rate_limit(0)
    token = server.providers["clearchecks"].accounts[0].api_token
    with httpx.Client(base_url=server.info["clearchecks"]["base_url"], params={"api_token": token}) as client:
        key = client.get("/api/reports/all").json()["data"][0]["report_key"]
        server.set_latency("clearchecks", 100, 20)
        answers = [client.get(f"/api/reports/{key}/status"), client.get(f"/api/report/{key}"), client.get("/api/x/y")]
    assert [a.status_code for a in answers[:2]] == [200, 200] and all(
        a.elapsed.total_seconds() >= 0.1 for a in answers[:2]
    )
    assert _delayed(server, "clearchecks") == 2  # unknown routes are not API routes


def test_a_waiting_request_does_not_hold_up_the_others(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=10)
    client_section = server.info["checkr"]
    server.set_latency("checkr", 800)
    start = threading.Barrier(8)
    codes: list[int] = []

    def one() -> None:
        with api(client_section, 0) as c:
            start.wait()
            codes.append(c.get("/account").status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 8
    # a server that slept in its event loop would hold one request at a time
    assert control(server, "GET", "/faults/checkr").json()["stats"]["peak_waiting"] >= 4


def test_faults_still_fire_with_latency_and_set_latency_keeps_them(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=10)
    client = api(server.info["checkr"], 0)
    control(
        server, "PUT", "/faults/checkr", json={"error_rate": 0.4, "burst_429_rate": 0.2, "seed": 2}
    ).raise_for_status()
    kept = control(server, "PUT", "/latency/checkr", json={"ms": 5, "jitter_ms": 5}).json()
    assert kept["error_rate"] == 0.4 and kept["burst_429_rate"] == 0.2
    codes = {client.get("/account").status_code for _ in range(40)}
    assert {200, 429, 503} <= codes
    control(server, "PUT", "/faults/checkr", json={"drop_rate": 1.0, "latency_ms": 10}).raise_for_status()
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/candidates")
    assert control(server, "PUT", "/latency/checkr", json={"ms": -1}).status_code == 400
    assert control(server, "PUT", "/latency/nope", json={"ms": 1}).status_code == 404
