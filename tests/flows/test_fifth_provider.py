"""A FIFTH provider, added as one folder outside the repository (SCREENSYNC_INTEGRATIONS_PATH), with
nothing else changed: Bearer auth, cursor pagination, its own webhook signature header and scheme,
one action. A small fake served over loopback stands in for it. The test shows its sync lands
exact data, a signed webhook upserts a record and a forged one is refused, and its action's
deployment is in the generated prefect.yaml with a typed parameter schema and runs as a real
Prefect flow run (deployed with `prefect deploy`, run by a process worker, like production).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from flow_helpers import read_rows
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.asgi_server import serve_asgi

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # deploys and runs a worker on a real server

TOKEN, ACCOUNT = "orb-token-1", "orb-acct-1"
ACTION_DEPLOYMENT = "orbit-screens-start-screen"
POOL = "fifth-provider"

DEFINITION = """
# the whole provider: nothing outside this folder names it
name: orbit-screens
provider:
  name: Orbit Screening
  environments:
    production: {api: "https://api.orbit.test/v2"}
auth: {type: bearer}
rate_limit: {requests: 600, per_seconds: 60}
pagination: {type: cursor, data_path: results, cursor_path: meta.next_cursor, cursor_param: after,
             page_size_param: limit, page_size: 2}
errors: {message_path: error.message}
test_endpoint: /me
webhooks:
  signature: {header: X-Orbit-Signature, algorithm: hmac-sha256, encoding: base64, prefix: "sha256=",
              keys: {api_key: token}}
  event: {id: event_id, type: kind, occurred_at: at, account_id: meta.account, object: payload}
  objects:
    - {types: [screen.updated, screen.created], sync: screens}
syncs:
  - name: screens
    model: Screen
    table: screens
    endpoint: /screens
    track_deletes: true
    frequency: every 1h
actions:
  - name: start_screen
    description: Start a screen for a subject.
    input: StartScreenInput
    output: Screen
    method: POST
    endpoint: /screens
"""

MODELS = """
from pydantic import BaseModel, Field

from integrations.engine.coercion import ProviderRecord, Timestamp


class Screen(ProviderRecord):
    id: str
    subject: str
    status: str
    updated_at: Timestamp


class StartScreenInput(BaseModel):
    subject: str = Field(min_length=1)
    package: str
"""


class FakeOrbit:
    """Orbit's API: Bearer tokens, an opaque cursor in `meta.next_cursor` sent back as `after`."""

    def __init__(self) -> None:
        self.screens = [
            {"id": f"s{i}", "subject": f"subject-{i}", "status": "pending", "updated_at": f"2026-03-0{i}T10:00:00Z"}
            for i in range(1, 6)
        ]
        self.posted: list[dict[str, Any]] = []
        self.cursors_seen: list[str | None] = []

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    async def screens_route(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return JSONResponse({"error": {"message": "bad token"}}, status_code=401)
        if request.method == "POST":
            body = await request.json()
            self.posted.append(body)
            screen = {"id": f"new-{len(self.posted)}", "subject": body["subject"], "status": "pending",
                      "updated_at": "2026-03-09T09:00:00Z"}
            self.screens.append(screen)
            return JSONResponse(screen, status_code=201)
        after = request.query_params.get("after")
        self.cursors_seen.append(after)
        start = int(base64.b64decode(after).decode()) if after else 0
        size = int(request.query_params.get("limit", "2"))
        chunk = self.screens[start : start + size]
        nxt = start + size
        more = base64.b64encode(str(nxt).encode()).decode() if nxt < len(self.screens) else None
        return JSONResponse({"results": chunk, "meta": {"next_cursor": more}})

    async def me(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return JSONResponse({"error": {"message": "bad token"}}, status_code=401)
        return JSONResponse({"id": ACCOUNT})

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v2/screens", self.screens_route, methods=["GET", "POST"]),
            Route("/v2/me", self.me),
        ])


def orbit_signature(secret: str, body: bytes) -> str:
    """Orbit's scheme, written out here independently of the code under test."""
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def orbit_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from integrations.engine import registry

    folder = tmp_path / "outside" / "orbit_screens"  # a folder outside the repository
    folder.mkdir(parents=True)
    (folder / "definition.yaml").write_text(textwrap.dedent(DEFINITION))
    (folder / "models.py").write_text(textwrap.dedent(MODELS))
    monkeypatch.setenv(registry.PATH_ENV, str(folder.parent))
    registry.reload()
    yield folder
    monkeypatch.delenv(registry.PATH_ENV)
    registry.reload()


