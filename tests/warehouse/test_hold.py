"""`Warehouse.holding()` (one sync run): the run's writes share one attach of the file, yet another
process's reader still gets in while it is held, and the file is let go when the hold ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from warehouse import access
from warehouse.access import FileWriter
from warehouse.loader import Warehouse

ROOT = Path(__file__).resolve().parents[2]

READER = """
import sys
from warehouse.read import query
print(query("SELECT count(*) FROM t", path=sys.argv[1], timeout=10)[0][0])
"""


def _attaches(db: Path) -> int:
    return FileWriter.of(db).generation


def test_writes_in_a_hold_share_one_attach_and_the_file_is_let_go_after(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    wh = Warehouse(db)
    wh.execute("CREATE TABLE t (i INTEGER)")
    before = _attaches(db)
    with wh.holding():
        for i in range(5):
            wh.execute("INSERT INTO t VALUES (?)", [i])
    assert _attaches(db) - before == 1  # without the hold: one attach (and checkpoint) per write
    # let go at the end: another connection of this process can open the file itself
    con = duckdb.connect(str(db))
    try:
        assert con.execute("SELECT count(*) FROM t").fetchone() == (5,)
    finally:
        con.close()


def test_another_process_reads_while_this_one_holds_the_file(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "w.duckdb"
    wh = Warehouse(db)
    wh.execute("CREATE TABLE t (i INTEGER)")
    monkeypatch.setattr(access, "LINGER_S", 3600.0)  # only a waiting reader can make it let go
    monkeypatch.setattr(access, "MAX_KEEP_S", 3600.0)
    with wh.holding():
        wh.execute("INSERT INTO t VALUES (1)")
        assert FileWriter.of(db)._alias is not None  # still attached between writes
        out = subprocess.run([sys.executable, "-c", READER, str(db)], cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip() == "1"
        wh.execute("INSERT INTO t VALUES (2)")  # and the hold goes on writing after the reader
    assert wh.execute("SELECT count(*) FROM t").rows == [(2,)]


def test_a_reader_of_this_process_gets_in_during_a_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from warehouse.read import query

    db = tmp_path / "w.duckdb"
    wh = Warehouse(db)
    wh.execute("CREATE TABLE t (i INTEGER)")
    monkeypatch.setattr(access, "LINGER_S", 3600.0)
    with wh.holding():
        wh.execute("INSERT INTO t VALUES (1)")
        assert query("SELECT count(*) FROM t", path=db, timeout=5) == [(1,)]


def test_tables_ensured_once_per_process_are_made_again_in_a_new_file(tmp_path: Path) -> None:
    """The process remembers the tables it ensured per warehouse (Warehouse objects are made per
    sync); a file created anew at the same path gets them again."""
    from tests.warehouse.whelpers import REPORTS

    db = tmp_path / "w.duckdb"
    Warehouse(db).ensure_tables([REPORTS])
    second = Warehouse(db)
    assert REPORTS in second._columns  # remembered: no DDL for the second object
    FileWriter.of(db).release_idle()
    for leftover in tmp_path.glob("w.duckdb*"):
        leftover.unlink()
    third = Warehouse(db)
    third.ensure_tables([REPORTS])
    tables = third.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'checkr'").rows
    assert ("reports",) in tables


def test_another_process_writer_waits_for_this_ones_turn_a_reader_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes writing at once hand the file over once per turn, not once per write (each
    hand-over is a checkpoint and an attach): with another writer announced, back-to-back writes of
    a held file stay on one attach until WRITER_TURN_S has passed; a waiting reader ends it at once."""
    import time

    from warehouse.rwlock import WarehouseRWLock, _Announce

    db = tmp_path / "w.duckdb"
    wh = Warehouse(db)
    wh.execute("CREATE TABLE t (i INTEGER)")
    monkeypatch.setattr(access, "LINGER_S", 3600.0)
    monkeypatch.setattr(access, "MAX_KEEP_S", 3600.0)
    monkeypatch.setattr(access, "WRITER_TURN_S", 1.5)
    lock = WarehouseRWLock(db)
    writer = FileWriter.of(db)
    with wh.holding():
        wh.execute("INSERT INTO t VALUES (0)")
        attach = writer.generation
        waiting = _Announce(lock.writers_waiting)  # as another process's writer does while it waits
        try:
            started, writes = time.monotonic(), 0
            while writer._alias is not None:  # writes back to back (never idle: see the watcher)
                wh.execute("INSERT INTO t VALUES (?)", [writes])
                writes += 1
                assert writer.generation == attach  # each on the same attach...
            assert time.monotonic() - started >= 1.5 - 0.1  # ...until the turn was over
            assert writes > 3
        finally:
            waiting.close()
        wh.execute("INSERT INTO t VALUES (5)")
        attach = writer.generation
        reader = _Announce(lock.readers_waiting)
        try:
            wh.execute("INSERT INTO t VALUES (6)")  # a reader waits: let go after this write
            assert writer._alias is None
        finally:
            reader.close()
        assert writer.generation == attach  # write 6 went on write 5's attach, then let go
    assert wh.execute("SELECT count(*) FROM t").rows == [(writes + 3,)]


BUSY_WRITER = """
import sys, threading, time
from warehouse.loader import Warehouse
db, seconds = sys.argv[1], float(sys.argv[2])
wh = Warehouse(db, lock_timeout=60)
end = time.monotonic() + seconds
print("writing", flush=True)

def work() -> None:
    while time.monotonic() < end:  # small transactions back to back: a thread of this process always waits
        wh.write(lambda con: con.execute("INSERT INTO t VALUES (1)"), what="busy")

threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def test_a_second_process_writes_after_one_turn_while_another_writes_without_pause(tmp_path: Path) -> None:
    """Turns, not a race: a process whose turn ended used to take the file straight back (its next
    write polls at 1 ms, a waiting process at up to 20 ms), so a second process's first write waited
    17 s for 8 threads of small writes to stop. Now each of its writes waits for one turn at most."""
    db = tmp_path / "w.duckdb"
    Warehouse(db).execute("CREATE TABLE t (i INTEGER)")
    env = {**os.environ, "SCREENSYNC_WAREHOUSE_WRITER_TURN": "1.0", "SCREENSYNC_WAREHOUSE_MAX_KEEP": "2.0",
           "PYTHONPATH": str(ROOT)}
    busy = subprocess.Popen([sys.executable, "-c", BUSY_WRITER, str(db), "14"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert busy.stdout is not None and busy.stdout.readline().strip() == "writing"
        time.sleep(1.5)  # its threads write back to back by now
        second = subprocess.run(
            [sys.executable, "-c", "import sys, time\n"
             "from warehouse.loader import Warehouse\n"
             "wh = Warehouse(sys.argv[1], lock_timeout=30)\n"
             "for i in range(3):\n"
             "    t0 = time.monotonic()\n"
             "    wh.write(lambda con: con.execute('INSERT INTO t VALUES (2)'), what='second')\n"
             "    print(round(time.monotonic() - t0, 2))\n",
             str(db)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        waits = [float(w) for w in second.stdout.split()]
        assert busy.poll() is None, "the busy writer stopped before the second process had written"
        # one turn (1 s) plus a hand-over each, with room for a loaded machine; before, the first
        # write waited for the busy one to stop (11-17 s)
        assert len(waits) == 3 and max(waits) < 4.0, waits
    finally:
        busy.wait(timeout=60)
    assert Warehouse(db).execute("SELECT count(*) FROM t WHERE i = 2").rows == [(3,)]
