"""The embedded warehouse is held for a write transaction, never longer: readers get answers while
another process writes, a stream of readers never starves a writer, threads of one process take
turns, and whoever waits too long is told who holds it."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from warehouse.connection import WarehouseLocked
from warehouse.loader import Warehouse
from warehouse.read import query, read_session

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.file_only("the embedded file's locks and its being let go between writes")

WRITER = """
import sys, time
from warehouse.loader import Warehouse
wh = Warehouse(sys.argv[1], purpose="busy writer")
with wh.transaction() as con:
    con.execute("CREATE TABLE IF NOT EXISTS t (i INTEGER)")
print("ready", flush=True)
n, end = 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    with wh.transaction() as con:   # back to back, each as long as a sync's page write or longer
        con.execute("INSERT INTO t VALUES (?)", [n])
        time.sleep(0.2)
    n += 1
print(n, flush=True)
"""


def _start(code: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    assert first in ("ready", "held"), first
    return proc


def test_readers_get_answers_while_another_process_keeps_writing(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    writer = _start(WRITER, str(db), "4")
    counts = []
    try:
        while writer.poll() is None:
            counts.append(query("SELECT count(*) FROM t", path=db, timeout=2)[0][0])  # at most one write's wait
    finally:
        assert writer.stdout is not None
        written = int(writer.stdout.readline())
        writer.wait(timeout=30)
    assert written >= 5 and len(counts) >= 5, (written, counts)
    assert counts == sorted(counts) and counts[-1] > counts[0]  # they saw the writes land between them


def test_a_stream_of_readers_does_not_starve_a_writer(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    wh = Warehouse(db)
    wh.execute("CREATE TABLE t (i INTEGER)")
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:  # four overlapping readers: the file is never without one
        try:
            while not stop.is_set():
                with read_session(db, timeout=10) as con:
                    con.execute("SELECT count(*) FROM t").fetchall()
                    time.sleep(0.05)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        for i in range(5):
            Warehouse(db, lock_timeout=5).execute("INSERT INTO t VALUES (?)", [i])
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert errors == []
    assert query("SELECT count(*) FROM t", path=db) == [(5,)]


HOLD = """
import sys
from warehouse.loader import Warehouse
with Warehouse(sys.argv[1], purpose="a long write").transaction():
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_who_waits_too_long_is_told_who_holds_the_warehouse(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    Warehouse(db)
    holder = _start(HOLD, str(db))
    try:
        with pytest.raises(WarehouseLocked) as writing:
            Warehouse(db, lock_timeout=0.5).execute("SELECT 1")
        with pytest.raises(WarehouseLocked) as reading:
            query("SELECT 1", path=db, timeout=0.5)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    for err in (writing.value, reading.value):
        assert f"PID {holder.pid}" in str(err) and "a long write" in str(err) and str(db) in str(err)
    assert query("SELECT 42", path=db) == [(42,)]  # free again at once


def test_threads_of_one_process_take_turns_on_the_file(tmp_path: Path) -> None:
    """DuckDB attaches a file once per process: the web app's threads, a flow's tasks and the
    applier share one writer instead of failing with "Unique file handle conflict"."""
    db = tmp_path / "w.duckdb"
    Warehouse(db).execute("CREATE TABLE t (k VARCHAR)")
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def write(k: int) -> None:
        wh = Warehouse(db)
        start.wait()
        try:
            for i in range(10):
                with wh.transaction() as con:
                    con.execute("INSERT INTO t VALUES (?)", [f"{k}-{i}"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert query("SELECT count(DISTINCT k) FROM t", path=db) == [(60,)]


def test_the_file_is_let_go_between_writes(tmp_path: Path) -> None:
    """Nothing stays open after a write: a process outside screensync can open it read-write at once."""
    db = tmp_path / "w.duckdb"
    wh = Warehouse(db)
    wh.execute("CREATE TABLE t (i INTEGER)")
    code = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); c.execute('INSERT INTO t VALUES (7)'); c.close()"
    subprocess.run([sys.executable, "-c", code, str(db)], check=True, timeout=60)
    assert wh.execute("SELECT i FROM t").fetchall() == [(7,)]


def test_only_the_warehouse_package_opens_the_warehouse_file() -> None:
    """One interface above the backend (issue 15 puts DuckLake behind it): nothing else connects."""
    offenders = []  # bench/ is left out: its yardsticks are plain DuckDB on purpose
    for folder in ("screensync", "flows", "integrations", "connections", "sandbox"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if re.search(r"duckdb\.connect\((?!\":memory:\"\)|\))", text):  # in-memory sessions are no file
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
    assert duckdb.__version__.startswith("1.5.")  # the read-only/attach behaviour relied on here


def test_a_write_that_fails_still_lets_go_of_the_file(tmp_path: Path) -> None:
    from tests.warehouse.whelpers import REPORTS

    db = tmp_path / "checkr.duckdb"  # named after a schema: creating checkr.reports fails, inside a transaction
    wh = Warehouse(db)
    with pytest.raises(ValueError, match="ambiguous"):
        wh.ensure_tables([REPORTS])
    with pytest.raises(duckdb.Error):
        wh.execute("SELECT * FROM no_such_table")
    code = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"
    subprocess.run([sys.executable, "-c", code, str(db)], check=True, timeout=60)


def test_a_held_file_is_let_go_once_a_session_leaves_much_in_the_write_ahead_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What an attach committed to the log stays in DuckDB's memory until its checkpoint: small writes
    of several syncs sharing one attach stacked it (issue 17). With the limit set (a process waiting on
    slow providers), a small write keeps the file for the next session; a large one is checkpointed at
    once, even inside `holding()`."""
    from warehouse import access
    from warehouse.connection import wal_bytes

    KEEP_WAL_BYTES = 1024 * 1024
    monkeypatch.setattr(access, "KEEP_WAL_BYTES", float("inf"))
    db = tmp_path / "w.duckdb"
    wh = Warehouse(db)
    wh.execute("CREATE TABLE t (i INTEGER, s VARCHAR)")
    with wh.holding():  # unset: the file stays attached whatever the log holds
        with wh.transaction() as con:
            con.execute("INSERT INTO t SELECT i, repeat('y', 400) || i FROM range(5000) r(i)")
        assert wal_bytes(db) > KEEP_WAL_BYTES
    access.keep_wal_below(KEEP_WAL_BYTES)
    db = tmp_path / "w2.duckdb"
    wh = Warehouse(db)
    wh.execute("CREATE TABLE t (i INTEGER, s VARCHAR)")
    with wh.holding():
        with wh.transaction() as con:
            con.execute("INSERT INTO t VALUES (1, 'x')")
        assert 0 < wal_bytes(db) < KEEP_WAL_BYTES  # kept attached: not checkpointed yet
        with wh.transaction() as con:  # fewer rows than a row group (8192): they go through the log
            con.execute("INSERT INTO t SELECT i, repeat('y', 400) || i FROM range(5000) r(i)")
        assert wal_bytes(db) == 0  # let go: the checkpoint emptied the log
        with wh.transaction() as con:
            con.execute("INSERT INTO t VALUES (2, 'z')")
        assert wal_bytes(db) > 0
    assert query("SELECT count(*) FROM t", path=db) == [(5002,)]


def test_a_slow_provider_sets_the_write_ahead_log_limit() -> None:
    code = """
from integrations.engine import pending_write, slow_provider
from warehouse import access
before = access.KEEP_WAL_BYTES
for _ in range(20):
    slow_provider.note_answer(0.15)
print(before, access.KEEP_WAL_BYTES == pending_write.SLOW_PROVIDER_WAL_BYTES)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["inf", "True"], out.stderr
