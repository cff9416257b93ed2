"""End to end the production way, against one real `prefect server` (flows/prefect_server.py).

`prefect deploy` from prefect.yaml on a process work pool, two triggered sync deployment runs (one
connection that works, one whose token the provider refuses) executed by `prefect worker start
--run-once`; then what an operator relies on: rows in the warehouse, the run's artifact and logs,
the `screensync.sync.*` events on the server, the documented failure automation's notification,
and `screensync status` with Prefect's next scheduled runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from flow_helpers import FlowEnv, read_rows
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.asgi_server import free_port, serve_asgi

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # starts a server, deploys, runs a worker
GOOD, BAD = "e2e-1", "e2e-bad"


def _prefect(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"prefect {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _eventually(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout:.0f}s")
        time.sleep(1)


@dataclass
class Deployed:
    """What the module's one deploy + worker run left behind."""

    env: dict[str, str]
    warehouse: Path
    runs: dict[str, Any]  # connection id -> its flow run
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def client_call(self, fn: Callable[[Any], Any]) -> Any:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.env["PREFECT_API_URL"]}), get_client(sync_client=True) as client:
            return fn(client)


def _alert_receiver(alerts: list[dict[str, Any]]) -> Starlette:
    """Stands in for Slack or Teams: records what the automation's notification block posts."""

    async def receive(request: Request) -> Response:
        alerts.append(await request.json())
        return Response(status_code=204)

    return Starlette(routes=[Route("/alerts", receive, methods=["POST"])])


def _create_failure_automation(api_url: str, receiver: str) -> None:
    """As docs/operations.md shows: save a notification block, then `notify_on_sync_failure`."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.automations import notify_on_sync_failure

    with temporary_settings({PREFECT_API_URL: api_url}):
        CustomWebhookNotificationBlock(
            name="screensync-tests", url=f"{receiver}/alerts", json_data={"subject": "{{subject}}", "body": "{{body}}"}
        ).save("screensync-alerts", overwrite=True)
        notify_on_sync_failure("custom-webhook/screensync-alerts")


@pytest.fixture(scope="module")
def deployed(prefect_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    from connections.store import open_store
    from sandbox.clearchecks import ClearChecksProvider
    from sandbox.clock import SandboxClock

    tmp = tmp_path_factory.mktemp("e2e")
    env = {
        **prefect_server.env,
        "SCREENSYNC_WAREHOUSE": str(tmp / "warehouse.duckdb"),
        "SCREENSYNC_CONNECTIONS": str(tmp / "connections.sqlite"),
        "SCREENSYNC_SECRET_KEY": Fernet.generate_key().decode(),
        "PWD": str(REPO),  # prefect.yaml's pull step records the checkout from $PWD at deploy time
    }
    alerts: list[dict[str, Any]] = []
    provider = ClearChecksProvider(seed=7, scale=15, clock=SandboxClock(), rate_limit=6000)
    with serve_asgi(provider.app) as base_url, serve_asgi(_alert_receiver(alerts)) as receiver:
        with pytest.MonkeyPatch.context() as mp:  # the store reads its key from the environment
            mp.setenv("SCREENSYNC_SECRET_KEY", env["SCREENSYNC_SECRET_KEY"])
            flow_env = FlowEnv(Path(env["SCREENSYNC_WAREHOUSE"]), open_store(env["SCREENSYNC_CONNECTIONS"]))
            flow_env.add("clearchecks", GOOD, provider.accounts[0].api_token, base_url)
            flow_env.add("clearchecks", BAD, "a-token-the-provider-refuses", base_url)
        _create_failure_automation(prefect_server.api_url, receiver)

        _prefect(["work-pool", "create", "--type", "process", "screensync"], env)
        _prefect(["deploy", "--name", "sync-clearchecks"], env)
        for connection, models in ((GOOD, '["account", "packages"]'), (BAD, '["account"]')):
            out = _prefect(
                ["deployment", "run", "sync-integration/sync-clearchecks",
                 "-p", f'connections=["{connection}"]', "-p", f"syncs={models}"],
                env,
            )  # fmt: skip
            assert "sync-integration/sync-clearchecks" in out
        _prefect(["worker", "start", "--pool", "screensync", "--run-once"], env, timeout=240)

        deployed = Deployed(env=env, warehouse=Path(env["SCREENSYNC_WAREHOUSE"]), runs={}, alerts=alerts)

        def manual_runs(client: Any) -> list[Any]:
            from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

            return client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["sync-clearchecks"]))
            )

        for run in deployed.client_call(manual_runs):
            connections = run.parameters.get("connections") or []
            if len(connections) == 1:
                deployed.runs[connections[0]] = run
        yield deployed


def test_deployed_sync_runs_on_a_process_worker_and_lands_rows(deployed: Deployed) -> None:
    run = deployed.runs[GOOD]
    assert run.state is not None and run.state.is_completed(), run.state
    count = f"select count(*) from clearchecks.%s where connection_id = '{GOOD}'"
    assert read_rows(deployed.warehouse, count % "accounts") == [(1,)]
    assert read_rows(deployed.warehouse, count % "packages")[0][0] > 0

    def artifacts(client: Any) -> list[Any]:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        return client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))

    found = {a.key: a for a in deployed.client_call(artifacts)}
    table = found["sync-clearchecks"].data
    rows = table if isinstance(table, list) else json.loads(table)
    assert {(r["connection"], r["sync"], r["status"]) for r in rows} == {
        (GOOD, "account", "success"),
        (GOOD, "packages", "success"),
    }


def test_run_logs_carry_the_engines_info_lines(deployed: Deployed) -> None:
    """A run's Logs tab explains it: the engine's own INFO lines reach Prefect, not only the flow's."""
    run = deployed.runs[GOOD]

    def logs(client: Any) -> list[Any]:
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        return client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200)

    lines = [(log.name, log.message) for log in deployed.client_call(logs)]
    assert ("screensync.sync", f"sync clearchecks/{GOOD}/account starting (full)") in lines
    assert any(n == "screensync.sync" and m.startswith(f"sync clearchecks/{GOOD}/packages success: +") for n, m in lines)
    assert any(f"connection={GOOD} sync=packages: 1 page(s), +" in m for _, m in lines)


