"""Fixtures: a real DuckDB warehouse file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.warehouse.whelpers import REPORTS
from warehouse.loader import Warehouse


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "wh.duckdb"


@pytest.fixture
def wh(db: Path) -> Iterator[Warehouse]:
    with Warehouse(db) as w:
        w.ensure_tables([REPORTS])
        yield w
