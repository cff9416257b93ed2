"""Credential-leak scan: run connect flows, the CLI and a sync, then grep everything printed and written.

Every secret used (API keys, api_tokens, the OAuth access token, the partner client secret, the
ClearChecks private key and source token, the encryption key) must appear nowhere in CLI output,
the web app's logs, the warehouse file, or the store's raw bytes (where tokens exist only encrypted).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import REPO, run_cli
from oauth_helpers import SANDBOX_KEY, connect

from tests.support.asgi_server import free_port

pytestmark = pytest.mark.slow


def test_no_secret_is_printed_logged_or_stored_in_clear(tmp_path: Path, secret_key: str, sandbox: Any) -> None:
    checkr, cc = sandbox.info["checkr"], sandbox.info["clearchecks"]
    store_path = tmp_path / "leak.sqlite"
    env = {
        "SCREENSYNC_CONNECTIONS": str(store_path),
        "SCREENSYNC_SECRET_KEY": secret_key,
        "SCREENSYNC_WAREHOUSE": str(tmp_path / "wh.duckdb"),
    }
    outputs: list[subprocess.CompletedProcess[str]] = []

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        done = run_cli(*args, env=env, stdin=stdin)
        outputs.append(done)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    partner = checkr["partner"]
    cli(
        "connections",
        "set-app",
        "checkr",
        "--base-url",
        checkr["base_url"],
        stdin=f"client_id={partner['client_id']}\nclient_secret={partner['client_secret']}\n",
    )
    cli(
        "connections",
        "set-app",
        "clearchecks",
        "--base-url",
        cc["base_url"],
        stdin=f"source_token={cc['source_token']}\nprivate_key={cc['private_key']}\n",
    )
    cli(
        "connections",
        "add",
        "checkr",
        "direct",
        "--base-url",
        checkr["base_url"],
        stdin=checkr["accounts"][0]["api_key"] + "\n",
    )
    cli(
        "connections",
        "add",
        "clearchecks",
        "cc-direct",
        "--base-url",
        cc["base_url"],
        stdin=cc["accounts"][0]["api_token"] + "\n",
    )

    port = free_port()
    web = f"http://127.0.0.1:{port}"
    log_out, log_err = tmp_path / "web.out", tmp_path / "web.err"
    with log_out.open("w") as out, log_err.open("w") as err:
        server = subprocess.Popen(
            [sys.executable, "-m", "screensync", "serve-web", "--port", str(port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=err,
            cwd=REPO,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{web}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, log_err.read_text()
                time.sleep(0.1)
            control = sandbox.info["control_url"]
            httpx.put(
                f"{control}/oauth/{SANDBOX_KEY['checkr']}",
                json={"redirect_uri": f"{web}/oauth/callback", "auto_approve": True},
            ).raise_for_status()
            httpx.put(
                f"{control}/webhooks", json={"url": f"{web}/webhooks/checkr", "provider": "checkr"}
            ).raise_for_status()
            from connections.sqlite_store import SqliteConnectionStore

            store = SqliteConnectionStore(store_path, keys=[secret_key])
            page = connect(store, web, "checkr", "partner-cust")
            assert page.status_code == 200, page.text
            access_token = store.credentials("checkr", "partner-cust").token.get_secret_value()
            cli("connections", "show", "checkr", "partner-cust")
            for integration, cid in [("checkr", "direct"), ("clearchecks", "cc-direct"), ("checkr", "partner-cust")]:
                cli("connections", "test", integration, cid)
            cli("connections", "list")
            synced = cli("sync", "checkr", "-c", "direct", "-c", "partner-cust", "-s", "account")
            assert "success" in synced.stdout + synced.stderr
            cli("connections", "revoke", "checkr", "partner-cust")
        finally:
            server.terminate()
            server.wait(timeout=30)

    secrets = {
        "checkr api key": checkr["accounts"][0]["api_key"],
        "clearchecks api_token": cc["accounts"][0]["api_token"],
        "oauth access token": access_token,
        "partner client_secret": partner["client_secret"],
        "clearchecks private_key": cc["private_key"],
        "clearchecks source_token": cc["source_token"],
        "encryption key": secret_key,
    }
    printed = "".join(o.stdout + o.stderr for o in outputs) + log_out.read_text() + log_err.read_text()
    assert "connected checkr/partner-cust via oauth" in printed  # the logs were captured
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("leak.sqlite*"))
    assert b"partner-cust" in raw
    warehouse = b"".join(p.read_bytes() for p in tmp_path.glob("wh.duckdb*"))
    assert b"partner-cust" in warehouse  # the sync landed rows there
    raw += warehouse
    leaks = [name for name, value in secrets.items() if value in printed or value.encode() in raw]
    assert leaks == []


HOSTILE_TOKEN = "cc_live_hostile_echo_7f3a9b2c4d5e6f70"


def _hostile_clearchecks() -> Any:
    """A ClearChecks look-alike whose errors echo the request back, api_token included, in the
    shapes providers really use: a relative URL in a JSON message, the bare value, plain text."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    async def echo(request: Request) -> Response:
        token = request.query_params.get("api_token", "")
        where = f"/api/reports/all?page=2&per_page=100&api_token={token}"
        if request.url.path.endswith("/packages"):
            return PlainTextResponse(f"Bad Request: cannot serve {where} (credential {token})", status_code=400)
        return JSONResponse({"error": f"invalid page for {where}; token {token} is not enabled"}, status_code=422)

    return Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A ClearChecks connection to the hostile provider, synced by the CLI and through Prefect
    (a worker-like process with its own PREFECT_HOME and Prefect's local server): once per module."""
    from cryptography.fernet import Fernet

    from tests.support.asgi_server import serve_asgi

    tmp_path = tmp_path_factory.mktemp("hostile")
    secret_key = Fernet.generate_key().decode()
    env = {
        "SCREENSYNC_CONNECTIONS": str(tmp_path / "store" / "connections.sqlite"),
        "SCREENSYNC_SECRET_KEY": secret_key,
        "SCREENSYNC_WAREHOUSE": str(tmp_path / "wh" / "warehouse.duckdb"),
    }
    prefect_home = tmp_path / "prefect"
    flow_env = {
        **os.environ,
        **env,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    for name in ("PREFECT_API_URL", "PREFECT_PROFILES_PATH"):
        flow_env.pop(name, None)
    with serve_asgi(_hostile_clearchecks()) as hostile:
        added = run_cli(
            "connections", "add", "clearchecks", "hostile", "--base-url", hostile, env=env, stdin=HOSTILE_TOKEN + "\n"
        )
        assert added.returncode == 0, added.stderr
        cli = run_cli("sync", "clearchecks", "-c", "hostile", env=env)
        script = (
            "from flows.sync_flows import sync_integration\n"
            "state = sync_integration('clearchecks', connections=['hostile'], return_state=True)\n"
            "print('flow state:', state.type.value, state.message)\n"
        )
        flow = subprocess.run(
            [sys.executable, "-c", script], env=flow_env, cwd=REPO, capture_output=True, text=True, timeout=600
        )
    return {"env": env, "cli": cli, "flow": flow, "prefect_home": prefect_home, "tmp": tmp_path}


def test_provider_error_text_never_carries_a_credential_anywhere(hostile_run: dict[str, Any]) -> None:
    from warehouse.query import run_query

    cli, flow = hostile_run["cli"], hostile_run["flow"]
    printed = cli.stdout + cli.stderr + flow.stdout + flow.stderr
    assert HOSTILE_TOKEN not in printed
    assert cli.returncode == 1  # the syncs failed, and said why
    assert "api_token=***" in cli.stdout + cli.stderr
    assert "flow state: FAILED" in flow.stdout, flow.stdout + flow.stderr

    warehouse = Path(hostile_run["env"]["SCREENSYNC_WAREHOUSE"])
    _, errors = run_query(warehouse, "SELECT error FROM _screensync.sync_runs WHERE status = 'failed'", limit=100)
    _, freshness = run_query(warehouse, "SELECT last_error FROM unified.sync_freshness", limit=100)
    shown = [str(e) for (e,) in [*errors, *freshness]]
    assert len(errors) >= 6 and all("api_token=***" in e or "***" in e for e in shown), shown
    assert not any(HOSTILE_TOKEN in e for e in shown)

    prefect_files = [p for p in hostile_run["prefect_home"].rglob("*") if p.is_file()]
    prefect_bytes = b"".join(p.read_bytes() for p in prefect_files)
    assert b"api_token=***" in prefect_bytes  # logs / task states / artifacts were recorded there
    stored = b"".join(p.read_bytes() for p in hostile_run["tmp"].rglob("*") if p.is_file())
    assert HOSTILE_TOKEN.encode() not in stored  # warehouse, store (encrypted), Prefect's database


def test_files_that_can_hold_customer_data_are_owner_only(hostile_run: dict[str, Any]) -> None:
    prefect_db = hostile_run["prefect_home"] / "prefect.db"
    warehouse = Path(hostile_run["env"]["SCREENSYNC_WAREHOUSE"])
    store = Path(hostile_run["env"]["SCREENSYNC_CONNECTIONS"])
    private = [prefect_db, warehouse, *store.parent.glob("connections.sqlite*")]
    assert prefect_db.exists() and warehouse.exists()
    modes = {str(p.relative_to(hostile_run["tmp"])): oct(p.stat().st_mode & 0o777) for p in private}
    assert set(modes.values()) == {"0o600"}, modes
    others = {
        str(p.relative_to(hostile_run["tmp"])): oct(p.stat().st_mode & 0o777)
        for p in hostile_run["prefect_home"].rglob("*")
        if p.is_file() and p.stat().st_mode & 0o077
    }
    assert others == {}


def test_the_postgres_store_holds_no_secret_in_clear_on_disk(postgres_server: Any, postgres_db: Any) -> None:
    """The PostgreSQL store, written through the CLI and the store (a webhook body carrying a token,
    a rotation re-writing every row): no secret in the output, a pg_dump, or any file of the
    cluster (tables, indexes, WAL) once a checkpoint has flushed them."""
    from cryptography.fernet import Fernet
    from store_helpers import raw_bytes

    from connections.postgres_store import PostgresConnectionStore

    key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    env = {"SCREENSYNC_CONNECTIONS": postgres_db.url, "SCREENSYNC_SECRET_KEY": key}
    secrets = {
        "api key": "ck_live_pg_leak_0a1b2c3d4e",
        "client secret": "cs_pg_leak_5f6a7b8c9d",
        "webhook access code": "ac_pg_leak_1e2f3a4b5c",
        "encryption key": key,
        "new encryption key": new_key,
    }
    outputs = [run_cli("connections", "add", "checkr", "pg-leak-cust", env=env, stdin=secrets["api key"] + "\n")]
    assert outputs[0].returncode == 0, outputs[0].stderr
    store = PostgresConnectionStore(postgres_db.url, keys=[key])
    store.set_app_secrets("checkr", {"client_id": "cid_public", "client_secret": secrets["client secret"]})
    body = f'{{"id":"evt_pg_leak","type":"token.issued","access_code":"{secrets["webhook access code"]}"}}'
    store.record_event("checkr", "evt_pg_leak", "token.issued", None, body.encode())
    outputs.append(run_cli("connections", "rotate-key", env=env, stdin=new_key + "\n"))
    assert outputs[-1].returncode == 0, outputs[-1].stderr
    postgres_server.psql("CHECKPOINT")

    printed = "".join(o.stdout + o.stderr for o in outputs)
    dump = raw_bytes(store)
    on_disk = b"".join(p.read_bytes() for p in postgres_server.data_dir.rglob("*") if p.is_file())
    assert b"pg-leak-cust" in dump and b"pg-leak-cust" in on_disk and b"evt_pg_leak" in on_disk
    leaks = [
        name for name, value in secrets.items()
        if value in printed or value.encode() in dump or value.encode() in on_disk
    ]
    assert leaks == []
