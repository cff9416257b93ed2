"""Where this process's in-memory DuckDB sessions spill: a directory of its own.

An in-memory DuckDB spills to `.tmp/` in the current directory, under fixed file names
(`duckdb_temp_storage_S32K-0.tmp`, ...). Every process started in the same directory (the workers'
flow runs all start in the project's checkout) then reads and overwrites the others' spill files:
measured here as "Could not read enough bytes from file .tmp/duckdb_temp_storage_S32K-0.tmp", a
database invalidated at its checkpoint, writers out of memory and a flow-run process dying with
SIGSEGV while two benchmarks ran side by side. A private directory per process, removed at exit."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache


@lru_cache(maxsize=1)
def process_temp_dir() -> str:
    """This process's spill directory for DuckDB (created on first use, removed at exit)."""
    path = tempfile.mkdtemp(prefix="screensync-duckdb-")
    atexit.register(shutil.rmtree, path, True)
    return path


def session_config() -> dict[str, str]:
    """DuckDB settings every in-memory session of this process is opened with."""
    return {"temp_directory": process_temp_dir()}
