"""Fixtures: a real warehouse per test, a DuckDB file or (for `both_backends` tests) a DuckLake too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.warehouse_target import WarehouseTarget
from tests.warehouse.whelpers import REPORTS
from warehouse.loader import Warehouse


@pytest.fixture
def db(warehouse_target: WarehouseTarget) -> WarehouseTarget:
    """The warehouse's file path or DuckLake URL (tests/support/warehouse_target.py)."""
    return warehouse_target


@pytest.fixture
def wh(db: WarehouseTarget) -> Iterator[Warehouse]:
    with Warehouse(db) as w:
        w.ensure_tables([REPORTS])
        yield w
