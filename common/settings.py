"""Paths and keys that every part reads from the environment, with their documented defaults."""

from __future__ import annotations

import os
from pathlib import Path

WAREHOUSE_ENV = "SCREENSYNC_WAREHOUSE"
CONNECTIONS_ENV = "SCREENSYNC_CONNECTIONS"
SECRET_KEY_ENV = "SCREENSYNC_SECRET_KEY"
SECRET_KEY_FILE_ENV = "SCREENSYNC_SECRET_KEY_FILE"
PUBLIC_URL_ENV = "SCREENSYNC_PUBLIC_URL"  # where customers' browsers reach `serve-web` (connect links)
API_SECRET_ENV = "SCREENSYNC_API_SECRET"  # Bearer secret of `POST /connect-sessions` (unset: route off)

DEFAULT_WAREHOUSE = Path("warehouse.duckdb")
DEFAULT_CONNECTIONS = Path.home() / ".screensync" / "connections.sqlite"
DEFAULT_SECRET_KEY_FILE = Path.home() / ".screensync" / "secret.key"


def warehouse_setting() -> str:
    """SCREENSYNC_WAREHOUSE as given: a warehouse file's path, or a `ducklake:postgres://...` URL
    (docs/warehouse.md). Pass it to `Warehouse(...)` and `warehouse.read`: both take either."""
    return os.environ.get(WAREHOUSE_ENV) or str(DEFAULT_WAREHOUSE)


def is_lake_value(warehouse: str | Path) -> bool:
    """Is this warehouse setting a DuckLake URL (not a file)?"""
    return isinstance(warehouse, str) and warehouse.startswith("ducklake:")


def local_warehouse_file(warehouse: str) -> Path | None:
    """The warehouse file, or None for a DuckLake URL (several hosts, no shared directory for locks)."""
    return None if is_lake_value(warehouse) else Path(warehouse)


def warehouse_path() -> Path:
    """The warehouse file, for callers that need one (its lock directory, its size). A DuckLake URL
    is no path (`Path` would mangle its `//`): such callers get a clear error, not a wrong file."""
    value = warehouse_setting()
    if is_lake_value(value):
        raise ValueError(f"{WAREHOUSE_ENV} is a DuckLake URL, not a file: this command needs the embedded "
                         "warehouse file (or use warehouse_setting())")
    return Path(value)


def local_lock_anchor(warehouse: str | Path | None = None) -> Path:
    """Where this host keeps the warehouse's lock files (`lock_dir` of it): beside the file, or for a
    DuckLake a per-URL name under ~/.screensync (such locks bind this host only)."""
    value = str(warehouse) if warehouse is not None else warehouse_setting()
    if not is_lake_value(value):
        return Path(value)
    import hashlib

    digest = hashlib.blake2b(value.encode(), digest_size=8).hexdigest()
    return Path.home() / ".screensync" / f"lake-{digest}"


def connections_path() -> Path:
    return Path(os.environ.get(CONNECTIONS_ENV) or DEFAULT_CONNECTIONS)


def public_url() -> str | None:
    return os.environ.get(PUBLIC_URL_ENV, "").strip() or None
