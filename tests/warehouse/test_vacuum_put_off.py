"""A vacuum (merging small row groups in the detach's checkpoint) takes a second or more on a large
file, and a reader of another process waits for the whole checkpoint. So a detach that finds a reader
waiting checkpoints without it, and the vacuum is owed by the next sessions until one runs it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from warehouse.access import VACUUM_PUT_OFF_MAX, FileWriter
from warehouse.backend import FileBackend

ROOT = Path(__file__).resolve().parents[2]
SMALL_WRITES = 20  # each leaves a row group of its own (no vacuum): fewer than VACUUM_EVERY_WRITES
READER = """
import sys
from warehouse.read import query
print(query("SELECT count(*) FROM t", path=sys.argv[1], timeout=60)[0][0])
"""
PLAIN = {"max_vacuum_tasks": "0"}


def _row_groups(backend: FileBackend) -> int:
    with backend.session(timeout=30, what="count", settings=PLAIN, bulk=True) as con:
        return con.execute("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('t')").fetchone()[0]


def _write(backend: FileBackend, n: int, settings: dict[str, str]) -> int:
    """Append 100 rows; the row groups before this session's checkpoint (and its vacuum, if any)."""
    with backend.session(timeout=30, what="write", settings=settings, bulk=True) as con:
        con.execute(f"INSERT INTO t SELECT range + {n * 100}, repeat('x', 200) FROM range(100)")
        return con.execute("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('t')").fetchone()[0]


def test_a_waiting_reader_gets_a_plain_checkpoint_and_the_next_session_vacuums(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    backend = FileBackend(db)
    with backend.session(timeout=30, what="create", settings=PLAIN, bulk=True) as con:
        con.execute("CREATE TABLE t (id BIGINT, body VARCHAR)")
    for n in range(SMALL_WRITES):
        _write(backend, n, PLAIN)
    before = _row_groups(backend)
    assert before >= SMALL_WRITES  # the writes left small row groups to merge

    writer = FileWriter.of(db)
    reader = None
    try:
        with backend.session(timeout=30, what="write, vacuum due", settings={"max_vacuum_tasks": "100"},
                             bulk=True) as con:
            con.execute("INSERT INTO t VALUES (-1, 'last')")
            reader = subprocess.Popen([sys.executable, "-c", READER, str(db)], cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 60
            while not writer.lock.readers_wait():  # the reader's process started and waits for the file
                assert reader.poll() is None, reader.stderr.read() if reader.stderr else ""
                assert time.monotonic() < deadline, "the reader never waited for the file"
                time.sleep(0.05)
        out, err = reader.communicate(timeout=60)
    finally:
        if reader is not None and reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    assert int(out.strip()) == SMALL_WRITES * 100 + 1
    assert writer.vacuums_put_off == 1
    put_off = _write(backend, SMALL_WRITES, PLAIN)  # nothing merged yet: this detach runs the owed vacuum
    assert writer.vacuums_put_off == 0
    after = _row_groups(backend)
    assert put_off > before and after < before / 4, (before, put_off, after)


def test_a_vacuum_is_put_off_a_bounded_number_of_times(tmp_path: Path) -> None:
    """Readers always waiting must not keep the small row groups from ever being merged."""
    db = tmp_path / "w.duckdb"
    backend = FileBackend(db)
    with backend.session(timeout=30, what="create", settings=PLAIN, bulk=True) as con:
        con.execute("CREATE TABLE t (id BIGINT, body VARCHAR)")
    writer = FileWriter.of(db)
    writer.lock.readers_wait = lambda: True  # type: ignore[method-assign]  # a reader at every detach
    for n in range(VACUUM_PUT_OFF_MAX):
        _write(backend, n, {"max_vacuum_tasks": "100"})
        assert writer.vacuums_put_off == n + 1
    put_off = _write(backend, VACUUM_PUT_OFF_MAX, PLAIN)  # the owed vacuum runs at this detach, reader or not
    assert writer.vacuums_put_off == 0
    after = _row_groups(backend)
    assert put_off > VACUUM_PUT_OFF_MAX and after < VACUUM_PUT_OFF_MAX / 2, (put_off, after)
