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


def warehouse_path() -> Path:
    return Path(os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE)


def connections_path() -> Path:
    return Path(os.environ.get(CONNECTIONS_ENV) or DEFAULT_CONNECTIONS)


def public_url() -> str | None:
    return os.environ.get(PUBLIC_URL_ENV, "").strip() or None
