"""A write too large for the writer's memory is split, down to one record, never fatal; a record
too large even alone is quarantined (its raw JSON in a file beside the warehouse if need be)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pytest
from pydantic import create_model

from tests.warehouse.whelpers import REPORTS, Report, batch, page, rec
from warehouse.loader import PageWrite, TableTarget, Warehouse

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


WIDE_FIELDS = [f"detail_{k:02d}" for k in range(30)]
WideReport = create_model("WideReport", __base__=Report, **{f: (str | None, None) for f in WIDE_FIELDS})  # type: ignore[call-overload]
WIDE = TableTarget("checkr", "wide_reports", WideReport)


def _wide_page(start: int, status: str) -> PageWrite:
    records = [{**rec(f"r{i:05d}", status), **{f: f"{f} {status} {i} " + "x" * 48 for f in WIDE_FIELDS}}
               for i in range(start, start + 100)]
    return page([batch(records, model=WideReport, target=WIDE)])


def test_letting_go_after_many_updates_of_wide_records_checkpoints(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    """DuckDB holds updated rows in memory until a checkpoint: the one at detach gets more memory than
    a write (connection.CHECKPOINT_MEMORY), so it does not fail and invalidate the session."""
    with Warehouse(db, memory_limit="48MB") as wh:
        wh.ensure_tables([WIDE])
        for status in ("pending", "complete"):
            with wh.holding():
                for start in range(0, 3000, 100):
                    wh.write_page(_wide_page(start, status))
        assert wh.execute("SELECT status, count(*) FROM checkr.wide_reports GROUP BY 1").fetchall() == [("complete", 3000)]
        with duckdb.connect(config={"memory_limit": "48MB"}) as plain:
            writes_limit = plain.execute("SELECT current_setting('memory_limit')").fetchone()
        assert wh.execute("SELECT current_setting('memory_limit')").fetchone() == writes_limit  # put back
    assert "closing after a write failed" not in caplog.text
    with Warehouse(db, memory_limit="48MB") as wh:  # the file is whole, the writer's limit as it was
        assert wh.execute("SELECT count(*) FROM checkr.wide_reports_superseded").fetchone() == (3000,)
