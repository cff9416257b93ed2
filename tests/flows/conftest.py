"""Fixtures for the flow tests: one Prefect test server per session, and per-test stores/warehouses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flow_helpers import FlowEnv


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real (temporary, sqlite) Prefect API for the whole session: starting one per test is slow."""
    from prefect.testing.utilities import prefect_test_harness

    import flows  # noqa: F401  (applies the no-telemetry defaults before Prefect starts)

    with prefect_test_harness(server_startup_timeout=120):
        yield
        # bounded: an events worker stuck sending to an API that is gone (seen once in CI: the harness's
        # unbounded drain then hung the session's teardown for pytest-timeout's 300 s). Whatever it has
        # not sent in 30 s is dropped, and the harness's own drain finds no worker left to wait for.
        from prefect.events.worker import EventsWorker

        EventsWorker.drain_all(timeout=30)
        EventsWorker.reset_instances_for_fork()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real `prefect server start` (flows/prefect_server.py, as the demo runs it), started on first use.

    Its scheduler loops every 2 s instead of 60 s, so scheduled runs exist soon after a deploy.
    """
    import os

    from flows.prefect_server import PrefectServer
    from tests.support.asgi_server import free_port

    home = tmp_path_factory.mktemp("prefect-home")
    env = {**os.environ, "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2"}
    server = PrefectServer(home, port=free_port(), base_env=env)  # not 4200: a demo may be running there
    with server:
        yield server


@pytest.fixture
def flow_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> FlowEnv:
    """A fresh warehouse file and encrypted connection store, seen by flows through the environment."""
    from connections.store import open_store

    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("SCREENSYNC_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("SCREENSYNC_CONNECTIONS", str(tmp_path / "connections.sqlite"))
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY", Fernet.generate_key().decode())
    return FlowEnv(warehouse=warehouse, store=open_store())


@dataclass
class Sandboxes:
    """The Checkr and ClearChecks sandbox providers, each on its own loopback port."""

    checkr: Any
    clearchecks: Any
    info: dict[str, Any]


@pytest.fixture(scope="session")
def sandboxes() -> Iterator[Sandboxes]:
    """Small-scale sandboxes shared by the flow tests (tests use their own connection ids and stores)."""
    from sandbox.checkr import CheckrProvider
    from sandbox.clearchecks import ClearChecksProvider
    from sandbox.clock import SandboxClock
    from tests.support.asgi_server import serve_asgi

    clock = SandboxClock()
    checkr = CheckrProvider(seed=11, scale=12, clock=clock, rate_limit=6000)
    clearchecks = ClearChecksProvider(seed=11, scale=12, clock=clock, rate_limit=6000)
    with serve_asgi(checkr.app) as checkr_url, serve_asgi(clearchecks.app) as cc_url:
        yield Sandboxes(
            checkr, clearchecks, {"checkr": checkr.info(checkr_url), "clearchecks": clearchecks.info(cc_url)}
        )
    checkr.close()
