"""A vacuum of the embedded file runs on a copy with readers let in (warehouse/vacuum_copy.py): an
analyst answers at once while one runs, a writer waits for it without holding readers up, and
nothing written is lost to the rename; a vacuum killed midway leaves the file as it was."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from tests.warehouse.whelpers import file_of_small_row_groups, row_groups
from warehouse import vacuum_copy
from warehouse.access import FileWriter, reading
from warehouse.read import query

ROOT = Path(__file__).resolve().parents[2]
GROUPS, ROWS = 30, 100
pytestmark = pytest.mark.file_only("the embedded file's vacuum")

# A process whose next write session vacuums, stopping once the copy is made (readers are let in
# then) until told to go on.
VACUUMER = """
import sys
from warehouse import vacuum_copy
from warehouse.access import FileWriter

copy = vacuum_copy._copy

def copy_then_wait(src, dst):
    copy(src, dst)
    print("copied", flush=True)
    sys.stdin.readline()

vacuum_copy._copy = copy_then_wait
writer = FileWriter.of(__import__("pathlib").Path(sys.argv[1]))
settings = {"memory_limit": "'48MB'", "max_vacuum_tasks": "100", "threads": "1"}
with writer.session(timeout=30, what="a vacuuming write", settings=settings, prepare=lambda con: None) as con:
    con.execute("INSERT INTO big.records VALUES ('vacuumer', 'x')")
print("done", flush=True)
"""

WRITER = """
import sys
from warehouse.loader import Warehouse
Warehouse(sys.argv[1], lock_timeout=60).execute("INSERT INTO big.records VALUES ('later', 'y')")
"""


VACUUM_SETTINGS = {"memory_limit": "'48MB'", "max_vacuum_tasks": "100", "threads": "1"}  # asks for a vacuum


def _vacuuming_write(writer: FileWriter, value: str) -> None:
    """One write session of `writer` whose detach vacuums."""
    with writer.session(timeout=5, what="test", settings=VACUUM_SETTINGS, prepare=lambda con: None) as con:
        con.execute("INSERT INTO big.records VALUES (?, 'x')", [value])


def _count(db: Path) -> int:
    return int(query("SELECT count(*) FROM big.records", path=db, timeout=1)[0][0])


def _vacuumer(db: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", VACUUMER, str(db)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    if not ready:
        proc.kill()
    assert ready and proc.stdout.readline().strip() == "copied", "the write session did not vacuum on a copy"
    return proc


def test_readers_answer_during_a_vacuum_and_a_waiting_writer_holds_none_of_them_up(tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    file_of_small_row_groups(db, GROUPS, ROWS)
    vacuumer = _vacuumer(db)
    writer = None
    try:
        started = time.monotonic()
        assert _count(db) == GROUPS * ROWS + 1  # within a second, the vacuum stopped midway
        assert time.monotonic() - started < 1.0
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], cwd=ROOT)
        time.sleep(1.5)
        assert writer.poll() is None, "a writer got in while the vacuum ran"
        started = time.monotonic()
        assert _count(db) == GROUPS * ROWS + 1  # the waiting writer does not queue readers behind it
        assert time.monotonic() - started < 1.0
    finally:
        assert vacuumer.stdin is not None
        vacuumer.stdin.write("\n")
        vacuumer.stdin.close()
    assert vacuumer.wait(timeout=60) == 0
    assert writer.wait(timeout=60) == 0
    assert row_groups(db) <= 3  # merged (the later write's row group on top)
    with duckdb.connect(str(db), read_only=True) as con:  # nothing lost to the rename
        assert con.execute("SELECT count(*) FROM big.records").fetchone() == (GROUPS * ROWS + 2,)
        assert con.execute("SELECT count(*) FROM big.records WHERE id IN ('vacuumer', 'later')").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM _screensync.vacuumed").fetchone() == (1,)
    assert not vacuum_copy.copy_path(db).exists()


def test_a_vacuum_killed_midway_leaves_the_file_as_it_was_and_the_next_one_runs(tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    file_of_small_row_groups(db, GROUPS, ROWS)
    vacuumer = _vacuumer(db)
    vacuumer.send_signal(signal.SIGKILL)
    vacuumer.wait(timeout=30)
    assert vacuum_copy.copy_path(db).exists()  # left behind
    assert row_groups(db) == GROUPS + 1
    assert _count(db) == GROUPS * ROWS + 1  # the killed process's committed write is there
    writer = FileWriter(db.resolve())  # the lock went with the process: in at once, and it vacuums
    _vacuuming_write(writer, "after")
    assert row_groups(db) <= 2
    assert _count(db) == GROUPS * ROWS + 2
    assert not vacuum_copy.copy_path(db).exists()


def test_a_query_that_outlasts_the_vacuum_keeps_the_file_and_drops_the_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "warehouse.duckdb"
    file_of_small_row_groups(db, GROUPS, ROWS)
    monkeypatch.setattr(vacuum_copy, "SWAP_TIMEOUT_S", 0.5)
    reading_now, done = threading.Event(), threading.Event()
    readers: list[threading.Thread] = []

    def long_query() -> None:
        with reading(db, timeout=5, config={}) as con:
            con.execute("SELECT count(*) FROM big.records").fetchall()
            reading_now.set()
            done.wait(10)

    copy = vacuum_copy._copy

    def copy_then_a_reader_comes(src: Path, dst: Path) -> None:
        copy(src, dst)
        readers.append(threading.Thread(target=long_query))
        readers[0].start()
        assert reading_now.wait(5)

    monkeypatch.setattr(vacuum_copy, "_copy", copy_then_a_reader_comes)
    before = db.stat().st_ino
    writer = FileWriter(db.resolve())
    try:
        _vacuuming_write(writer, "w")
    finally:
        done.set()
        for t in readers:  # its connection (another config) closed before the checks below open theirs
            t.join(10)
    assert db.stat().st_ino == before  # not replaced
    assert not vacuum_copy.copy_path(db).exists()
    assert writer.vacuum_step == 0  # no memory was short: the next due vacuum tries again as before
    assert row_groups(db) == GROUPS + 1
    assert _count(db) == GROUPS * ROWS + 1


def test_a_reader_in_the_vacuuming_process_answers_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve-web` reads and applies webhooks in one process: its reader must not wait on the writer
    busy vacuuming."""
    db = tmp_path / "warehouse.duckdb"
    file_of_small_row_groups(db, GROUPS, ROWS)
    answers: list[tuple[float, int]] = []
    copy = vacuum_copy._copy

    def copy_then_read(src: Path, dst: Path) -> None:
        copy(src, dst)

        def read() -> None:
            started = time.monotonic()
            count = _count(db)
            answers.append((time.monotonic() - started, count))

        reader = threading.Thread(target=read)
        reader.start()
        reader.join(10)

    monkeypatch.setattr(vacuum_copy, "_copy", copy_then_read)
    writer = FileWriter.of(db)  # the process's own writer, which `reading` looks for
    _vacuuming_write(writer, "w")
    assert len(answers) == 1 and answers[0][1] == GROUPS * ROWS + 1
    assert answers[0][0] < 1.0
    assert row_groups(db) <= 2
