"""Signed Checkr webhook deliveries for tests, and `screensync serve-web` run as a user runs it."""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from common.asgi_thread import free_port
from connections.webhooks.verify import sign

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = json.loads((ROOT / "tests" / "fixtures" / "checkr" / "verbatim" / "event_report_completed.json").read_text())


def report_event(
    event_id: str, report_id: str, account_id: str, *, etype: str = "report.completed", status: str = "complete",
    at: str = "2026-06-01T12:00:00Z", **fields: Any,
) -> dict[str, Any]:
    """A Checkr report event (Checkr's own example, re-keyed): the report as it was at `at`."""
    event = copy.deepcopy(TEMPLATE)
    event.update(id=event_id, type=etype, created_at=at, account_id=account_id)
    event["data"]["object"].update(id=report_id, status=status, **fields)
    if status != "complete":
        event["data"]["object"]["result"] = None
    return event


def deliver(client: httpx.Client, base: str, event: dict[str, Any], key: str) -> httpx.Response:
    body = json.dumps(event, separators=(",", ":")).encode()
    return client.post(f"{base}/webhooks/checkr", content=body,
                       headers={"Content-Type": "application/json", "X-Checkr-Signature": sign(key, body)})


def cli_env(store_path: Path, key: str, warehouse: Path) -> dict[str, str]:
    return {**os.environ, "SCREENSYNC_CONNECTIONS": str(store_path), "SCREENSYNC_SECRET_KEY": key,
            "SCREENSYNC_WAREHOUSE": str(warehouse), "COLUMNS": "200"}


@contextmanager
def serve_web(env: dict[str, str], log: Path) -> Iterator[str]:
    """`screensync serve-web` in its own process (as a user starts it); yields its base URL."""
    from flows.processes import ChildProcess

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "screensync", "serve-web", "--port", str(port)]
    with ChildProcess("serve-web", args, env=env, cwd=ROOT, log_path=log) as proc:
        wait_until(lambda: _healthy(base, proc), timeout=60, what=f"serve-web to answer ({log})")
        yield base


def _healthy(base: str, proc: Any) -> bool:
    assert proc.running(), proc.log_tail()
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(condition: Any, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll `condition()` until true (a generous deadline for asynchronous work, not a timing check)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
