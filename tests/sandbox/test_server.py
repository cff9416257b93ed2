"""SandboxServer, the control API's info, and `screensync sandbox` as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from checkr_helpers import control

from sandbox.server import SandboxServer
from tests.support.asgi_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_info_shape(sandbox: SandboxServer) -> None:
    info = sandbox.info
    assert control(sandbox, "GET", "/info").json() == info
    assert info["control_url"].endswith("/_sandbox")
    for key, env, n in (("checkr", "production", 3), ("checkr_staging", "staging", 2)):
        s = info[key]
        assert sorted(s) == ["accounts", "base_url", "environment", "partner"] and s["environment"] == env
        assert sorted(s["partner"]) == ["client_id", "client_secret"] and len(s["accounts"]) == n
        for a in s["accounts"]:
            assert sorted(a) == ["api_key", "id", "name"] and a["api_key"].startswith("sk_test_")
            assert httpx.get(f"{s['base_url']}/v1/account", auth=(a["api_key"], "")).json()["id"] == a["id"]
    cc = info["clearchecks"]
    assert {"base_url", "source_token", "private_key", "accounts"} <= set(cc) and len(cc["accounts"]) == 3


def test_same_seed_same_data_other_seed_other_data(sandbox: SandboxServer) -> None:
    one, two, other = (SandboxServer(seed=s, scale=20) for s in (42, 42, 43))  # generation needs no start
    try:
        assert one.export("checkr") == two.export("checkr") and one.export("checkr_staging") == two.export(
            "checkr_staging"
        )
        assert one.export("checkr") != other.export("checkr")
        assert [a.api_key for a in one.providers["checkr"].world.accounts] == [
            a["api_key"] for a in sandbox.info["checkr"]["accounts"]
        ]  # credentials depend on the seed only
    finally:
        for server in (one, two, other):
            server.stop()


def test_request_count_and_unknown_control_paths(sandbox: SandboxServer) -> None:
    before = sandbox.request_count("checkr")
    httpx.get(sandbox.info["checkr"]["base_url"] + "/v1/account")
    assert sandbox.request_count("checkr") == before + 1
    r = control(sandbox, "GET", "/nothing-here")
    assert r.status_code == 404 and "nothing-here" in r.json()["error"]
    r = control(sandbox, "PUT", "/rate_limit/checkr", json={"per_minute": -1})
    assert r.status_code == 400 and "per_minute" in r.json()["error"]


def test_a_busy_port_is_a_clear_error() -> None:
    with SandboxServer(scale=1) as first:
        port = int(httpx.URL(first.info["checkr"]["base_url"]).port or 0)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            SandboxServer(scale=1, checkr_port=port).start()


@pytest.mark.slow
def test_cli_starts_everything_and_writes_the_info(tmp_path: Path) -> None:
    info_path = tmp_path / "info.json"
    ports = [free_port() for _ in range(4)]
    cmd = [
        sys.executable,
        "-m",
        "screensync",
        "sandbox",
        "--checkr-port",
        str(ports[0]),
        "--checkr-staging-port",
        str(ports[1]),
        "--clearchecks-port",
        str(ports[2]),
        "--control-port",
        str(ports[3]),
        "--scale",
        "5",
        "--seed",
        "7",
        "--open-reports",
        "checkr=7",
        "--info",
        str(info_path),
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while not info_path.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "no info file"
            time.sleep(0.05)
        info: dict[str, Any] = json.loads(info_path.read_text())
        assert info["control_url"] == f"http://127.0.0.1:{ports[3]}/_sandbox"
        assert info["checkr"]["base_url"] == f"http://127.0.0.1:{ports[0]}"
        key = info["checkr"]["accounts"][0]["api_key"]
        assert httpx.get(f"{info['checkr']['base_url']}/v1/account", auth=(key, "")).status_code == 200
        page = httpx.get(
            f"{info['checkr']['base_url']}/v1/candidates", params={"include": "reports"}, auth=(key, "")
        ).json()["data"]
        assert sum(r["status"] == "pending" for c in page for r in c["reports"]) >= 7  # --open-reports
        assert httpx.get(f"{info['control_url']}/info").json() == info
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert info["checkr"]["base_url"] in out and key in out  # demo credentials are printed on purpose


def test_cli_rejects_a_bad_open_reports_value() -> None:
    import typer
    from typer.testing import CliRunner

    from sandbox.cli import register

    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so `sandbox` is a sub-command as in `screensync`
    register(app)
    for value, named in (("nope=3", "unknown provider 'nope'"), ("checkr", "PROVIDER=N")):
        result = CliRunner().invoke(app, ["sandbox", "--open-reports", value])
        assert result.exit_code == 2 and named in result.output


def test_open_reports_are_pending_at_the_start_and_complete_later(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=20, open_reports={"checkr": 40, "checkr_staging": 5})
    plain = SandboxServer(scale=20)  # the same world without them, for comparison (no HTTP needed)
    for key, extra in (("checkr", 40), ("checkr_staging", 5)):
        section = server.info[key]
        client = httpx.Client(base_url=section["base_url"] + "/v1", auth=(section["accounts"][0]["api_key"], ""))
        with client:
            pending = [
                r
                for c in client.get("/candidates", params={"include": "reports", "per_page": 100}).json()["data"]
                for r in c["reports"]
                if r["status"] == "pending"
            ]
        base = [r for r in plain.export(key)[section["accounts"][0]["id"]]["reports"] if r["status"] == "pending"]
        assert len(pending) == len(base) + extra
    server.advance(days=5)
    assert all(
        r["status"] != "pending"
        for r in server.export("checkr")[server.info["checkr"]["accounts"][0]["id"]]["reports"]
        if r["created_at"] < "2026-06-01T12:00:00Z"
    )
    with pytest.raises(ValueError, match="open_reports names unknown providers"):
        SandboxServer(open_reports={"greenhouse": 1})
