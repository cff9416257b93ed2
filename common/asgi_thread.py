"""Serve an ASGI app with uvicorn in a background thread (the demo, tests and benchmarks)."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now, for a server that binds it a moment later.

    Chosen below the kernel's ephemeral range when possible: outgoing connections take their
    local ports from that range, so one of them cannot grab the port between this probe and
    the server's bind (which made a test fail once).
    """
    low, _ = _ephemeral_range()
    if low > 12000:
        for _ in range(50):
            port = random.randint(10000, low - 1)
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0) -> Iterator[str]:
    """Yield the base URL while the app serves real HTTP on a socket; stop it afterwards.

    With port 0 a free port is probed first; if another process takes it before uvicorn binds,
    the start is retried on a fresh port rather than failing.
    """
    deadline = time.monotonic() + timeout
    attempts = 1 if port else 5
    for attempt in range(attempts):
        chosen = port or free_port(host)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=chosen, log_level="warning", lifespan="auto"))
        thread = threading.Thread(target=server.run, name=f"uvicorn-{chosen}", daemon=True)
        thread.start()
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if server.started:
            port = chosen
            break
        server.should_exit = True
        thread.join(timeout=5)
        if attempt == attempts - 1 or time.monotonic() >= deadline:
            raise RuntimeError(f"server on {host}:{chosen} did not start")
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
