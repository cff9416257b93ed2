"""A vacuum (merging the small row groups that writes leave) runs in a checkpoint of its own, within
a small memory limit (VACUUM_MEMORY_STEPS): in the detach's checkpoint (CHECKPOINT_MEMORY, 256 MB) DuckDB cached
everything the vacuum read up to that limit, and a 20,000-candidate first sync's peak RSS jumped by
114-153 MB whenever a vacuum happened to land (issue 17: docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from tests.warehouse.whelpers import file_of_small_row_groups, row_groups
from warehouse import vacuum_copy
from warehouse.access import FileWriter
from warehouse.connection import CHECKPOINT_MEMORY

ROOT = Path(__file__).resolve().parents[2]
GROUPS, ROWS = 40, 350  # 14,000 rows of ~10 KB: ~140 MB to read back, 40 row groups to merge

MEASURE = textwrap.dedent("""
    import json, resource, sys
    from warehouse.loader import Warehouse

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Warehouse(sys.argv[1])  # a new file's first small write session vacuums (warehouse/backend.py), then lets go
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"grew_mb": after - before}))
""")


def test_a_vacuum_merges_row_groups_within_the_writes_memory(tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    file_of_small_row_groups(db, GROUPS, ROWS)
    assert row_groups(db) == GROUPS
    out = subprocess.run([sys.executable, "-c", MEASURE, str(db)], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=300)
    grew = json.loads(out.stdout.strip().splitlines()[-1])["grew_mb"]
    assert row_groups(db) <= 3, "the vacuum did not merge the small row groups"
    # read back within VACUUM_MEMORY_STEPS' first 24 MB; in the 256 MB checkpoint it was ~+150 MB
    assert grew < 80, f"peak RSS grew {grew:.0f} MB while vacuuming"
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM big.records").fetchone() == (GROUPS * ROWS,)
        assert con.execute("SELECT count(*) FROM _screensync.vacuumed").fetchone() == (1,)


def test_a_vacuum_short_of_memory_loses_nothing_and_the_next_one_gets_more(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in one 1,000-connection fan-out, where 48 MB was too little for a 1.3 GB file: DuckDB
    invalidates the attached copy (warehouse/vacuum_copy.py); the file is left as it was, and this
    file's later vacuums, in any process, go up a rung of VACUUM_MEMORY_STEPS and succeed."""
    monkeypatch.setattr(vacuum_copy, "VACUUM_MEMORY_STEPS", ("6MB", CHECKPOINT_MEMORY))
    db = tmp_path / "warehouse.duckdb"
    file_of_small_row_groups(db, GROUPS, ROWS)
    writer = FileWriter(db.resolve())  # a writer of its own, not the process's shared one
    settings = {"memory_limit": "'48MB'", "max_vacuum_tasks": "100", "threads": "1"}

    def write(value: str) -> None:
        with writer.session(timeout=30, what="test", settings=settings, prepare=lambda con: None) as con:
            con.execute("INSERT INTO big.records VALUES (?, 'x')", [value])

    write("short")  # its vacuum within 6 MB: too little
    assert writer.vacuum_step == 1
    assert vacuum_copy.memory_rung(db) == 1  # kept for the file: another process starts there
    assert row_groups(db) > GROUPS // 2, "the vacuum within 6 MB was expected to run short"
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM big.records").fetchone() == (GROUPS * ROWS + 1,)
    writer = FileWriter(db.resolve())  # as a new process: its first vacuum gets the file's rung
    write("enough")  # within CHECKPOINT_MEMORY
    assert writer.vacuum_step == 1
    assert row_groups(db) <= 3
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM big.records").fetchone() == (GROUPS * ROWS + 2,)
        assert con.execute("SELECT count(*) FROM _screensync.vacuumed").fetchone() == (1,)
