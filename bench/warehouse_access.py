"""What holding the warehouse per write transaction costs, and what readers wait.

    .venv/bin/python bench/warehouse_access.py [--rows 200000] [--writes 100]

1. One small write (a 100-row insert) in its own session (attach, write, detach + checkpoint),
   against the same write on a connection kept open: the price of letting go between writes.
2. Four threads of one process writing back to back, with the file kept attached for a waiting
   thread (warehouse/access.py, MAX_KEEP_S) and without.
3. A reader's wait (`warehouse.read.query`) while another process writes back to back, each
   write holding the file 0.2 s: the worst wait should be about one write.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from warehouse import access
from warehouse.connection import attach_writer
from warehouse.loader import Warehouse
from warehouse.read import query

ROOT = Path(__file__).resolve().parent.parent
WRITER = """
import sys, time
from warehouse.loader import Warehouse
wh = Warehouse(sys.argv[1])
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    with wh.transaction() as con:
        con.execute("INSERT INTO t SELECT range, 'x' FROM range(100)")
        time.sleep(0.2)
"""


def _fill(db: Path, rows: int) -> None:
    Warehouse(db).execute(f"CREATE TABLE t AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range({rows})")


def per_write(db: Path, writes: int) -> tuple[float, float]:
    wh = Warehouse(db)
    t0 = time.perf_counter()
    for _ in range(writes):
        with wh.transaction() as con:
            con.execute("INSERT INTO t SELECT range, 'x' FROM range(100)")
    session = (time.perf_counter() - t0) / writes
    import duckdb

    con = duckdb.connect()
    attach_writer(con, db, row_group_size=access.ROW_GROUP_SIZE, deadline=time.monotonic() + 10)
    t0 = time.perf_counter()
    for _ in range(writes):
        con.execute("BEGIN")
        con.execute("INSERT INTO t SELECT range, 'x' FROM range(100)")
        con.execute("COMMIT")
    held = (time.perf_counter() - t0) / writes
    con.close()
    return session, held


def threads(db: Path, writes: int, keep_s: float) -> float:
    access.MAX_KEEP_S = keep_s
    start = threading.Barrier(4)

    def work() -> None:
        wh = Warehouse(db)
        start.wait()
        for _ in range(writes // 4):
            with wh.transaction() as con:
                con.execute("INSERT INTO t SELECT range, 'x' FROM range(100)")

    pool = [threading.Thread(target=work) for _ in range(4)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - t0


def reader_waits(db: Path, seconds: float) -> list[float]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(seconds)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    waits = []
    while proc.poll() is None:
        t0 = time.perf_counter()
        query("SELECT count(*) FROM t", path=db)
        waits.append(time.perf_counter() - t0)
        time.sleep(0.05)
    return waits


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--writes", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "w.duckdb"
        _fill(db, args.rows)
        mb = db.stat().st_size / 1e6
        session, held = per_write(db, args.writes)
        print(f"file {mb:.0f} MB; one 100-row write: {session * 1000:.1f} ms in its own session, "
              f"{held * 1000:.1f} ms on a connection kept open")
        kept = threads(db, args.writes * 4, access.MAX_KEEP_S)
        closed = threads(db, args.writes * 4, 0.0)
        print(f"4 threads x {args.writes} writes: {kept:.2f} s keeping the file for a waiting thread, "
              f"{closed:.2f} s letting go after every write")
        waits = reader_waits(db, 6.0)
        print(f"reader while another process writes (0.2 s per write): {len(waits)} queries, median "
              f"{statistics.median(waits) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
