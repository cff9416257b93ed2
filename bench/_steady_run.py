"""Child process of bench/steady_state.py: one scenario, its clock following the sandbox's.

    (started by steady_state.py with libfaketime preloaded; argv[1] is the scenario as JSON)

A fresh sandbox (its own process) with the account's history; the first sync of every sync lands
it (not measured); then `hours` simulated hours in steps: the sandbox moves on (its world changes
and, with webhooks, it delivers them to our receiver, whose applier lands them), our clock follows,
and every sync whose schedule (definition.yaml `frequency`, the `sweep`) comes round runs in this
process, as the deployment would run it. A change-feed consumer reads all along. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._sandbox_proc import sandbox_process, set_rate_limit
from bench._steady_clock import FollowedClock
from bench._steady_measure import FeedConsumer, lags, parse_time

CONNECTION = "bench"


def _schedules(integration: str) -> list[tuple[str, int, bool]]:
    """(sync, every seconds, full refresh) for each schedule of the integration's deployment."""
    from integrations.engine.registry import frequency_seconds, get_integration, sync_frequency_seconds

    out = []
    for s in get_integration(integration).definition.syncs:
        every = sync_frequency_seconds(s)
        if every:
            out.append((s.name, every, False))
        if s.sweep and (sweep := frequency_seconds(s.sweep, s.name)):
            out.append((s.name, sweep, True))
    return out


def _today(integration: str, sync: str) -> None:
    """Today's behaviour: the re-poll without its `due:` block (every open record, every run)."""
    from integrations.engine.registry import get_integration

    repoll = get_integration(integration).definition.sync(sync).repoll
    assert repoll is not None
    object.__setattr__(repoll, "due", None)  # the definition is frozen; this process only, for the yardstick


def _connect(store: Any, integration: str, section: dict[str, Any]) -> str:
    from connections.models import Connection, ConnectionMetadata, Credentials

    acct = section["accounts"][0]
    store.add(Connection(connection_id=CONNECTION, integration=integration, credential_kind="api_key",
                         metadata=ConnectionMetadata(base_url=section["base_url"], environment="sandbox",
                                                     provider_account_id=acct["id"] if "api_key" in acct else None)),
              Credentials(token=acct.get("api_key") or acct.get("api_token")))
    return str(acct["id"])


def main() -> None:
    sc = json.loads(sys.argv[1])
    provider, integration, repoll = sc["provider"], sc["integration"], sc["repoll"]
    tmp = Path(tempfile.mkdtemp())
    os.environ["SCREENSYNC_CONNECTIONS"] = str(tmp / "connections.sqlite")
    os.environ["SCREENSYNC_SECRET_KEY"] = Fernet.generate_key().decode()
    os.environ["SCREENSYNC_WAREHOUSE"] = str(tmp / "warehouse.duckdb")
    clock = FollowedClock()

    from common.asgi_thread import serve_in_thread
    from connections.store import open_store
    from connections.web.app import create_app
    from flows.webhook_applier import WebhookApplier
    from integrations.engine.sync_runner import run_sync
    from warehouse.loader import Warehouse

    if not sc["due"]:
        _today(integration, repoll)
    db = tmp / "warehouse.duckdb"
    store = open_store()
    with sandbox_process(scale=sc["scale"], seed=sc["seed"], open_reports={provider: sc["open"]}) as info:
        control = info["control_url"]
        set_rate_limit(info, provider, 0)  # we count requests against the budget; the sandbox need not enforce it
        if sc.get("activity"):
            httpx.put(f"{control}/activity/{provider}", json=sc["activity"]).raise_for_status()
        account = _connect(store, integration, info[provider])
        start = parse_time(httpx.get(f"{control}/clock").json()["now"])
        clock.set(start, start=True)

        def sync(name: str, full: bool = False) -> Any:
            with Warehouse(db) as wh:
                return run_sync(integration, CONNECTION, name, warehouse=wh, store=store, full_refresh=full)

        t0 = time.perf_counter()
        for name, _, full in _schedules(integration):  # the first sync: lands the account (not measured)
            if not full:
                assert sync(name).ok, name
        first_s = time.perf_counter() - t0
        ((open_now,),) = Warehouse(db).execute(sc["open_sql"]).rows

        applier = WebhookApplier(store, db)
        feed = FeedConsumer(db)
        requests: dict[str, int] = {}
        runs = 0
        spent = {"advance": 0.0, "webhooks": 0.0, "syncs": 0.0}  # wall seconds of the loop, by part
        with serve_in_thread(create_app(store, applier=applier), timeout=180) as web, feed:
            if sc["webhooks"]:
                httpx.put(f"{control}/webhooks", json={"url": f"{web}/webhooks/{provider}", "provider": provider}
                          ).raise_for_status()
            schedules = _schedules(integration)
            step, total, t = sc["step"], sc["hours"] * 3600, 0
            t1 = time.perf_counter()
            stop = threading.Event()  # SIGTERM ends the run early: the figures then cover the hours done
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            while t < total and not stop.is_set():
                dt = min(step, total - t)
                t += dt
                tick = time.perf_counter()
                new = httpx.post(f"{control}/advance", json={"seconds": dt}, timeout=120).json()["new"]
                clock.set(parse_time(new))
                spent["advance"] += time.perf_counter() - tick
                tick = time.perf_counter()
                if sc["webhooks"]:
                    httpx.post(f"{control}/webhooks/{provider}/flush", json={"timeout": 60}, timeout=90)
                    deadline = time.monotonic() + 60
                    while store.events(status="pending", integration=integration, limit=1):
                        if time.monotonic() > deadline:
                            raise RuntimeError("webhook events still pending after 60 s")
                        applier.wake()
                        time.sleep(0.01)
                spent["webhooks"] += time.perf_counter() - tick
                tick = time.perf_counter()
                for name, every, full in schedules:
                    if t % every == 0:
                        result = sync(name, full)
                        assert result.ok, (name, result.error)
                        requests[name] = requests.get(name, 0) + result.requests
                        runs += 1
                spent["syncs"] += time.perf_counter() - tick
            loop_s = time.perf_counter() - t1
            end = parse_time(httpx.get(f"{control}/clock").json()["now"])
        truth = httpx.get(f"{control}/export/{provider}", params={"account": account}, timeout=300).json()[account]
    print(json.dumps({
        "name": sc["name"], "open_at_start": open_now, "runs": runs, "requests": requests,
        "repoll_requests": requests.get(repoll, 0), "hours": t / 3600,
        "lag": lags(db, sc["lag"], truth, start, end), "feed": feed.result(db),
        "first_sync_s": round(first_s, 1), "loop_s": round(loop_s, 1),
        "spent_s": {k: round(v, 1) for k, v in spent.items()},
    }))


if __name__ == "__main__":
    main()
