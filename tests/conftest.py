"""Suite-wide fixtures: one shared sandbox for read-mostly tests, fresh ones for tests that change state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.server import SandboxServer

# the throwaway PostgreSQL (postgres_server, postgres_db) and warehouse_target (with its
# `both_backends` / `file_only` markers), for the whole suite
pytest_plugins = ["tests.support.postgres", "tests.support.warehouse_target"]


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """Started once (seed 42, small scale) and shared: tests must undo fault or rate-limit changes."""
    # ClearChecks advertises a higher limit here (its X-RateLimit-Limit header, which clients adopt)
    # so a whole suite sharing one token is not paced at the default 60 a minute.
    with SandboxServer(seed=42, scale=50, rate_limits={"clearchecks": 6000}) as server:
        yield server


class SandboxFactory:
    """`fresh_sandbox(seed=..., scale=...)` starts a private sandbox; used bare it acts as a default one."""

    def __init__(self) -> None:
        self._servers: list[SandboxServer] = []
        self._default: SandboxServer | None = None

    def __call__(self, **kwargs: Any) -> SandboxServer:
        kwargs.setdefault("scale", 20)
        server = SandboxServer(**kwargs).start()
        self._servers.append(server)
        return server

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._default is None:
            self._default = self()
        return getattr(self._default, name)

    def close(self) -> None:
        for server in self._servers:
            server.stop()


@pytest.fixture
def fresh_sandbox() -> Iterator[SandboxFactory]:
    factory = SandboxFactory()
    try:
        yield factory
    finally:
        factory.close()
