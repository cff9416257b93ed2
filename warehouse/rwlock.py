"""A readers-writer lock across processes, in lock files beside the warehouse (Linux/macOS `flock`).

DuckDB lets one process open a file for writing and keeps every other process out, readers too,
while it is open. So every screensync process agrees here first: a writer holds the lock
exclusively for one write transaction, a reader shares it for one query, and each closes the
file before letting go.

- A **turnstile** keeps a stream of readers from starving a writer: a writer holds it from the
  moment it waits until its transaction is done, a reader only passes through it, so once a
  writer waits no new reader starts.
- Waiters **announce** themselves (a shared lock on `readers-waiting` / `writers-waiting`): a
  writer lets readers that already wait go first (for at most READERS_FIRST_S), and a process
  never keeps the file open for its own next write while a reader waits, nor for longer than its
  turn (warehouse/access.py WRITER_TURN_S) while another process's writer waits. So a reader waits
  for at most the write in progress.
- A **vacuum** (merging the small row groups writes leave, warehouse/vacuum_copy.py) runs on a copy
  of the file with readers let in: its writer keeps `vacuum.lock` exclusively and the rw lock shared,
  and lets go of the turnstile; a writer that gets the turnstile while a vacuum runs lets go of it
  again and waits on `vacuum.lock`, so readers never queue behind it. The vacuum takes the turnstile
  and the rw lock back exclusively only to rename the copy over the file.
- Waits are bounded; the error names who holds the lock (PID and command, from /proc/locks and
  what the writer wrote down), never a bare timeout.

The OS drops a flock when its holder dies: a killed process never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

from warehouse.connection import WarehouseLocked

POLL_MIN_S = 0.001
POLL_MAX_S = 0.02
READERS_FIRST_S = 2.0  # how long a writer lets already-waiting readers go first


def lock_dir(warehouse: Path) -> Path:
    """Where every lock of this warehouse lives (`.warehouse.duckdb.locks/` beside the file)."""
    return warehouse.resolve().parent / f".{warehouse.name}.locks"


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def _try(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _poll(attempt: Callable[[], bool], deadline: float) -> bool:
    """Call `attempt` until it succeeds or `deadline` passes, sleeping 1 ms growing to 20 ms between tries."""
    delay = POLL_MIN_S
    while True:
        if attempt():
            return True
        now = time.monotonic()
        if now >= deadline:
            return False
        time.sleep(min(delay, deadline - now))
        delay = min(delay * 2, POLL_MAX_S)


class Held:
    """One acquisition; `release()` lets go (idempotent). Closing the descriptors drops their flocks."""

    def __init__(self, fds: list[int]) -> None:
        self._fds = fds

    def release(self) -> None:
        fds, self._fds = self._fds, []
        for fd in reversed(fds):
            os.close(fd)

    def take(self) -> list[int]:
        """The descriptors, now the caller's to close."""
        fds, self._fds = self._fds, []
        return fds


class VacuumHold:
    """A vacuum's hold (`WarehouseRWLock.vacuum_hold`): `vacuum.lock` exclusively, the rw lock shared."""

    def __init__(self, turnstile: int, vacuum: int, rw: int) -> None:
        self._turnstile, self._vacuum, self._rw = turnstile, vacuum, rw

    def exclusive(self, timeout: float) -> bool:
        """Readers out (those reading finish, new ones wait at the turnstile), for the rename;
        False after `timeout` s (a long query), the rw lock then shared no more."""
        deadline = time.monotonic() + timeout
        if not _poll(lambda: _try(self._turnstile, fcntl.LOCK_EX), deadline):
            return False
        if _poll(lambda: _try(self._rw, fcntl.LOCK_EX), deadline):
            return True
        fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        return False

    def release(self) -> None:
        Held([self._vacuum, self._turnstile, self._rw]).release()  # the vacuum's lock last


class _Announce:
    """A shared lock on a `*-waiting` file while its owner waits: others can see that someone waits."""

    def __init__(self, path: Path) -> None:
        self.fd = _open(path)
        fcntl.flock(self.fd, fcntl.LOCK_SH)  # only momentary probes take it exclusively

    def close(self) -> None:
        os.close(self.fd)


