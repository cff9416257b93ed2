"""Several processes (or hosts) attaching a new, empty DuckLake catalog at once all get in: the first
one creates DuckLake's tables in PostgreSQL, the others lost that race ("Failed to initialize
DuckLake": their CREATE TABLE met the winner's) and attach what it created (warehouse/ducklake.py).

Real parts: a throwaway PostgreSQL; separate DuckDB instances in threads (each attach releases the GIL
while it waits on PostgreSQL, which reproduced the race every time).
"""

from __future__ import annotations

import threading

from tests.warehouse.lake_fixtures import fresh_lake_sessions, lake_url_fixture  # noqa: F401 (fixtures)
from warehouse import ducklake

pytest_plugins = ["tests.support.postgres"]


def test_writers_attaching_an_empty_catalog_at_once_all_get_in(url: str) -> None:
    writers = 3
    start = threading.Barrier(writers)
    errors: list[str] = []
    tables: list[int] = []

    def attach(n: int) -> None:
        start.wait(timeout=30)
        try:
            con = ducklake.connect(url)
        except Exception as exc:  # the test fails naming it
            errors.append(str(exc).splitlines()[0][:200])
            return
        try:
            con.execute(f"CREATE TABLE t{n} (x INTEGER)")
            tables.append(n)
        finally:
            con.close()

    threads = [threading.Thread(target=attach, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and sorted(tables) == list(range(writers))
    con = ducklake.connect(url, read_only=True)
    try:
        names = con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' ORDER BY 1")
        assert names.fetchall() == [(f"t{n}",) for n in range(writers)]  # one catalog, every writer's table
    finally:
        con.close()
