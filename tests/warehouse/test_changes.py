"""The change feed on a real warehouse (a DuckDB file and a DuckLake): a cursor per change, in the
change's own transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from tests.support.warehouse_target import WarehouseTarget
from tests.warehouse.whelpers import REPORTS, batch, page, rec
from warehouse.changes import last_cursor, prune, read_changes
from warehouse.loader import ObjectWrite, Warehouse
from warehouse.read import query, read_session

pytestmark = pytest.mark.both_backends  # every test here runs on the DuckDB file and on a DuckLake


def _feed(db: WarehouseTarget, since: int = 0, **kw: object) -> list[dict[str, object]]:
    with read_session(db) as con:
        return read_changes(con, since=since, **kw)  # type: ignore[arg-type]


def _day(d: int) -> datetime:
    return datetime(2024, 6, d, tzinfo=UTC)


def test_every_kind_of_change_gets_the_next_cursor_with_its_version(wh: Warehouse, db: WarehouseTarget) -> None:
    wh.write_page(page([batch([rec("r1"), rec("r2"), rec("r3")], track_seen=True)], attempt="a1", run="run-1"))
    wh.write_page(page([batch([rec("r1"), rec("r2"), rec("r3")])], run="run-2"))  # unchanged: no change
    wh.write_page(page([batch([rec("r1", "complete", result="clear")])], run="run-3"))
    wh.write_objects([ObjectWrite("checkr", "conn-1", [batch([rec("r2", "complete")])], run_id="webhook:e1")])
    wh.write_page(page([batch([rec("r1", "complete", result="clear"), rec("r2", "complete")], track_seen=True)],
                       attempt="a2", run="run-4"))
    assert wh.complete_attempt("checkr", "conn-1", "reports", "a2", deletes=[REPORTS], run_id="run-4") == 1
    wh.mark_gone(REPORTS, integration="checkr", connection_id="conn-1", ids=["r2"], reason="404", run_id="run-5")

    feed = _feed(db)
    got = [(c["cursor"], c["record_id"], c["action"], c["run_id"]) for c in feed]
    assert got == [
        (1, "r1", "added", "run-1"), (2, "r2", "added", "run-1"), (3, "r3", "added", "run-1"),
        (4, "r1", "updated", "run-3"),
        (5, "r2", "updated", "webhook:e1"),
        (6, "r3", "deleted", "run-4"),
        (7, "r2", "gone", "run-5"),
    ]
    records = [orjson.loads(c["record"])["status"] for c in feed]  # type: ignore[arg-type]
    assert records == ["pending", "pending", "pending", "complete", "complete", "pending", "complete"]
    assert {c["integration"] for c in feed} == {"checkr"} and {c["table"] for c in feed} == {"reports"}
    assert all(c["version_hash"] for c in feed)
    # the SQL view is the same feed
    assert query('SELECT "cursor", record_id, action FROM unified.changes ORDER BY 1', path=db) == [
        (c["cursor"], c["record_id"], c["action"]) for c in feed
    ]


def test_resume_from_a_cursor_and_filters(wh: Warehouse, db: WarehouseTarget) -> None:
    wh.write_page(page([batch([rec("r1"), rec("r2")])], conn="conn-1"))
    wh.write_page(page([batch([rec("r3")])], conn="conn-2"))
    first = _feed(db, limit=2)
    assert [c["cursor"] for c in first] == [1, 2]
    wh.write_page(page([batch([rec("r4")])], conn="conn-1"))
    rest = _feed(db, since=int(first[-1]["cursor"]))  # type: ignore[call-overload]
    assert [(c["cursor"], c["record_id"]) for c in rest] == [(3, "r3"), (4, "r4")]
    assert [c["record_id"] for c in _feed(db, connection_id="conn-2")] == ["r3"]
    assert _feed(db, integration="clearchecks") == [] and _feed(db, table="candidates") == []


def test_a_late_version_is_no_change_and_a_revived_record_is_updated(wh: Warehouse, db: WarehouseTarget) -> None:
    b = batch([rec("r1", "complete")])
    b.observed_at = _day(5)
    wh.write_page(page([b]))
    late = batch([rec("r1")])
    late.observed_at = _day(3)
    wh.write_page(page([late]))
    assert [c["action"] for c in _feed(db)] == ["added"]
    wh.mark_gone(REPORTS, integration="checkr", connection_id="conn-1", ids=["r1"], reason="404", run_id="g",
                 observed_at=_day(6))
    back = batch([rec("r1", "complete", result="clear")])
    back.observed_at = _day(7)
    wh.write_page(page([back]))
    feed = _feed(db)
    assert [c["action"] for c in feed] == ["added", "gone", "updated"]
    assert orjson.loads(feed[-1]["record"])["result"] == "clear"  # type: ignore[arg-type]


def test_prune_drops_feed_rows_only_and_cursors_never_repeat(wh: Warehouse, db: WarehouseTarget) -> None:
    wh.write_page(page([batch([rec("r1"), rec("r2")])]))
    with wh._transaction() as con:  # the CLI's `changes prune` runs this in a write session
        assert prune(con, before=3) == 1  # the newest row stays: the next cursor counts on from it
    assert [c["cursor"] for c in _feed(db)] == [2]
    wh.write_page(page([batch([rec("r3")])]))
    assert [c["cursor"] for c in _feed(db)] == [2, 3]
    with read_session(db) as con:
        assert last_cursor(con) == 3
    assert wh.execute("SELECT count(*) FROM checkr.reports_history").fetchone() == (3,)


def test_a_mixed_write_feeds_exactly_what_it_added_and_changed(wh: Warehouse, db: WarehouseTarget,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The feed's rows come from the upsert's diff: new and changed records of a page that has both,
    ids that need quoting, a record delivered twice in one webhook write (once: the second, unchanged
    copy is no change), and a write of more ids than go as SQL text."""
    from warehouse import changes

    wh.write_page(page([batch([rec("r1"), rec("o'brien")])], run="run-1"))
    wh.write_page(page([batch([rec("r1"), rec("o'brien", "complete"), rec("r3")])], run="run-2"))
    wh.write_objects([ObjectWrite("checkr", "conn-1", [batch([rec("r4")])], run_id="webhook:e1"),
                      ObjectWrite("checkr", "conn-1", [batch([rec("r4"), rec("r1", "complete")])], run_id="webhook:e2")])
    monkeypatch.setattr(changes, "LITERAL_IDS", 2)  # the Arrow path: 3 ids
    wh.write_page(page([batch([rec("r1", "complete", result="clear"), rec("r3", "complete"), rec("r5")])],
                       run="run-3"))
    got = [(c["cursor"], c["record_id"], c["action"]) for c in _feed(db)]
    assert got == [
        (1, "o'brien", "added"), (2, "r1", "added"),
        (3, "o'brien", "updated"), (4, "r3", "added"),
        (5, "r4", "added"), (6, "r1", "updated"),
        (7, "r1", "updated"), (8, "r3", "updated"), (9, "r5", "added"),
    ]


def test_a_failed_write_takes_no_cursor(wh: Warehouse, db: WarehouseTarget) -> None:
    wh.write_page(page([batch([rec("r1")])]))
    try:
        with wh._transaction() as con:
            from warehouse.upsert import upsert_stage  # noqa: F401  (a write that fails after its upsert)
            wh._write_batches(con, [batch([rec("r2")])], integration="checkr", connection_id="conn-1",
                              run_id="x", attempt_id=None)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    wh.write_page(page([batch([rec("r3")])]))
    assert [(c["cursor"], c["record_id"]) for c in _feed(db)] == [(1, "r1"), (2, "r3")]


def test_a_file_from_before_the_feed_gets_its_views_remade(wh: Warehouse, db: WarehouseTarget) -> None:
    wh.write_page(page([batch([rec("r1")])]))
    wh.execute("DROP VIEW unified.changes")  # as a file written by the previous version has it
    with Warehouse(db) as again:
        again.ensure_tables([REPORTS])
    assert query('SELECT "cursor", record_id FROM unified.changes', path=db) == [(1, "r1")]
    # sync_freshness is remade too (this column is new with it; a missing one fails the query)
    assert query("SELECT overdue_records, last_webhook_at FROM unified.sync_freshness", path=db) == []
