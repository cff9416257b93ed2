"""A real `prefect server start` and `prefect worker start` as child processes (the demo and the tests).

Prefect's temporary server gives up after 20 s, and a new server on a loaded 2-core machine takes
about 20-25 s to answer `/api/health` (database migrations), so anything a user runs starts its
server explicitly, with its own PREFECT_HOME, and waits with a generous limit. When the server
never answers, the error names its log file and shows its last lines.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

import httpx

from flows.prefect_env import DEFAULTS
from flows.processes import ChildProcess

DEFAULT_PORT = 4200
START_TIMEOUT_S = float(os.environ.get("SCREENSYNC_PREFECT_START_TIMEOUT", "300"))
# settings of the caller's own Prefect setup that must not leak into a server started here
_CALLER_PREFIXES = ("PREFECT_API_", "PREFECT_PROFILE", "PREFECT_HOME", "PREFECT_SERVER_DATABASE_")


class PrefectServerError(RuntimeError):
    """The server (or the worker) did not come up; the message names the log to read."""


def prefect_environment(home: Path, api_url: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a server, worker or client of the server at `api_url` with home `home`."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith(_CALLER_PREFIXES)}
    for key, value in DEFAULTS.items():
        env.setdefault(key, value)
    env["PREFECT_HOME"] = str(home.resolve())
    env["PREFECT_API_URL"] = api_url
    return env


def pick_port(host: str = "127.0.0.1", preferred: int = DEFAULT_PORT) -> int:
    """Prefect's usual port when it is free (stable URLs to bookmark), another free one otherwise."""
    from common.asgi_thread import free_port

    with socket.socket() as probe:
        try:
            probe.bind((host, preferred))
        except OSError:
            return free_port(host)
    return preferred


class PrefectServer:
    """`prefect server start` on loopback with its own PREFECT_HOME (its SQLite database lives there)."""

    def __init__(
        self,
        home: Path,
        *,
        log_path: Path | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home.resolve()
        self.host = host
        self.port = port or pick_port(host)
        self.env = prefect_environment(self.home, self.api_url, base_env)
        self.process = ChildProcess(
            "prefect server",
            [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(self.port)],
            env=self.env,
            cwd=self.home,
            log_path=log_path or self.home / "server.log",
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def start(self) -> PrefectServer:
        """Start the process and return at once (`wait_until_healthy` waits for it)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.process.start()
        return self

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_until_healthy(
        self, timeout: float = START_TIMEOUT_S, on_wait: Callable[[float], None] | None = None
    ) -> float:
        """Seconds it took `/api/health` to answer; PrefectServerError if the server exits or stays silent."""
        started = time.monotonic()
        while not self.healthy():
            waited = time.monotonic() - started
            code = self.process.exit_code()
            if code is not None:
                raise PrefectServerError(
                    f"the Prefect server exited with code {code} before answering {self.api_url}/health. "
                    f"Its log is {self.log_path}; last lines:\n{self.process.log_tail()}"
                )
            if waited > timeout:
                raise PrefectServerError(
                    f"the Prefect server did not answer {self.api_url}/health within {timeout:.0f}s "
                    f"(raise SCREENSYNC_PREFECT_START_TIMEOUT on a slow machine). Its log is {self.log_path}; "
                    f"last lines:\n{self.process.log_tail()}"
                )
            if on_wait is not None:
                on_wait(waited)
            time.sleep(0.5)
        return time.monotonic() - started

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> PrefectServer:
        self.start()
        try:
            self.wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def worker_process(
    pool: str,
    *,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    query_seconds: float | None = None,
    run_once: bool = False,
    name: str | None = None,
    limit: int | None = None,
) -> ChildProcess:
    """`prefect worker start --pool <pool> --type process` (not started yet); flow runs inherit `env`.

    `query_seconds` shortens the worker's poll interval (Prefect's default is 10 s) where a person
    is waiting for the run, as in the demo. `limit` caps the flow runs it runs at once (Prefect's
    `--limit`; default none), `name` names it in the UI and its events.
    """
    args = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
    if run_once:
        args.append("--run-once")
    if name is not None:
        args += ["--name", name]
    if limit is not None:
        args += ["--limit", str(limit)]
    worker_env = dict(env)
    if query_seconds is not None:
        worker_env["PREFECT_WORKER_QUERY_SECONDS"] = str(query_seconds)
    return ChildProcess(f"prefect worker ({pool})", args, env=worker_env, cwd=cwd, log_path=log_path)
