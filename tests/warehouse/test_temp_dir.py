"""Each process's writer spills to a directory of its own, never the shared `./.tmp` of the
checkout (every flow run starts there; DuckDB's spill files have fixed names)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from warehouse.loader import Warehouse

ROOT = Path(__file__).resolve().parents[2]

SPILL_DIR = """
import sys
from warehouse.loader import Warehouse
print(Warehouse(sys.argv[1]).execute("SELECT current_setting('temp_directory')").rows[0][0])
"""


def test_each_process_spills_to_its_own_directory(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    mine = Warehouse(db).execute("SELECT current_setting('temp_directory')").rows[0][0]
    other = subprocess.run([sys.executable, "-c", SPILL_DIR, str(db)], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    assert other.returncode == 0, other.stderr[-2000:]
    theirs = other.stdout.strip()
    assert Path(mine).is_dir() and mine != theirs
    assert not Path(mine).resolve().is_relative_to(ROOT) and not Path(theirs).resolve().is_relative_to(ROOT)
    assert not Path(theirs).exists()  # removed when its process ended
