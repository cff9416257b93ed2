"""`warehouse_target`: what `SCREENSYNC_WAREHOUSE` takes, on either warehouse backend.

A test marked `both_backends` runs twice, with the same assertions: `[file]` on a DuckDB file in
its tmp_path, `[ducklake]` on a DuckLake whose catalog is a fresh database of the session's
throwaway PostgreSQL (tests/support/postgres.py; dropped after the test) and whose data files are
in its tmp_path. Unmarked tests and `file_only` ones (inherently about the embedded file) get the
file alone; with `SCREENSYNC_TEST_LAKE=all` every test but the `file_only` ones runs on both. The
parametrizing is this plugin's `pytest_generate_tests` (registered in tests/conftest.py); run one
backend with `-k ducklake` or `-k "not ducklake"`. Without PostgreSQL the lake variant skips,
saying why. docs/warehouse.md ("Tested on both backends") lists what runs where.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from common.settings import local_lock_anchor
from warehouse.rwlock import lock_dir

if TYPE_CHECKING:
    from tests.support.postgres import PgDatabase

BACKENDS = ("file", "ducklake")
ALL_ENV = "SCREENSYNC_TEST_LAKE"  # `all`: every test that uses the warehouse runs on both (not only the marked)
WarehouseTarget = str | Path  # a file path, or a `ducklake:postgres://...` URL


def lake_url(db: PgDatabase, data: Path | str, **options: str) -> str:
    """The warehouse URL of a DuckLake cataloged in `db`, its data files under `data`."""
    extra = "".join(f"&{k}={v}" for k, v in options.items())
    return f"ducklake:postgres://{db.user}@{db.host}:{db.port}/{db.name}?data={data}{extra}"


def release_lake(url: str) -> None:
    """Close this process's sessions on a lake (it keeps one per URL for good): its database is dropped next."""
    from warehouse.lake_backend import LakeBackend

    with LakeBackend._all_lock:
        backend = LakeBackend._all.pop(url, None)
    if backend is not None:
        backend.close()


def wants_both(definition: pytest.Function | pytest.FunctionDefinition) -> bool:
    """Marked `both_backends` (or every warehouse test, with SCREENSYNC_TEST_LAKE=all), and not `file_only`."""
    if definition.get_closest_marker("file_only") is not None:
        return False
    return os.environ.get(ALL_ENV) == "all" or definition.get_closest_marker("both_backends") is not None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_backends: run on the DuckDB file and on a DuckLake (warehouse_target)")
    config.addinivalue_line("markers", "file_only(why): inherently about the embedded DuckDB file; not run on a lake")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that uses the warehouse (directly or through a fixture) runs once per backend if it wants both."""
    if "warehouse_target" in metafunc.fixturenames and wants_both(metafunc.definition):
        metafunc.parametrize("warehouse_target", BACKENDS, indirect=True)


@pytest.fixture
def warehouse_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WarehouseTarget]:
    backend = getattr(request, "param", "file")
    if backend == "file":
        yield tmp_path / "warehouse.duckdb"
        return
    server = request.getfixturevalue("postgres_server")  # skips, naming the package, without PostgreSQL
    db = server.create_database()
    url = lake_url(db, tmp_path / "lake")
    try:
        yield url
    finally:
        release_lake(url)
        server.drop_database(db.name)
        shutil.rmtree(lock_dir(local_lock_anchor(url)), ignore_errors=True)  # this host's locks of it, in ~
