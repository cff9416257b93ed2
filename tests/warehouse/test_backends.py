"""The `warehouse_target` fixture gives each variant of a `both_backends` test the backend it names."""

from __future__ import annotations

import pytest

from tests.support.warehouse_target import WarehouseTarget
from tests.warehouse.whelpers import batch, page, rec
from warehouse.backend import open_backend
from warehouse.loader import Warehouse, WriteCounts
from warehouse.read import query

pytestmark = pytest.mark.both_backends


def test_each_variant_writes_and_reads_the_backend_it_names(
    request: pytest.FixtureRequest, db: WarehouseTarget, wh: Warehouse
) -> None:
    backend = request.node.callspec.params["warehouse_target"]
    assert open_backend(db).is_lake is (backend == "ducklake")
    assert wh.write_page(page([batch([rec("r1")])])) == WriteCounts(added=1)
    assert query("SELECT id FROM checkr.reports", path=db) == [("r1",)]


@pytest.mark.file_only("proves the marker keeps a test off the lake")
def test_a_file_only_test_gets_the_file_alone(request: pytest.FixtureRequest, db: WarehouseTarget) -> None:
    assert not hasattr(request.node, "callspec") and not open_backend(db).is_lake
