"""A long attempt of small pages: each write session ends in a checkpoint, and each leaves a row
group of its own in every table it appends to. The end of the attempt DELETEs the keys it saw and
its older positions, and DuckDB's DELETE pins a block per row group it touches: unmerged, a few
hundred pages ran the writer's 48 MB pool out of memory (bench/warehouse_load.py at 100,000)."""

from __future__ import annotations

from pathlib import Path

from tests.warehouse.whelpers import REPORTS, batch, page, rec
from warehouse.backend import VACUUM_EVERY_WRITES
from warehouse.loader import Warehouse

PAGES = 300  # past the ~180 row groups a 48 MB pool could DELETE from at once


def test_an_attempt_of_hundreds_of_small_pages_finishes_and_leaves_few_row_groups(db: Path) -> None:
    with Warehouse(db) as wh:
        wh.ensure_tables([REPORTS])
        attempt = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
        for n in range(PAGES):
            records = [rec(f"r{n:04d}-{i}") for i in range(5)]
            last = n == PAGES - 1
            wh.write_page(page([batch(records, track_seen=True)], attempt=attempt,
                               checkpoint=None if last else {"page": n + 2}))
        groups = {
            table: wh.execute(f"SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('{table}')").fetchone()
            for table in ("_screensync.seen_keys", "_screensync.sync_positions", "checkr.reports")
        }
        for table, (count,) in groups.items():  # type: ignore[misc]
            assert count <= 2 * VACUUM_EVERY_WRITES, f"{table}: {count} row groups after {PAGES} writes"
        assert wh.complete_attempt("checkr", "conn-1", "reports", attempt, deletes=[REPORTS], run_id="run-1") == 0
        assert wh.execute("SELECT count(*) FROM _screensync.seen_keys").fetchone() == (0,)
        assert wh.execute("SELECT count(*) FROM checkr.reports WHERE _deleted_at IS NULL").fetchone() == (PAGES * 5,)
        state = wh.get_state("checkr", "conn-1", "reports")
        assert state is not None and state.checkpoint is None and state.attempt_id is None
