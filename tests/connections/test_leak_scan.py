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
            page = connect(web, "checkr", "partner-cust")
            assert page.status_code == 200, page.text
            from connections.sqlite_store import SqliteConnectionStore

            store = SqliteConnectionStore(store_path, keys=[secret_key])
            access_token = store.credentials("checkr", "partner-cust").token.get_secret_value()
            cli("connections", "show", "checkr", "partner-cust")
            for integration, cid in [("checkr", "direct"), ("clearchecks", "cc-direct"), ("checkr", "partner-cust")]:
                cli("connections", "test", integration, cid)
            cli("connections", "list")
            synced = cli("sync", "checkr", "-c", "direct", "-c", "partner-cust", "-m", "account")
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
