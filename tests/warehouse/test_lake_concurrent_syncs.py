"""Two connections synced by two processes at once into one DuckLake, while Checkr's webhooks for
their accounts are applied by a third (the web app's applier): every table of both connections
equals the sandbox's truth afterwards: 0 lost, 0 duplicated, 0 stale.

The lean, always-on sibling of the soak (tests/soak, `SCREENSYNC_SOAK_WAREHOUSE=ducklake`). Real
parts: a throwaway PostgreSQL catalog, spawned sync processes running the engine against the
sandbox over loopback HTTP, the web app receiving signed deliveries and applying them.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.engine.conftest import Env
from tests.soak.compare import Comparison, compare
from tests.warehouse.lake_fixtures import fresh_lake_sessions, lake_url_fixture  # noqa: F401 (fixtures)
from tests.warehouse.lake_workers import sync_rounds

pytest_plugins = ["tests.support.postgres"]
SYNCS = ["candidates", "reports", "invitations"]  # what Checkr's webhooks change (sync = table here)


def _settled(store: Any, timeout: float) -> list[dict[str, Any]]:
    """Wait until no webhook event is pending; what is still pending after `timeout`."""
    deadline = time.monotonic() + timeout
    while (pending := store.events(status="pending", integration="checkr")) and time.monotonic() < deadline:
        time.sleep(0.2)
    return pending


def test_concurrent_syncs_of_two_connections_and_webhooks_lose_and_double_nothing(
    url: str, tmp_path: Path, fresh_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from common.asgi_thread import serve_in_thread
    from connections.store import open_store
    from connections.web.app import create_app
    from flows.webhook_applier import WebhookApplier
    from integrations.engine.batches import targets_for
    from integrations.engine.registry import get_integration
    from sandbox.checkr.webhook_chaos import WebhookChaos
    from warehouse.loader import Warehouse

    for key, value in {"SCREENSYNC_WAREHOUSE": url, "SCREENSYNC_CONNECTIONS": str(tmp_path / "connections.sqlite"),
                       "SCREENSYNC_SECRET_KEY": Fernet.generate_key().decode()}.items():
        monkeypatch.setenv(key, value)
    store = open_store()
    sandbox = fresh_sandbox(scale=10)
    env = Env(store=store, db=url)  # type: ignore[arg-type]
    accounts = {f"cust-{n}": env.connect(sandbox, "checkr", f"cust-{n}", account=n) for n in range(2)}
    checkr = get_integration("checkr")  # its tables made once, before the writers (as `warehouse migrate` does)
    Warehouse(url).ensure_tables(t for s in checkr.definition.syncs for t in targets_for(checkr, s).all())
    rounds = 2  # the second is the catch-up: what changed while the first ran, read again
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(accounts) + 1), ctx.Queue()
    procs = [ctx.Process(target=sync_rounds, args=(url, "checkr", cid, SYNCS, rounds, barrier, results))
             for cid in accounts]
    for p in procs:
        p.start()
    provider = sandbox.provider("checkr")
    outcomes: list[Any] = []
    try:
        with serve_in_thread(create_app(store, applier=WebhookApplier(store, url))) as web:
            provider.set_webhook_url(f"{web}/webhooks/checkr")
            sandbox.set_webhook_chaos("checkr", WebhookChaos(seed=7, duplicate_rate=0.2, shuffle=True, delay_ms=5,
                                                              concurrency=4))
            for n in range(rounds):
                barrier.wait(timeout=180)
                if n == 0:  # reports complete and webhooks arrive while both first loads are landing
                    for _ in range(3):
                        sandbox.advance(days=3)
                        time.sleep(0.3)
                outcomes += [results.get(timeout=240) for _ in procs]
                sandbox.flush_webhooks("checkr", timeout=60)
                pending = _settled(store, 60)
                assert not pending, f"{len(pending)} webhook event(s) left pending"
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    failed = [(cid, n, o) for cid, n, runs in outcomes for o in runs if o[1] != "success"]
    assert len(outcomes) == rounds * len(accounts) and not failed, failed
    applied = store.events(status="processed", integration="checkr")
    assert applied, "no webhook was applied: the writers never raced"

    result = Comparison()
    for cid, account in accounts.items():
        truth = sandbox.truth("checkr", account)
        truth = truth.model_copy(update={"tables": {t: truth.tables[t] for t in SYNCS}})
        compare(url, "checkr", cid, truth, result)  # type: ignore[arg-type]
    assert result.total == 0, [result.by_kind(), *result.examples]
    assert min(result.compared.values()) > 0 and sum(result.compared.values()) > 30, result.compared
    webhook_rows = env.rows("SELECT count(*) FROM checkr.reports WHERE _run_id LIKE 'webhook:%'")
    assert webhook_rows[0][0] > 0  # some current versions came by webhook, beside the syncs' writes