def _prefect(args: list[str], env: dict[str, str], timeout: float = 180) -> str:
    proc = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"prefect {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_a_fifth_provider_from_a_folder_outside_the_repository(
    orbit_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: Any
) -> None:
    from connections.models import Connection, ConnectionMetadata, Credentials
    from connections.store import open_store
    from connections.web.app import create_app
    from flows.deployments import build_prefect_yaml, render_prefect_yaml
    from flows.webhook_applier import WebhookApplier
    from integrations.engine.sync_runner import run_sync
    from warehouse.loader import Warehouse

    key = Fernet.generate_key().decode()
    warehouse, store_path = tmp_path / "warehouse.duckdb", tmp_path / "connections.sqlite"
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY", key)
    monkeypatch.setenv("SCREENSYNC_CONNECTIONS", str(store_path))
    monkeypatch.setenv("SCREENSYNC_WAREHOUSE", str(warehouse))
    fake = FakeOrbit()
    with serve_asgi(fake.app()) as base:
        store = open_store()
        store.add(Connection(connection_id="orb-1", integration="orbit-screens", credential_kind="api_key",
                             metadata=ConnectionMetadata(base_url=base, provider_account_id=ACCOUNT)),
                  Credentials(token=TOKEN))

        # 1. its sync lands exact data: Bearer auth, three pages through the cursor
        with Warehouse(warehouse) as wh:
            result = run_sync("orbit-screens", "orb-1", "screens", warehouse=wh, store=store)
        assert result.ok, result.error
        assert (result.added, result.pages) == (5, 3)
        assert fake.cursors_seen == [None, "Mg==", "NA=="]
        rows = read_rows(warehouse, "select id, subject, status, updated_at from orbit_screens.screens order by id")
        assert [(r[0], r[1], r[2], r[3].isoformat()) for r in rows] == [
            (s["id"], s["subject"], s["status"], s["updated_at"].replace("Z", "+00:00")) for s in fake.screens
        ]

        # 2. a webhook signed Orbit's way upserts a record; a forged one, or one in another header, is refused
        at = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")  # newer than the sync's read
        event = {"event_id": "ev-1", "kind": "screen.updated", "at": at, "meta": {"account": ACCOUNT},
                 "payload": {"id": "s2", "subject": "subject-2", "status": "clear", "updated_at": at}}
        body = json.dumps(event).encode()
        with serve_asgi(create_app(store)) as web:
            url = f"{web}/webhooks/orbit-screens"
            forged = httpx.post(url, content=body, headers={"X-Orbit-Signature": orbit_signature("not-the-key", body)})
            assert forged.status_code == 401, forged.text
            elsewhere = httpx.post(url, content=body, headers={"X-Checkr-Signature": orbit_signature(TOKEN, body)})
            assert elsewhere.status_code == 401 and "missing X-Orbit-Signature header" in elsewhere.text
            assert store.events() == []
            signed = httpx.post(url, content=body, headers={"X-Orbit-Signature": orbit_signature(TOKEN, body)})
            assert signed.status_code == 200 and signed.json()["queued"], signed.text
        report = WebhookApplier(store, warehouse).apply_pending()
        assert report.applied == 1, report
        status = read_rows(warehouse, "select status from orbit_screens.screens where id = 's2'")
        assert status == [("clear",)]
        assert [(e["event_id"], e["status"]) for e in store.events()] == [("ev-1", "processed")]

        # 3. its action's deployment is generated, typed, and runs as a real Prefect flow run by a worker
        spec = next(d for d in build_prefect_yaml()["deployments"] if d["name"] == ACTION_DEPLOYMENT)
        assert spec["entrypoint"] == "flows/action_flows.py:orbit_screens_start_screen"
        prefect_file = tmp_path / "prefect.yaml"  # its own pool: the session's server is shared with other tests
        rendered = render_prefect_yaml()
        assert ACTION_DEPLOYMENT in rendered
        prefect_file.write_text(rendered.replace("    name: screensync\n    work_queue_name",
                                                 f"    name: {POOL}\n    work_queue_name"))
        env = {**prefect_server.env, "SCREENSYNC_SECRET_KEY": key, "SCREENSYNC_CONNECTIONS": str(store_path),
               "SCREENSYNC_WAREHOUSE": str(warehouse), "SCREENSYNC_INTEGRATIONS_PATH": str(orbit_folder.parent),
               "PWD": str(REPO)}
        deployed = {d["name"]: d for d in yaml.safe_load(prefect_file.read_text())["deployments"]}
        assert deployed[ACTION_DEPLOYMENT]["work_pool"]["name"] == POOL
        _prefect(["work-pool", "create", "--type", "process", POOL], env)
        _prefect(["deploy", "--prefect-file", str(prefect_file), "--name", ACTION_DEPLOYMENT], env)
        full_name = f"{ACTION_DEPLOYMENT}/{ACTION_DEPLOYMENT}"
        request = json.dumps({"subject": "ann", "package": "basic"})
        _prefect(["deployment", "run", full_name, "-p", "connection_id=orb-1", "-p", f"request={request}"], env)
        _prefect(["worker", "start", "--pool", POOL, "--run-once"], env, timeout=240)

        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}), get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name(full_name)
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[ACTION_DEPLOYMENT])))
        schema = deployment.parameter_openapi_schema
        form = schema["definitions"]["StartScreenInput"]
        assert set(form["properties"]) == {"subject", "package"} and set(form["required"]) == {"subject", "package"}
        assert form["properties"]["subject"]["minLength"] == 1
        assert "request" in schema["required"] and schema["properties"]["integration"]["default"] == "orbit-screens"
        assert [r.state.type.value for r in runs] == ["COMPLETED"], [r.state for r in runs]
        assert fake.posted == [{"subject": "ann", "package": "basic"}]
        logged = read_rows(warehouse, "select action, status from _screensync.action_log")
        assert logged == [("start_screen", "success")]
