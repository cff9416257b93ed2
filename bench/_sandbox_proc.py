"""Start `screensync sandbox` as a separate process for benchmarks (so it never shares our GIL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from common.asgi_thread import free_port

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def sandbox_process(*, scale: int, seed: int = 7, open_reports: dict[str, int] | None = None) -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        info_path = Path(tmp) / "info.json"
        ports = [free_port() for _ in range(4)]
        cmd = [
            sys.executable, "-m", "screensync", "sandbox",
            "--checkr-port", str(ports[0]), "--checkr-staging-port", str(ports[1]),
            "--clearchecks-port", str(ports[2]), "--control-port", str(ports[3]),
            "--scale", str(scale), "--seed", str(seed), "--info", str(info_path),
            # reports still open, for re-poll benchmarks
            *(a for p, n in (open_reports or {}).items() for a in ("--open-reports", f"{p}={n}")),
        ]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.monotonic() + 120
            while not info_path.exists():
                if proc.poll() is not None:
                    raise RuntimeError(f"sandbox exited: {proc.stderr.read().decode() if proc.stderr else ''}")
                if time.monotonic() > deadline:
                    raise RuntimeError("sandbox did not start within 120 s")
                time.sleep(0.1)
            time.sleep(0.1)
            info = json.loads(info_path.read_text())
            info["_pid"] = proc.pid
            yield info
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def set_rate_limit(info: dict[str, Any], provider: str, per_minute: int) -> None:
    httpx.put(f"{info['control_url']}/rate_limit/{provider}", json={"per_minute": per_minute}).raise_for_status()
