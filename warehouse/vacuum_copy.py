"""A vacuum of the embedded file that readers do not wait for: it runs on a copy, then the copy is
renamed over the file.

Every write session leaves small row groups that a vacuum merges now and then (warehouse/backend.py).
DuckDB cannot interrupt a vacuum once begun, and on a busy fan-out's ~1 GB file one took 1-5 s, all of
it with the file open for writing, so every analyst query that arrived meanwhile waited for it
(issue 15: 3-6% of answers over a second; docs/benchmarks.md). Here the writer that is due to vacuum
first detaches as usual (a plain checkpoint: the file is complete and has no write-ahead log), then:

1. keeps other writers out but lets readers in (warehouse/rwlock.py `vacuum_hold`);
2. copies the file beside its locks (`copy_file_range`: 0.7 s a GB here, a reflink where the file
   system has them) and vacuums the copy in this process's session (VACUUM_MEMORY_STEPS);
3. takes the file exclusively again (readers reading finish their query; new ones wait at the
   turnstile) and renames the copy over it: one `rename`, atomic, so a crash at any point leaves
   the file as it was or vacuumed, never half of each.

Nothing can have written the file meanwhile (every screensync writer waits on the vacuum's lock),
and the file's identity (inode, size, mtime) is checked again before the rename all the same. Costs:
the copy's disk space while it runs, and the copy's time on top of the vacuum's for other writers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path

import duckdb

from warehouse.connection import CHECKPOINT_MEMORY, attach_writer, detach_writer, wal_bytes, wal_path
from warehouse.rwlock import Held, WarehouseRWLock, lock_dir

log = logging.getLogger("screensync.warehouse")

# What a vacuum's checkpoint may use. DuckDB keeps what the vacuum reads cached up to the limit: the
# concurrent 20,000-candidate re-poll run's vacuum raised RSS by 59 MB within 48 MB and by 37 MB within
# 24 MB (0.9 against 0.6 s; issue 17, docs/benchmarks.md); within 256 MB a fan-out's by 202 MB. Too
# little fails the vacuum (48 MB once did, on a 1.3 GB file): only the copy is given up, and the
# file's later vacuums get the next rung, kept beside the locks so that every process starts where
# the last stopped (a 1,000-connection fan-out's shard processes each ran out of 24 MB once, 9 in all).
VACUUM_MEMORY_STEPS = (os.environ.get("SCREENSYNC_WAREHOUSE_VACUUM_MEMORY", "24MB"), "64MB", CHECKPOINT_MEMORY)
HOLD_TIMEOUT_S = 5.0  # for the vacuum's lock, which writers only probe
SWAP_TIMEOUT_S = 30.0  # for the queries in progress to end before the rename; past it the copy is dropped


def memory_rung(path: Path) -> int:
    """The rung of VACUUM_MEMORY_STEPS this file's vacuums start at (0 unless one ran short)."""
    try:
        return max(0, min(int(_rung_file(path).read_text()), len(VACUUM_MEMORY_STEPS) - 1))
    except (OSError, ValueError):
        return 0


def climb(path: Path, rung: int) -> int:
    """A vacuum at `rung` ran short: the file's later ones get the next (returned)."""
    higher = min(rung + 1, len(VACUUM_MEMORY_STEPS) - 1)
    with contextlib.suppress(OSError):
        _rung_file(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _rung_file(path).write_text(str(higher))
    return higher


def _rung_file(path: Path) -> Path:
    return lock_dir(path) / "vacuum" / ".memory-rung"


def copy_path(path: Path) -> Path:
    """Where the copy is vacuumed: beside the locks (the same file system), under the file's own name
    (so it attaches under the same catalog name)."""
    return lock_dir(path) / "vacuum" / path.name


def _identity(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def _discard(copy: Path) -> None:
    for p in (copy, wal_path(copy)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _copy(src: Path, dst: Path) -> None:
    """`src` to `dst` (owner-only) in the kernel: a reflink where the file system has them."""
    with open(src, "rb") as fin:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            size, done = os.fstat(fin.fileno()).st_size, 0
            try:
                while done < size:
                    n = os.copy_file_range(fin.fileno(), fd, size - done)
                    if n == 0:
                        break
                    done += n
            except OSError:  # no copy_file_range here (or across these file systems): the portable way
                os.close(fd)
                fd = -1
                shutil.copyfile(src, dst)
                os.chmod(dst, 0o600)
                return
            if done != size:
                raise OSError(f"copied {done} of {size} bytes of {src}")
        finally:
            if fd >= 0:
                os.close(fd)


def vacuum_on_copy(con: duckdb.DuckDBPyConnection, path: Path, lock: WarehouseRWLock, held: Held, *,
                   row_group_size: int, memory_limit: str | None, vacuum_memory: str) -> bool | None:
    """Vacuum `path` (just detached by `con`'s session, `held` its write hold) on a copy and rename
    the copy over it. True when done; False when `vacuum_memory` was too little (the file untouched);
    None when skipped (a write-ahead log left by a failed checkpoint, a copy that failed, readers
    that did not finish within SWAP_TIMEOUT_S): a later session vacuums instead. `held` is released."""
    if wal_bytes(path):  # something in the log: the file alone is not the whole database
        held.release()
        return None
    hold = lock.vacuum_hold(held, HOLD_TIMEOUT_S)
    if hold is None:
        return None
    copy = copy_path(path)
    started = time.monotonic()
    try:
        copy.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _discard(copy)  # a vacuum killed before its rename left it
        before = _identity(path)
        try:
            _copy(path, copy)
        except OSError as exc:  # disk full, say: the file is as it was
            log.warning("warehouse %s: no vacuum this time, copying the file failed (%s)", path, exc)
            return None
        alias, _ = attach_writer(con, copy, row_group_size=row_group_size, deadline=time.monotonic() + 30)
        if not detach_writer(con, alias, memory_limit=memory_limit, vacuum_memory=vacuum_memory):
            return False
        if wal_bytes(copy):
            return None  # (DuckDB leaves none after a checkpoint)
        with open(copy, "rb+") as f:
            os.fsync(f.fileno())
        if not hold.exclusive(SWAP_TIMEOUT_S):
            log.warning("warehouse %s: vacuum dropped, queries still reading after %.0fs", path, SWAP_TIMEOUT_S)
            return None
        if _identity(path) != before:  # written outside screensync's locks: the copy is stale
            log.warning("warehouse %s: vacuum dropped, the file changed while its copy was vacuumed", path)
            return None
        os.replace(copy, path)
        _fsync_dir(path.parent)
        log.debug("warehouse %s: vacuumed on a copy in %.2fs", path, time.monotonic() - started)
        return True
    finally:
        hold.release()
        _discard(copy)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