def _screensync_events(api_url: str) -> list[dict[str, Any]]:
    body = {"filter": {"event": {"prefix": ["screensync.sync."]}}, "limit": 50}
    response = httpx.post(f"{api_url}/events/filter", json=body, timeout=10)
    response.raise_for_status()
    return response.json()["events"]


def test_each_finished_sync_emits_an_event_that_reaches_the_server(deployed: Deployed) -> None:
    wanted = {
        ("screensync.sync.completed", f"screensync.sync.clearchecks.{GOOD}.account"),
        ("screensync.sync.completed", f"screensync.sync.clearchecks.{GOOD}.packages"),
        ("screensync.sync.failed", f"screensync.sync.clearchecks.{BAD}.account"),
    }

    def arrived() -> list[dict[str, Any]]:
        events = _screensync_events(deployed.env["PREFECT_API_URL"])
        return events if wanted <= {(e["event"], e["resource"]["prefect.resource.id"]) for e in events} else []

    found = _eventually(arrived, "the sync events on the server")
    assert len(found) == 3, [e["resource"]["prefect.resource.id"] for e in found]  # one per finished sync
    events = {e["resource"]["prefect.resource.id"]: e for e in found}

    packages = events[f"screensync.sync.clearchecks.{GOOD}.packages"]
    assert packages["resource"]["screensync.connection"] == GOOD
    assert packages["resource"]["screensync.sync"] == "packages"
    assert packages["resource"]["screensync.status"] == "success"
    assert packages["payload"]["added"] > 0 and packages["payload"]["error"] is None
    related = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in packages["related"]}
    assert related["flow-run"] == f"prefect.flow-run.{deployed.runs[GOOD].id}"
    assert related["deployment"].startswith("prefect.deployment.")

    failed = events[f"screensync.sync.clearchecks.{BAD}.account"]
    assert failed["resource"]["screensync.status"] == "failed"
    assert "401" in failed["payload"]["error"]
    assert failed["payload"]["added"] == 0
    assert deployed.runs[BAD].state.is_failed()


