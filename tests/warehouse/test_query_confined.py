"""`screensync query` reads the warehouse and nothing else: no files, no other databases, no
extensions, no exports, and no setting that would turn any of that back on."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.support.warehouse_target import WarehouseTarget
from tests.warehouse.whelpers import batch, page, rec
from warehouse.connection import WarehouseError
from warehouse.loader import Warehouse
from warehouse.query import run_query

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.both_backends  # every test here runs on the DuckDB file and on a DuckLake


@pytest.fixture
def landed(db: WarehouseTarget, wh: Warehouse) -> WarehouseTarget:
    wh.write_page(page([batch([rec("r1")])]))
    wh.create_views()
    wh.close()
    return db


def _refused(db: WarehouseTarget, sql: str) -> str:
    with pytest.raises(WarehouseError) as info:
        run_query(db, sql)
    message = str(info.value)
    assert "screensync query reads only the warehouse" in message, message
    return message


def test_the_key_file_and_other_files_cannot_be_read(landed: WarehouseTarget, tmp_path: Path) -> None:
    key = tmp_path / "secret.key"
    key.write_text(Fernet.generate_key().decode() + "\n")
    for sql in (
        f"SELECT * FROM read_text('{key}')",
        f"SELECT * FROM read_blob('{key}')",
        f"SELECT * FROM read_csv('{key}')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM glob('/root/*')",
        f"SELECT * FROM glob('{tmp_path}/*')",
    ):
        assert key.read_text().strip() not in _refused(landed, sql)


def test_other_databases_cannot_be_attached_read_or_changed(landed: WarehouseTarget, tmp_path: Path) -> None:
    store = tmp_path / "connections.sqlite"
    with sqlite3.connect(store) as con:
        con.execute("CREATE TABLE connections (secret TEXT)")
    other = tmp_path / "other.duckdb"
    with Warehouse(other) as wh:
        wh.execute("CREATE TABLE t AS SELECT 1 AS i")
    before = other.read_bytes()
    _refused(landed, f"ATTACH '{store}' AS s (TYPE sqlite)")
    _refused(landed, f"ATTACH '{other}' AS o (READ_WRITE)")
    _refused(landed, f"ATTACH '{tmp_path / 'new.duckdb'}' AS n")
    assert other.read_bytes() == before and not (tmp_path / "new.duckdb").exists()


def test_nothing_can_be_exported_installed_loaded_or_reconfigured(landed: WarehouseTarget, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    _refused(landed, f"COPY (SELECT * FROM checkr.reports) TO '{out}'")
    _refused(landed, f"EXPORT DATABASE '{tmp_path / 'dump'}'")
    _refused(landed, "INSTALL httpfs")
    _refused(landed, "LOAD httpfs")
    for setting in (
        "SET enable_external_access = true",
        "RESET enable_external_access",
        "SET lock_configuration = false",
        "SET allowed_directories = ['/']",
        "SET autoload_known_extensions = true",
    ):
        _refused(landed, setting)
    assert not out.exists() and not (tmp_path / "dump").exists()


def test_reading_the_warehouse_still_works(landed: WarehouseTarget) -> None:
    assert run_query(landed, "SELECT id, status FROM checkr.reports") == (["id", "status"], [("r1", "pending")])
    _, rows = run_query(landed, "SELECT count(*) FROM checkr.reports_history")
    assert rows == [(1,)]
    with pytest.raises(WarehouseError, match="read-only"):
        run_query(landed, "DELETE FROM checkr.reports")


def test_the_cli_says_what_was_refused(landed: WarehouseTarget, tmp_path: Path) -> None:
    key = tmp_path / "secret.key"
    key.write_text("not-really-a-key-but-private\n")
    done = subprocess.run(
        [sys.executable, "-m", "screensync", "query", f"SELECT * FROM read_text('{key}')"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SCREENSYNC_WAREHOUSE": str(landed), "COLUMNS": "200"},
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 1
    assert "reads only the warehouse" in done.stdout + done.stderr
    assert "not-really-a-key" not in done.stdout + done.stderr
