"""One-at-a-time locks beside the warehouse file (Linux/macOS `fcntl.flock`).

Two runs of the same (connection, sync) would fight over its checkpoint, so each run holds that
pair's lock; two webhook appliers would apply the same events twice, so one applies at a time.
(Access to the warehouse file itself is warehouse/rwlock.py's.) Prefect global concurrency limits
would need a server for every run (tests, `screensync sync`); a lock file works for any process on
the machine that holds the warehouse. The OS drops a flock when its holder dies, so a killed
worker never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from warehouse.rwlock import lock_dir

POLL_SECONDS = 0.2


class LockTimeout(TimeoutError):
    """Another process kept the lock for longer than we were willing to wait."""


def sync_lock_path(warehouse: Path, integration: str, connection_id: str, sync: str) -> Path:
    safe = "__".join(re.sub(r"[^A-Za-z0-9_.-]", "_", part) for part in (integration, connection_id, sync))
    return lock_dir(warehouse) / f"sync-{safe}.lock"


@contextmanager
def file_lock(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive flock on `path`, waiting up to `timeout` seconds (0: try once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{what} is held by another process{holder(path)} (lock file {path}); waited {timeout:.0f}s"
                    ) from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder(lock: Path) -> str:
    """` (PID n)` of the process that wrote its PID in the lock file, or nothing."""
    try:
        pid = lock.read_text().strip()
    except OSError:
        return ""
    return f" (PID {pid})" if pid.isdigit() else ""
