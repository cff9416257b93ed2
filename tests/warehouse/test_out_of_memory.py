"""A write too large for the writer's memory is split, down to one record, never fatal; a record
too large even alone is quarantined (its raw JSON in a file beside the warehouse if need be)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.warehouse.whelpers import REPORTS, batch, page, rec
from warehouse.loader import Warehouse

MB = 1024 * 1024

pytestmark = pytest.mark.file_only("the file writer's buffer pool (memory_limit) running out")


def wide(rid: str, size: int) -> dict[str, object]:
    return rec(rid, result="x" * size)


def test_a_write_of_several_wide_records_is_split_and_all_land(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Warehouse(db, memory_limit="48MB") as wh:
        wh.ensure_tables([REPORTS])
        a = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
        records = [wide(f"w{i}", 8 * MB) for i in range(3)] + [rec(f"r{i}") for i in range(50)]
        counts = wh.write_page(page([batch(records, track_seen=True)], attempt=a, checkpoint={"page": 2}))
        assert (counts.added, counts.rejected) == (53, 0)
        assert wh.execute("SELECT count(*) FROM checkr.reports").fetchone() == (53,)
        state = wh.get_state("checkr", "conn-1", "reports")
        assert state is not None and state.checkpoint == {"page": 2}
        assert wh.execute("SELECT count(DISTINCT id) FROM _screensync.seen_keys").fetchone() == (53,)
    assert "SCREENSYNC_WAREHOUSE_MEMORY (now 48MB" in caplog.text  # the split says which setting would avoid it


def test_a_record_too_large_even_to_quarantine_keeps_its_raw_in_a_file(db: Path) -> None:
    with Warehouse(db, memory_limit="16MB") as wh:
        wh.ensure_tables([REPORTS])
        a = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
        big = wide("huge", 24 * MB)
        counts = wh.write_page(page([batch([big, rec("small")], track_seen=True)], attempt=a, checkpoint={"page": 2}))
        assert (counts.added, counts.rejected) == (1, 1)
        ((rid, error, raw),) = wh.execute(
            "SELECT record_id, error, raw::VARCHAR FROM _screensync.rejected_records").fetchall()
        assert rid == "huge" and "SCREENSYNC_WAREHOUSE_MEMORY (now 16MB" in error and "raw JSON kept in" in error
        kept = Path(orjson.loads(raw)["screensync_raw_file"])
        assert orjson.loads(kept.read_bytes())["result"] == "x" * (24 * MB)
        assert wh.execute("SELECT record_id FROM _screensync.owed_records").fetchall() == [("huge",)]
        seen = {r[0] for r in wh.execute("SELECT id FROM _screensync.seen_keys").fetchall()}
        assert seen == {"huge", "small"}  # quarantined, but seen: never taken for deleted
