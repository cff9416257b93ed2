"""The processes a user runs, as subprocesses: `screensync serve-web` (connect pages and webhooks)
and scheduled `screensync sync` runs, some of which are SIGKILLed part-way; on a DuckLake, a run is
one process per connection, all at once (as workers of a fan-out run them)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 180.0  # one scheduled run, faults and retries included


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def screensync(*args: str) -> list[str]:
    return [sys.executable, "-m", "screensync", *args]


@contextmanager
def serve_web(env: dict[str, str], logs: Path) -> Iterator[str]:
    """`screensync serve-web` on a free port until the block ends; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (logs / "serve-web.out").open("w") as out, (logs / "serve-web.err").open("w") as err:
        proc = subprocess.Popen(screensync("serve-web", "--port", str(port)), env=env, stdout=out, stderr=err,
                                cwd=REPO)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve-web did not start: {(logs / 'serve-web.err').read_text()[-2000:]}")
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@dataclass
class SyncRuns:
    """Scheduled `screensync sync` runs: exit codes seen, runs killed, and their output for a post-mortem."""

    env: dict[str, str]
    logs: Path
    exit_codes: Counter[int] = field(default_factory=Counter)
    killed: int = 0
    n: int = 0  # processes started
    shown: int = 0  # the process `output()` shows

    def run(self, integration: str, models: list[str], *, full_refresh: bool = False,
            kill_after: float | None = None, each_of: list[str] | None = None) -> int:
        """One run of `models`; SIGKILLed after `kill_after` seconds if still going. Returns the exit code
        (negative: killed). With `each_of`, one process per connection (`-c`), all at once: concurrent
        writers of one warehouse; the first exit code that is not 0 is returned."""
        started = time.monotonic()
        procs = [self._start(integration, models, full_refresh, kill_after, [c] if each_of else [])
                 for c in (each_of or [None])]
        codes = [self._finish(proc, n, None if kill_after is None else started + kill_after)
                 for proc, n in procs]
        failed = [(code, n) for code, (_, n) in zip(codes, procs, strict=True) if code != 0]
        self.shown = failed[0][1] if failed else procs[-1][1]
        return failed[0][0] if failed else 0

    def _start(self, integration: str, models: list[str], full_refresh: bool, kill_after: float | None,
               connections: list[str | None]) -> tuple[subprocess.Popen[bytes], int]:
        self.n += 1
        args = ["sync", integration, "--wait", "120", *(a for m in models for a in ("-m", m)),
                *(a for c in connections if c for a in ("-c", c))]
        if full_refresh:
            args.append("--full-refresh")
        log = self.logs / f"sync-{self.n:03d}.log"
        with log.open("w") as out:
            out.write(f"$ screensync {' '.join(args)}{f' (kill after {kill_after:.2f}s)' if kill_after else ''}\n")
            out.flush()
            return subprocess.Popen(screensync(*args), env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=REPO), self.n

    def _finish(self, proc: subprocess.Popen[bytes], n: int, kill_at: float | None) -> int:
        code = None
        if kill_at is not None:
            try:
                code = proc.wait(timeout=max(0.0, kill_at - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                code = proc.wait(timeout=30)
                self.killed += 1
        if code is None:
            try:
                code = proc.wait(timeout=RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
                raise AssertionError(f"a sync ran longer than {RUN_TIMEOUT_S:.0f}s: "
                                     f"{self.logs / f'sync-{n:03d}.log'}") from None
        self.exit_codes[code] += 1
        return code

    def output(self, n: int | None = None) -> str:
        """The log of run `n` (default: the last run's failed process, or its last one)."""
        return (self.logs / f"sync-{n or self.shown:03d}.log").read_text()
