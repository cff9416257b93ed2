"""Fixtures of the DuckLake tests (import them into a test module: `from tests.warehouse.lake_fixtures import ...`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.warehouse_target import lake_url

if TYPE_CHECKING:
    from tests.support.postgres import PgDatabase


@pytest.fixture(name="url")
def lake_url_fixture(postgres_db: PgDatabase, tmp_path: Path) -> str:
    """A new lake: its catalog a fresh database of the throwaway PostgreSQL, its files under tmp_path."""
    return lake_url(postgres_db, tmp_path / "lake")


@pytest.fixture(autouse=True)
def fresh_lake_sessions() -> Iterator[None]:
    """Each test's lake is a new database: drop this process's sessions on earlier ones."""
    yield
    from warehouse.lake_backend import LakeBackend

    for backend in list(LakeBackend._all.values()):
        backend.close()
    LakeBackend._all.clear()
