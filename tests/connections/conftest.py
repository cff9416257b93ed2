"""Fixtures for the connections tests: a real encrypted store (a SQLite file in a tmp dir, or a
database of the throwaway PostgreSQL cluster), the web app on a real port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connections.sqlite_store import SqliteConnectionStore
from connections.store import ConnectionStore, open_store
from tests.support.asgi_server import serve_asgi
from tests.support.postgres import postgres_db, postgres_server  # noqa: F401  (the PostgreSQL backend's fixtures)


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


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(
    request: pytest.FixtureRequest, secret_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """SCREENSYNC_CONNECTIONS for each backend: a SQLite path, or a fresh PostgreSQL database's URL."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_db").url
        monkeypatch.setenv("SCREENSYNC_CONNECTIONS", url)
        return url
    return str(tmp_path / "connections.sqlite")


@pytest.fixture
def any_store(store_location: str) -> Iterator[ConnectionStore]:
    """The store on each backend (the tests using it run once per backend)."""
    opened = open_store(store_location)
    yield opened
    close = getattr(opened, "close", None)
    if close is not None:
        close()


@pytest.fixture
def web(store: SqliteConnectionStore) -> Iterator[str]:
    from connections.web.app import create_app

    with serve_asgi(create_app(store)) as base:
        yield base
