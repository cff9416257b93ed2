"""The warehouse setting as flows pass it on: a string, never normalised.

`SCREENSYNC_WAREHOUSE` is a file path (the embedded DuckDB file) or a URL
(`ducklake:postgres://...`); flows hand it to the warehouse unchanged. Only a file has a
directory beside it for lock files and a parent to create.
"""

from __future__ import annotations

import os
from pathlib import Path


def warehouse_setting() -> str:
    """`SCREENSYNC_WAREHOUSE` as given (a Path would fold a URL's `//`), or the default file."""
    from common.settings import DEFAULT_WAREHOUSE, WAREHOUSE_ENV

    return os.environ.get(WAREHOUSE_ENV) or str(DEFAULT_WAREHOUSE)


def local_warehouse_file(warehouse: str) -> Path | None:
    """The warehouse file, or None for a URL (DuckLake: several hosts, no shared directory)."""
    return None if "://" in warehouse or warehouse.startswith("ducklake:") else Path(warehouse)