class WarehouseRWLock:
    """The lock files of one warehouse file. Cheap to create: files are opened per acquisition."""

    def __init__(self, warehouse: Path) -> None:
        self.warehouse = warehouse
        base = lock_dir(warehouse)
        self.turnstile = base / "turnstile.lock"
        self.rw = base / "rw.lock"
        self.readers_waiting = base / "readers-waiting.lock"
        self.writers_waiting = base / "writers-waiting.lock"
        self.vacuum = base / "vacuum.lock"
        self.writer_note = base / "writer.txt"

    # -- acquiring ----------------------------------------------------------------------------
    def write(self, timeout: float, what: str) -> Held:
        """Exclusive, for one write transaction; WarehouseLocked (naming the holder) after `timeout` s."""
        started = time.monotonic()
        deadline = started + timeout
        announce = _Announce(self.writers_waiting)
        fds: list[int] = []
        try:
            # readers already waiting go first: they wait for at most the write in progress
            _poll(lambda: not self._someone_waits(self.readers_waiting), min(deadline, started + READERS_FIRST_S))
            turnstile = _open(self.turnstile)
            fds.append(turnstile)
            vacuum = _open(self.vacuum)
            fds.append(vacuum)

            def take_turnstile() -> bool:
                if not _try(turnstile, fcntl.LOCK_EX):
                    return False
                if _try(vacuum, fcntl.LOCK_SH):  # no vacuum runs (one starts only with the turnstile held)
                    fcntl.flock(vacuum, fcntl.LOCK_UN)
                    return True
                fcntl.flock(turnstile, fcntl.LOCK_UN)  # readers must not queue behind a wait for a vacuum
                return False

            if not _poll(take_turnstile, deadline):
                raise self._locked(started, "another writer or a vacuum of the file")
            rw = _open(self.rw)
            fds.append(rw)
            if not _poll(lambda: _try(rw, fcntl.LOCK_EX), deadline):
                raise self._locked(started, "readers still reading")
        except BaseException:
            Held(fds).release()
            raise
        finally:
            announce.close()
        self._note(what)
        return Held(fds)

    def read(self, timeout: float) -> Held:
        """Shared, for one query; WarehouseLocked (naming the writer) after `timeout` s."""
        started = time.monotonic()
        deadline = started + timeout
        announce = _Announce(self.readers_waiting)
        turnstile = _open(self.turnstile)
        rw = _open(self.rw)

        def attempt() -> bool:
            if not _try(turnstile, fcntl.LOCK_EX):  # a writer holds it (or another reader passes through)
                return False
            try:
                return _try(rw, fcntl.LOCK_SH)
            finally:
                fcntl.flock(turnstile, fcntl.LOCK_UN)

        try:
            if not _poll(attempt, deadline):
                raise self._locked(started, "a write in progress")
        except BaseException:
            os.close(rw)
            raise
        finally:
            announce.close()
            os.close(turnstile)
        return Held([rw])

    def vacuum_hold(self, held: Held, timeout: float) -> VacuumHold | None:
        """Turn a write hold (`write()`, the file detached) into a vacuum's: other writers stay out,
        readers come in. None if `vacuum.lock` stays taken for `timeout` s (writers only probe it)."""
        turnstile, vacuum, rw = held.take()
        if not _poll(lambda: _try(vacuum, fcntl.LOCK_EX), time.monotonic() + timeout):
            Held([turnstile, vacuum, rw]).release()
            return None
        fcntl.flock(rw, fcntl.LOCK_SH)  # not atomic, but no writer can come in: the turnstile is ours
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        return VacuumHold(turnstile, vacuum, rw)

    def after_waiting_writers(self, timeout: float) -> None:
        """Let the writers waiting now go first: return once none waits (each got the lock or gave up)
        or after `timeout` s. A process whose turn just ended calls this before its next write;
        without it that next write, polling at 1 ms, took the lock back before a waiter polling at
        20 ms saw it free, and a second process's first write waited 17 s for 8 threads of small
        writes to stop."""
        _poll(lambda: not self.writers_wait(), time.monotonic() + timeout)

    def readers_wait(self) -> bool:
        """Does a reader (of any process) wait for the lock right now?"""
        return self._someone_waits(self.readers_waiting)

    def writers_wait(self) -> bool:
        """Does a writer (of any process) wait for the lock right now?"""
        return self._someone_waits(self.writers_waiting)

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _someone_waits(path: Path) -> bool:
        fd = _open(path)
        try:
            return not _try(fd, fcntl.LOCK_EX)
        finally:
            os.close(fd)  # (drops the probe's own lock, if it got it)

    def _note(self, what: str) -> None:
        """Who writes now, for the error of whoever waits too long (readers never write here)."""
        with contextlib.suppress(OSError):
            self.writer_note.write_text(f"PID {os.getpid()}: {what}\n")

    def _locked(self, started: float, why: str) -> WarehouseLocked:
        return WarehouseLocked(self.warehouse, time.monotonic() - started, f"{why}: {self.holders()}")

    def holders(self) -> str:
        """Who holds the turnstile or the rw lock now: PIDs from /proc/locks with their commands, and
        what the last writer wrote down."""
        pids = _flock_pids([self.turnstile, self.rw, self.vacuum]) - {os.getpid()}
        described = [f"PID {pid} ({_command(pid)})" for pid in sorted(pids)]
        try:
            note = self.writer_note.read_text().strip()
        except OSError:
            note = ""
        if note and (not pids or any(note.startswith(f"PID {pid}:") for pid in pids)):
            described.append(f"last writer {note}")
        return "; ".join(described) or "a screensync process"


def _flock_pids(paths: list[Path]) -> set[int]:
    """PIDs holding a flock on any of `paths` (Linux /proc/locks; empty elsewhere)."""
    inodes = set()
    for p in paths:
        try:
            inodes.add(os.stat(p).st_ino)
        except OSError:
            continue
    pids: set[int] = set()
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return pids
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (blocked waiters are "-> FLOCK ...")
        if len(parts) < 6 or parts[1] != "FLOCK":
            continue
        try:
            pid, inode = int(parts[4]), int(parts[5].rsplit(":", 1)[1])
        except (ValueError, IndexError):
            continue
        if inode in inodes:
            pids.add(pid)
    return pids


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "command unknown"
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    text = " ".join(Path(words[0]).name if i == 0 else w for i, w in enumerate(words[:6]))
    return text[:120] or "command unknown"
