"""Checkr webhook delivery chaos, seen by a real receiver: lost, duplicated, late, shuffled, held, concurrent."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from checkr_helpers import api, control, receiver
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sandbox.checkr.webhook_chaos import WebhookChaos
from tests.support.asgi_server import serve_asgi


def _events_log(server: Any) -> dict[str, dict[str, Any]]:
    return {e["event_id"]: e for e in control(server, "GET", "/webhooks/checkr/events").json()["events"]}


def _run_with_losses(fresh_sandbox: Any) -> tuple[Counter[str], dict[str, dict[str, Any]], dict[str, Any]]:
    server = fresh_sandbox(scale=80)
    with receiver() as hooks:
        control(server, "PUT", "/webhooks", json={"url": hooks.url, "provider": "checkr"}).raise_for_status()
        chaos = {"seed": 5, "drop_rate": 0.25, "duplicate_rate": 0.25}
        control(server, "PUT", "/webhooks/checkr/chaos", json=chaos).raise_for_status()
        control(server, "POST", "/advance", json={"days": 20}).raise_for_status()
        summary = control(server, "POST", "/webhooks/checkr/flush", json={}).json()
        return Counter(e["id"] for e in hooks.events()), _events_log(server), summary


def test_lost_and_duplicated_events_are_logged_and_replay_per_seed(fresh_sandbox: Any) -> None:
    got, log, summary = _run_with_losses(fresh_sandbox)
    dropped = {i for i, e in log.items() if e["state"] == "dropped"}
    doubled = {i for i, e in log.items() if e["copies"] == 2}
    assert len(log) > 40 and dropped and doubled
    assert set(got) == set(log) - dropped, "every event but the lost ones arrived; no lost one ever did"
    assert {i for i, n in got.items() if n == 2} == doubled and max(got.values()) == 2
    assert all(log[i]["delivered"] == 2 for i in doubled)
    assert summary["emitted"] == len(log) and summary["dropped"] == len(dropped)
    assert summary["delivered"] == len(log) - len(dropped) and summary["held"] == summary["queued"] == 0
    assert summary["duplicated"] == len(doubled)
    _, again, _ = _run_with_losses(fresh_sandbox)  # same seed, same world: the same events are lost
    assert {i for i, e in again.items() if e["state"] == "dropped"} == dropped


def test_a_late_event_arrives_after_a_newer_one(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=20)
    client = api(server.info["checkr"], 1)
    with receiver() as hooks:
        server.providers["checkr"].set_webhook_url(hooks.url)
        candidate = client.post("/candidates", json={"email": "late@example.org"}).json()
        server.set_webhook_chaos("checkr", WebhookChaos(late_rate=1.0, late_advances=0))
        slug = client.get("/packages").json()["data"][0]["slug"]
        report = client.post("/reports", json={"candidate_id": candidate["id"], "package": slug}).json()
        assert [e["state"] for e in server.webhook_events("checkr", event_type="report.created")] == ["held"]
        server.set_webhook_chaos("checkr")  # later events go out at once; the late one stays held
        server.advance(days=6)  # the report completes
        server.flush_webhooks("checkr")
        mine = [e for e in hooks.events() if e["data"]["object"].get("id") == report["id"]]
    assert [e["type"] for e in mine] == ["report.completed", "report.created"]
    assert mine[1]["data"]["object"]["status"] == "pending" and mine[0]["data"]["object"]["status"] != "pending"
    assert {e["state"] for e in server.webhook_events("checkr")} == {"delivered"}


def test_an_advance_goes_out_in_time_order_unless_shuffled(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=80)
    with receiver() as hooks:
        control(server, "PUT", "/webhooks", json={"url": hooks.url, "provider": "checkr"}).raise_for_status()
        control(server, "POST", "/advance", json={"days": 10}).raise_for_status()
        control(server, "POST", "/webhooks/checkr/flush", json={}).raise_for_status()
        in_order = [e["created_at"] for e in hooks.events()]
        control(server, "PUT", "/webhooks/checkr/chaos", json={"seed": 3, "shuffle": True}).raise_for_status()
        control(server, "POST", "/advance", json={"days": 10}).raise_for_status()
        control(server, "POST", "/webhooks/checkr/flush", json={}).raise_for_status()
        shuffled = [e["created_at"] for e in hooks.events()][len(in_order) :]
    assert len(in_order) > 10 and in_order == sorted(in_order)
    assert len(shuffled) > 10 and shuffled != sorted(shuffled)


class _SlowHook:
    """Answers after 0.15 s and remembers the most deliveries it held at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = self.count = 0

    async def handle(self, request: Request) -> PlainTextResponse:
        await request.body()
        with self.lock:
            self.now += 1
            self.count += 1
            self.peak = max(self.peak, self.now)
        await asyncio.sleep(0.15)
        with self.lock:
            self.now -= 1
        return PlainTextResponse("ok")


@contextmanager
def _slow_receiver() -> Iterator[tuple[_SlowHook, str]]:
    hook = _SlowHook()
    with serve_asgi(Starlette(routes=[Route("/hook", hook.handle, methods=["POST"])])) as base:
        yield hook, f"{base}/hook"


def test_held_events_wait_for_flush_then_arrive_in_a_concurrent_burst(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=60)
    with _slow_receiver() as (hook, url):
        control(server, "PUT", "/webhooks", json={"url": url, "provider": "checkr"}).raise_for_status()
        chaos = {"hold": True, "concurrency": 8}
        control(server, "PUT", "/webhooks/checkr/chaos", json=chaos).raise_for_status()
        control(server, "POST", "/advance", json={"days": 15}).raise_for_status()
        held = control(server, "GET", "/webhooks/checkr/events", params={"state": "held"}).json()
        pending = control(server, "GET", "/webhooks/checkr/deliveries").json()["pending"]
        assert hook.count == 0 and held["summary"]["emitted"] == len(held["events"]) == pending > 8
        summary = control(server, "POST", "/webhooks/checkr/flush", json={"timeout": 60}).json()
    assert summary["delivered"] == summary["emitted"] == hook.count
    assert hook.peak >= 4, "deliveries went out several at once"  # a single sender would show 1


def test_chaos_settings_are_validated(sandbox: Any) -> None:
    r = control(sandbox, "PUT", "/webhooks/checkr/chaos", json={"drop_rate": 2})
    assert r.status_code == 400 and "drop_rate" in r.json()["error"]
    r = control(sandbox, "PUT", "/webhooks/checkr/chaos", json={"reorder": True})
    assert r.status_code == 400 and "reorder" in r.json()["error"]
    r = control(sandbox, "PUT", "/webhooks/clearchecks/chaos", json={})
    assert r.status_code == 400 and "no webhooks" in r.json()["error"]
    assert control(sandbox, "POST", "/webhooks/nope/flush", json={}).status_code == 404
    off = control(sandbox, "DELETE", "/webhooks/checkr/chaos").json()
    assert off == WebhookChaos().model_dump()
