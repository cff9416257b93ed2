"""A second process holding the file: we retry, then fail naming the file (never hang)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from warehouse.connection import WarehouseLocked
from warehouse.loader import Warehouse
from warehouse.query import run_query

HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()  # hold the file until the test closes our stdin
con.close()
"""

pytestmark = pytest.mark.file_only("a process outside screensync holding the DuckDB file")


@pytest.mark.slow
def test_locked_file_retries_then_raises_warehouse_locked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "wh.duckdb"
    Warehouse(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with caplog.at_level(logging.WARNING, logger="screensync.warehouse"), pytest.raises(WarehouseLocked) as err:
            Warehouse(db, lock_timeout=0.6)
        message = str(err.value)
        assert str(db) in message and f"PID {holder.pid}" in message
        assert any("held open by a process outside screensync; retrying" in r.getMessage() for r in caplog.records)
        with pytest.raises(WarehouseLocked):
            run_query(db, "SELECT 1", timeout=0.3)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    with Warehouse(db, lock_timeout=5) as wh:  # free again: opens at once
        assert wh.execute("SELECT count(*) FROM _screensync.sync_runs").fetchone() == (0,)
