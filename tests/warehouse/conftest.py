"""Fixtures: a real DuckDB warehouse file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.warehouse.whelpers import REPORTS
from warehouse.loader import Warehouse


@pytest.fixture(autouse=True)
def no_integration_view_parts() -> Iterator[None]:
    """These tests' tiny `checkr.reports` is not Checkr's: the integrations' view parts that an earlier
    engine test registered in this process (e.g. `unified.open_records` on `checkr.reports`) stay out."""
    from warehouse import views

    saved = dict(views._REGISTRY)
    views.clear_view_parts()
    yield
    views._REGISTRY.clear()
    views._REGISTRY.update(saved)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "wh.duckdb"


@pytest.fixture
def wh(db: Path) -> Iterator[Warehouse]:
    with Warehouse(db) as w:
        w.ensure_tables([REPORTS])
        yield w
