"""End to end the production way: a real `prefect server`, a process work pool, `prefect deploy` from
prefect.yaml, a triggered sync deployment executed by `prefect worker start --run-once`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from flow_helpers import FlowEnv, read_rows

from tests.support.asgi_server import free_port, serve_asgi

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    proc = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"prefect {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A real server on a free loopback port with its own PREFECT_HOME (sqlite); yields the env to use it."""
    port = free_port()
    home = tmp_path / "prefect-home"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "screensync",
        "PWD": str(REPO),  # prefect.yaml's pull step records the checkout from $PWD at deploy time
    }
    env.pop("PREFECT_PROFILES_PATH", None)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start:\n{(tmp_path / 'server.log').read_text()}")
            time.sleep(0.3)
        yield env
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _client_call(env: dict[str, str], fn: Any) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}), get_client(sync_client=True) as client:
        return fn(client)


@pytest.fixture
def clearchecks_sandbox() -> Iterator[tuple[Any, str]]:
    """The ClearChecks sandbox on a real loopback port (small scale: this test is about orchestration)."""
    from sandbox.clearchecks import ClearChecksProvider
    from sandbox.clock import SandboxClock

    provider = ClearChecksProvider(seed=7, scale=15, clock=SandboxClock(), rate_limit=6000)
    with serve_asgi(provider.app) as base:
        yield provider, base


def test_deployed_sync_runs_on_a_process_worker_and_lands_rows(
    prefect_server: dict[str, str], tmp_path: Path, clearchecks_sandbox: tuple[Any, str]
) -> None:
    from connections.store import open_store

    provider, base_url = clearchecks_sandbox
    env = {
        **prefect_server,
        "SCREENSYNC_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "SCREENSYNC_CONNECTIONS": str(tmp_path / "connections.sqlite"),
        "SCREENSYNC_SECRET_KEY": Fernet.generate_key().decode(),
    }
    with pytest.MonkeyPatch.context() as mp:  # the store reads its key from the environment
        mp.setenv("SCREENSYNC_SECRET_KEY", env["SCREENSYNC_SECRET_KEY"])
        store = open_store(env["SCREENSYNC_CONNECTIONS"])
        FlowEnv(Path(env["SCREENSYNC_WAREHOUSE"]), store).add(
            "clearchecks", "e2e-1", provider.accounts[0].api_token, base_url
        )

    _run(["work-pool", "create", "--type", "process", "screensync"], env)
    _run(["deploy", "--name", "sync-clearchecks"], env)
    out = _run(
        [
            "deployment",
            "run",
            "sync-integration/sync-clearchecks",
            "-p",
            'connections=["e2e-1"]',
            "-p",
            'models=["account", "packages"]',
        ],
        env,
    )
    assert "sync-integration/sync-clearchecks" in out
    _run(["worker", "start", "--pool", "screensync", "--run-once"], env, timeout=180)

    def finished_runs(client: Any) -> list[Any]:
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["sync-clearchecks"]))
        )

    runs = _client_call(env, finished_runs)
    manual = [r for r in runs if r.parameters.get("connections") == ["e2e-1"]]
    assert len(manual) == 1
    run = manual[0]
    assert run.state is not None and run.state.is_completed(), run.state

    warehouse = Path(env["SCREENSYNC_WAREHOUSE"])
    assert read_rows(warehouse, "select count(*) from clearchecks.accounts where connection_id = 'e2e-1'") == [(1,)]
    assert read_rows(warehouse, "select count(*) from clearchecks.packages where connection_id = 'e2e-1'")[0][0] > 0

    def artifacts(client: Any) -> list[Any]:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        return client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))

    found = {a.key: a for a in _client_call(env, artifacts)}
    table = found["sync-clearchecks"].data
    rows = table if isinstance(table, list) else json.loads(table)
    assert {(r["connection"], r["sync"], r["status"]) for r in rows} == {
        ("e2e-1", "account", "success"),
        ("e2e-1", "packages", "success"),
    }
