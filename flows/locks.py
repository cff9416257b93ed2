"""Cross-process locks beside the warehouse file (Linux/macOS `fcntl.flock`).

DuckDB lets one process write a database file at a time, and two runs of the same
(connection, sync) would fight over its checkpoint. Prefect global concurrency limits would
need a server for every run (tests, `screensync sync`); a lock file works for any process on
the machine that holds the warehouse, which is also where DuckDB's own limit applies.
The OS drops a flock when its holder dies, so a killed worker never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

POLL_SECONDS = 0.2


class LockTimeout(TimeoutError):
    """Another process kept the lock for longer than we were willing to wait."""


def lock_dir(warehouse: Path) -> Path:
    return warehouse.resolve().parent / f".{warehouse.name}.locks"


def warehouse_lock_path(warehouse: Path) -> Path:
    return lock_dir(warehouse) / "warehouse-writer.lock"


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
                        f"{what} is held by another process (lock file {path}); waited {timeout:.0f}s"
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
