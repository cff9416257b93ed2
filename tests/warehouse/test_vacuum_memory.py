"""A vacuum (merging the small row groups that writes leave) runs in a checkpoint of its own, within
the writes' memory limit: in the detach's checkpoint (CHECKPOINT_MEMORY, 256 MB) DuckDB cached
everything the vacuum read up to that limit, and a 20,000-candidate first sync's peak RSS jumped by
114-153 MB whenever a vacuum happened to land (issue 17: docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

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


def _file_of_small_row_groups(path: Path) -> None:
    con = duckdb.connect(config={"memory_limit": "64MB", "threads": "1"})
    con.execute("SET max_vacuum_tasks = 0")
    con.execute(f"ATTACH '{path}' AS w (ROW_GROUP_SIZE 8192)")
    con.execute("CREATE SCHEMA w.big")
    con.execute("CREATE TABLE w.big.records (id VARCHAR, raw VARCHAR)")
    for g in range(GROUPS):
        con.execute(f"""INSERT INTO w.big.records SELECT 'r{g}-' || range,
                        repeat(md5((range * {g + 7})::VARCHAR), 300) FROM range({ROWS})""")
        con.execute("CHECKPOINT w")  # each checkpoint leaves the rows since the last in a row group of their own
    con.close()


def _row_groups(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        (count,) = con.execute("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('big.records')").fetchone()
    return int(count)


def test_a_vacuum_merges_row_groups_within_the_writes_memory(tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    _file_of_small_row_groups(db)
    assert _row_groups(db) == GROUPS
    out = subprocess.run([sys.executable, "-c", MEASURE, str(db)], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=300)
    grew = json.loads(out.stdout.strip().splitlines()[-1])["grew_mb"]
    assert _row_groups(db) <= 3, "the vacuum did not merge the small row groups"
    # read back within the writes' 48 MB: +10-25 MB; in the 256 MB checkpoint it was ~+150 MB
    assert grew < 80, f"peak RSS grew {grew:.0f} MB while vacuuming"
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM big.records").fetchone() == (GROUPS * ROWS,)
        assert con.execute("SELECT count(*) FROM _screensync.vacuumed").fetchone() == (1,)
