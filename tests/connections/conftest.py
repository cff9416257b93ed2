"""Fixtures for the connections tests: a real encrypted SQLite store in a tmp dir, the web app on a real port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connections.sqlite_store import SqliteConnectionStore
from tests.support.asgi_server import serve_asgi


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY", key)
    monkeypatch.setenv("SCREENSYNC_CONNECTIONS", str(tmp_path / "connections.sqlite"))
    monkeypatch.delenv("SCREENSYNC_SECRET_KEY_FILE", raising=False)
    return key


@pytest.fixture
def store(secret_key: str, tmp_path: Path) -> SqliteConnectionStore:
    return SqliteConnectionStore(tmp_path / "connections.sqlite")


@pytest.fixture
def web(store: SqliteConnectionStore) -> Iterator[str]:
    from connections.web.app import create_app

    with serve_asgi(create_app(store)) as base:
        yield base