def test_a_failed_sync_notifies_through_the_documented_automation(deployed: Deployed) -> None:
    _eventually(lambda: deployed.alerts, "the failure notification")
    assert len(deployed.alerts) == 1, deployed.alerts  # the successful syncs notify nobody
    alert = deployed.alerts[0]
    assert alert["subject"] == f"screensync sync failed: clearchecks/{BAD}/account"
    assert "401" in alert["body"]
    assert f"screensync sync clearchecks -c {BAD} -s account" in alert["body"]


def _status_json(deployed: Deployed, monkeypatch: pytest.MonkeyPatch, api_url: str) -> list[dict[str, Any]]:
    import typer
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from typer.testing import CliRunner

    from screensync.status_cli import register

    for key in ("SCREENSYNC_WAREHOUSE", "SCREENSYNC_CONNECTIONS", "SCREENSYNC_SECRET_KEY"):
        monkeypatch.setenv(key, deployed.env[key])
    app = typer.Typer()
    app.callback()(lambda: None)  # a command group, as in `screensync status`
    register(app)
    with temporary_settings({PREFECT_API_URL: api_url}):
        result = CliRunner().invoke(app, ["status", "--json", "--integration", "clearchecks"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_status_shows_last_runs_and_prefects_next_scheduled_runs(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    api_url = deployed.env["PREFECT_API_URL"]

    def scheduled() -> list[dict[str, Any]]:
        rows = _status_json(deployed, monkeypatch, api_url)
        good = [r for r in rows if r["connection_id"] == GOOD]
        return rows if good and all(r["next_run_source"] == "prefect" for r in good) else []

    rows = {(r["connection_id"], r["sync"]): r for r in _eventually(scheduled, "Prefect's scheduled runs")}
    assert set(rows) == {(c, s) for c in (GOOD, BAD) for s in ("account", "reports", "report_status", "packages", "invoices")}

    account = rows[(GOOD, "account")]
    assert account["last_run_status"] == "success" and account["added"] == 1
    assert account["last_success_at"] is not None and 0 <= account["lag_seconds"] < 3600
    assert account["last_error"] is None
    # the daily schedule's next run, as Prefect's scheduler created it
    assert datetime.fromisoformat(account["next_run_at"]) > datetime.fromisoformat(account["last_success_at"])
    never = rows[(GOOD, "invoices")]
    assert never["last_run_status"] is None and never["last_success_at"] is None and never["lag_seconds"] is None

    bad = rows[(BAD, "account")]
    assert bad["connection_status"] == "invalid"  # the 401 marked it; scheduled runs skip it
    assert bad["last_run_status"] == "failed" and bad["last_success_at"] is None
    assert "401" in bad["last_error"] and len(bad["last_error"]) <= 80
    assert bad["next_run_at"] is None and bad["next_run_source"] == "none: connection invalid"

    # Prefect unreachable: the next run is computed from the sync's declared frequency instead
    offline_url = f"http://127.0.0.1:{free_port()}/api"
    offline = {(r["connection_id"], r["sync"]): r for r in _status_json(deployed, monkeypatch, offline_url)}
    packages = offline[(GOOD, "packages")]
    assert packages["next_run_source"] == "frequency"
    last_run = datetime.fromisoformat(packages["last_run_at"])
    assert datetime.fromisoformat(packages["next_run_at"]) == last_run + timedelta(days=1)  # "every 1d"
