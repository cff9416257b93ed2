"""Several processes (or hosts) attaching a new, empty DuckLake catalog at once all get in: the first
one creates DuckLake's tables in PostgreSQL, the others lost that race ("Failed to initialize
DuckLake": their CREATE TABLE met the winner's) and attach what it created (warehouse/ducklake.py).

Real parts: a throwaway PostgreSQL; separate DuckDB instances in threads (each attach releases the GIL
while it waits on PostgreSQL, which reproduced the race every time).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from warehouse import ducklake

if TYPE_CHECKING:
    from tests.support.postgres import PgDatabase

pytest_plugins = ["tests.support.postgres"]


def test_writers_attaching_an_empty_catalog_at_once_all_get_in(postgres_db: PgDatabase, tmp_path: Path) -> None:
    url = f"ducklake:postgres://{postgres_db.user}@{postgres_db.host}:{postgres_db.port}/{postgres_db.name}" \
          f"?data={tmp_path / 'lake'}"
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
