"""The one way into the embedded warehouse file: a write session or a read session, each short.

DuckDB attaches a file once per process (a second attach fails with "Unique file handle conflict")
and keeps other processes out while it is open. So:

- **Writing**: each process has one `FileWriter` per warehouse file. It owns a DuckDB session,
  lets one thread in at a time, and for each write session takes the cross-process lock
  exclusively (warehouse/rwlock.py), attaches the file, runs the caller's transaction(s), then
  detaches (DuckDB checkpoints) and lets go, so readers and other processes' writers get their
  turn. When another thread of this process already waits, and nobody else does, the file stays
  attached for it (for at most MAX_KEEP_S): one checkpoint instead of one per write. Inside
  `hold()` (one sync run: ~10 short sessions back to back) the file also stays attached between
  this process's sessions while nobody else waits, for at most LINGER_S idle and MAX_KEEP_S in all;
  a watcher thread lets it go as soon as another process (or this one's reader) announces itself
  and no thread of this process is writing. Another process's writer waits for at most this
  process's turn (WRITER_TURN_S of back-to-back writes), a reader only for the write in progress.
  A session that asked for a vacuum (warehouse/backend.py) owes it to the detach, which runs it on a
  copy of the file with readers let in (warehouse/vacuum_copy.py).
- **Reading**: `reading()` shares the lock, opens the file read-only with the confinement of
  warehouse/read.py, and closes it at the end. It waits for at most the write in progress.

Nothing else in screensync opens the warehouse file: issue 15's second backend (DuckLake) goes
behind these two functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from warehouse import vacuum_copy
from warehouse.connection import WarehouseLocked, attach_writer, detach_writer, open_reader, wal_bytes
from warehouse.rwlock import Held, WarehouseRWLock
from warehouse.temp_dir import session_config

log = logging.getLogger("screensync.warehouse")

# Longest a process keeps the file attached across its own back-to-back writes (each attach ends
# in a checkpoint when it lets go)...
MAX_KEEP_S = float(os.environ.get("SCREENSYNC_WAREHOUSE_MAX_KEEP", "10.0"))
# ...and while another process's writer waits. Each hand-over is a checkpoint, an attach and caches
# started cold: letting go after every write made two fan-out workers 2x slower than one; turns of
# 4 s instead of 1 s took 150 connections from 136.7 to 120.5 s. Once a process whose turn ended let
# the waiting writer in first (before, its own next write took the file straight back, and a second
# process waited 17 s and more), 1,000 connections took 817 s with turns of 4 s and 608 s with 8 s
# (docs/benchmarks.md). A reader still gets in at once; another process's writer (the webhook
# applier) waits up to a turn.
WRITER_TURN_S = float(os.environ.get("SCREENSYNC_WAREHOUSE_WRITER_TURN", "8.0"))
WRITER_IDLE_S = 0.05  # within its turn, a held file unused this long goes to another process's waiting writer
# after letting the file go while another process's writer waited, this process's next write lets it in
# first (for at most this long): turns, not a race (warehouse/rwlock.py `after_waiting_writers`)
YIELD_S = 0.5
LINGER_S = 0.25  # inside hold(): longest the file stays attached with no session of this process
# What an attach has committed to the write-ahead log stays in DuckDB's memory until the checkpoint
# that lets the file go, so sessions kept attached back to back stack it. Past KEEP_WAL_BYTES in the
# log (when set: `keep_wal_below`) a session lets the file go even with others waiting or inside
# holding(). At a 150 ms provider small writes of several syncs sharing an attach peaked 10-15 MB
# higher without it (issue 17); at 2 ms the extra checkpoint and attach cost a sync ~3%, so only a
# process waiting on slow providers sets it (integrations/engine/pending_write.py).
KEEP_WAL_BYTES: float = float("inf")
IDLE_POLL_S = 0.01  # how often a lingering writer looks for others waiting


class FileWriter:
    """This process's writer of one warehouse file (`FileWriter.of(path)`)."""

    _all: dict[Path, FileWriter] = {}
    _all_lock = threading.Lock()

    @classmethod
    def of(cls, path: Path) -> FileWriter:
        key = path.resolve()
        with cls._all_lock:
            writer = cls._all.get(key)
            if writer is None:
                writer = cls._all[key] = cls(key)
            return writer

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = WarehouseRWLock(path)
        self._cond = threading.Condition()
        self._owner: int | None = None  # thread in a session
        self._depth = 0  # nested sessions of the owner
        self.sessions = 0  # write sessions so far (backend.py vacuums every so many)
        self.vacuum_step = 0  # the rung of VACUUM_MEMORY_STEPS the last vacuum used (vacuum_copy.memory_rung)
        self.vacuum_owed = False  # a session asked for a vacuum: the next detach runs it (vacuum_copy.py)
        self._waiting = 0  # threads of this process waiting for a session
        self._holds = 0  # open hold() scopes: keep the file attached between sessions
        self._left_at = 0.0  # when the last session ended
        self._watcher: threading.Thread | None = None
        self._what = ""
        self._con: duckdb.DuckDBPyConnection | None = None
        self._settings: dict[str, str] = {}
        self._held: Held | None = None
        self._alias: str | None = None  # set while the file is attached
        self._attached_at = 0.0
        self._yield = False  # the last detach found another process's writer waiting: let it in first
        self.generation = 0  # bumped at every attach: what a writer cached may be stale after it
        # what this process's writes left that the next write may reuse without reading it back: valid
        # while the file stays attached (nobody else can write), emptied at every attach
        self.memo: dict[str, Any] = {}
        self.file_id: tuple[int, int] | None = None  # (device, inode) of the attached file
        # this process's vacuums renamed a copy over the file: the copy's (device, inode) -> the file's
        # file_id before, so what the process knows about the file's tables still holds
        self._vacuumed_ids: dict[tuple[int, int], tuple[int, int]] = {}
        self.created = False  # the last attach created the file

    # -- sessions -----------------------------------------------------------------------------
    @contextmanager
    def session(
        self, *, timeout: float, what: str, settings: dict[str, str], prepare: Callable[[duckdb.DuckDBPyConnection], None]
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """The attached file, this thread's alone until the block ends; the caller runs its own
        transaction(s). `prepare(con)` runs after each attach. Waits at most `timeout` s in all."""
        deadline = time.monotonic() + timeout
        if settings.get("max_vacuum_tasks", "0") != "0":  # a vacuum at the detach, never inside the session
            self.vacuum_owed = True
            settings = {**settings, "max_vacuum_tasks": "0"}
        if self._enter(deadline, what):
            try:
                yield self._session_con()  # nested: the outer session holds everything
            finally:
                with self._cond:
                    self._depth -= 1
            return
        failed = True
        try:
            con = self._session_con()
            self._apply(con, settings)
            if self._alias is None:
                self._attach(con, deadline, what)
                prepare(con)
            failed = False
            yield con
        except BaseException:
            failed = True
            raise
        finally:
            self._leave(failed)

    def _enter(self, deadline: float, what: str) -> bool:
        """Become the owner (False), or find this thread already is (True: a nested session)."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            self._waiting += 1
            started = time.monotonic()
            try:
                while self._owner is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise WarehouseLocked(self.path, time.monotonic() - started,
                                              f"another thread of this process is writing ({self._what})")
                    self._cond.wait(remaining)
            except BaseException:
                self._waiting -= 1
                self._close_if_idle()
                raise
            self._waiting -= 1
            self._owner, self._depth, self._what = me, 1, what
            return False

    def _leave(self, failed: bool) -> None:
        with self._cond:
            self._depth -= 1
            if self._depth:
                return
            con = self._con
            if failed and con is not None and self._alias is not None:
                with contextlib.suppress(duckdb.Error):  # what the caller left open must not reach the checkpoint
                    con.execute("ROLLBACK")
            keep = (
                not failed
                and self._alias is not None
                and (self._waiting > 0 or self._holds > 0)
                and time.monotonic() - self._attached_at < MAX_KEEP_S
                and not self._turn_over()
                and wal_bytes(self.path) < KEEP_WAL_BYTES
            )
            try:
                if not keep:
                    self._detach()
            finally:
                self._owner = None
                self._left_at = time.monotonic()
                self._cond.notify_all()  # a waiting thread, and the watcher of a held file

    def _turn_over(self) -> bool:
        """Must this process let the file go before its next write? At once for a waiting reader;
        for another process's waiting writer once this attach has had WRITER_TURN_S."""
        if self.lock.readers_wait():
            return True
        return time.monotonic() - self._attached_at >= WRITER_TURN_S and self.lock.writers_wait()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep the file attached between this process's sessions for the block (see the module
        docstring): a sync run's sessions share one attach and one checkpoint instead of ~10."""
        with self._cond:
            self._holds += 1
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name=f"linger {self.path.name}", daemon=True)
                self._watcher.start()
        try:
            yield
        finally:
            with self._cond:
                self._holds -= 1
                if self._holds == 0:
                    self._close_if_idle()

    def release_idle(self, *, wait: bool = True) -> None:
        """Let the file go now if it is attached and no session of this process uses it. `wait=False`:
        not if a thread of this process is busy with the writer (a detach that vacuums holds it for
        seconds, with readers let in; the watcher lets a lingering file go once a reader waits)."""
        if not self._cond.acquire(blocking=wait):
            return
        try:
            self._close_if_idle()
        finally:
            self._cond.release()

    def _watch(self) -> None:
        """Detach a lingering file: once idle LINGER_S, MAX_KEEP_S after the attach, at once when a
        reader waits (it waits for at most the write in progress plus IDLE_POLL_S), and when another
        process's writer waits once this process's turn is over or it has not written for WRITER_IDLE_S."""
        while True:
            with self._cond:
                while self._alias is None or self._owner is not None:
                    self._cond.wait()
            time.sleep(IDLE_POLL_S)
            with self._cond:
                if self._alias is None or self._owner is not None or self._waiting:
                    continue
                now = time.monotonic()
                if (self._holds == 0 or now - self._left_at >= LINGER_S or now - self._attached_at >= MAX_KEEP_S
                        or self._turn_over()
                        or (now - self._left_at >= WRITER_IDLE_S and self.lock.writers_wait())):
                    self._detach()

    def _close_if_idle(self) -> None:
        """A waiter gave up: if the file was kept attached for it alone, let it go now (cond held)."""
        if self._owner is None and self._waiting == 0 and self._alias is not None:
            self._detach()

    def _session_con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            # in-memory; the warehouse file is attached to it per session; it spills to this process's own dir
            self._con = duckdb.connect(config=session_config())
            self._settings = {}
        return self._con

    def _apply(self, con: duckdb.DuckDBPyConnection, settings: dict[str, str]) -> None:
        changed = {k: v for k, v in settings.items() if self._settings.get(k) != v}
        if changed:
            con.execute(";".join(f"SET {k} = {v}" for k, v in changed.items()))
            self._settings.update(changed)

    def _attach(self, con: duckdb.DuckDBPyConnection, deadline: float, what: str) -> None:
        if self._yield:  # turns, not a race this process's next write always won
            self._yield = False
            self.lock.after_waiting_writers(min(YIELD_S, max(0.0, deadline - time.monotonic())))
        held = self.lock.write(max(0.0, deadline - time.monotonic()), what)
        try:
            self._alias, self.created = attach_writer(con, self.path, row_group_size=ROW_GROUP_SIZE,
                                                      deadline=deadline)
        except BaseException:
            held.release()
            raise
        self._held = held
        self._attached_at = time.monotonic()
        self.generation += 1
        self.memo = {}
        st = self.path.stat()
        self.file_id = self._vacuumed_ids.get((st.st_dev, st.st_ino), (st.st_dev, st.st_ino))

    def _detach(self) -> None:
        alias, held = self._alias, self._held
        self._alias, self._held = None, None
        self._yield = held is not None and self.lock.writers_wait()  # (this process announces only in _attach)
        try:
            if alias is not None and self._con is not None:
                try:
                    memory_limit = self._settings.get("memory_limit")
                    detach_writer(self._con, alias, memory_limit=memory_limit)
                    if self.vacuum_owed and held is not None:  # on a copy, readers let in (vacuum_copy.py)
                        self.vacuum_owed = False
                        self.vacuum_step = max(self.vacuum_step, vacuum_copy.memory_rung(self.path))
                        vacuum = f"'{vacuum_copy.VACUUM_MEMORY_STEPS[self.vacuum_step]}'"
                        done = vacuum_copy.vacuum_on_copy(self._con, self.path, self.lock, held,
                                                          row_group_size=ROW_GROUP_SIZE, memory_limit=memory_limit,
                                                          vacuum_memory=vacuum)
                        if done is False:
                            self.vacuum_step = vacuum_copy.climb(self.path, self.vacuum_step)
                        elif done and self.file_id is not None:
                            st = self.path.stat()
                            self._vacuumed_ids[(st.st_dev, st.st_ino)] = self.file_id
                except duckdb.Error as exc:
                    # what was committed is in the write-ahead log, and the next attach replays it; a
                    # checkpoint that fails (disk full, say) must still let go of the file: drop the session
                    log.warning("warehouse %s: closing after a write failed (%s); the next write retries it",
                                self.path, exc)
                    con, self._con = self._con, None
                    con.close()
        finally:
            if held is not None:
                held.release()


def keep_wal_below(nbytes: float) -> None:
    """Let the file go after any session that leaves `nbytes` or more in the write-ahead log."""
    global KEEP_WAL_BYTES
    KEEP_WAL_BYTES = nbytes


# Rows are appended a page or two at a time and DuckDB re-compresses the whole trailing row
# group at every automatic checkpoint: with its default (122,880 rows) a long first load
# rewrote the same growing row group a dozen times, and held all of it in memory to do so.
ROW_GROUP_SIZE = 8192


@contextmanager
def reading(path: Path, *, timeout: float, config: dict[str, Any]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection for one query or a few, closed at the end; waits at most `timeout` s."""
    path = Path(path)
    writer = FileWriter._all.get(path.resolve())
    if writer is not None and writer._owner == threading.get_ident():
        raise RuntimeError("a read session cannot start inside this thread's own write session")
    if writer is not None:
        writer.release_idle(wait=False)  # this process's own lingering attach would keep its reader out
    deadline = time.monotonic() + timeout
    held = WarehouseRWLock(path).read(timeout)
    try:
        con = open_reader(path, deadline=deadline, config=config)
        try:
            yield con
        finally:
            con.close()
    finally:
        held.release()
