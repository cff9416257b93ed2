"""Upsert semantics on a real warehouse (a DuckDB file and a DuckLake): counts, history, idempotency,
dedupe, webhooks, migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from tests.support.warehouse_target import WarehouseTarget
from tests.warehouse.whelpers import REPORTS, batch, page, rec
from warehouse.loader import ObjectWrite, RecordBatch, TableTarget, Warehouse, WriteCounts

pytestmark = pytest.mark.both_backends  # every test here runs on the DuckDB file and on a DuckLake


def _counts(wh: Warehouse) -> tuple[int, int]:
    main = wh.execute("SELECT count(*) FROM checkr.reports").fetchone()
    hist = wh.execute("SELECT count(*) FROM checkr.reports_history").fetchone()
    assert main and hist
    return main[0], hist[0]


def test_insert_update_unchanged_counts_and_typed_columns(wh: Warehouse) -> None:
    first = wh.write_page(page([batch([rec("r1"), rec("r2", tags=["x"], meta={"k": 1})])]))
    assert first == WriteCounts(added=2)
    second = wh.write_page(
        page([batch([rec("r1"), rec("r2", "complete", result="clear", tags=["x"], meta={"k": 1}), rec("r3")])])
    )
    assert second == WriteCounts(added=1, updated=1, unchanged=1)
    # the previous write met known keys, so this one diffs in one query instead of probing first:
    # the counts must not depend on which way it went
    third = wh.write_page(page([batch([rec("r4"), rec("r3", "complete"), rec("r1")])]))
    assert third == WriteCounts(added=1, updated=1, unchanged=1)
    fourth = wh.write_page(page([batch([rec("r5"), rec("r6")])]))
    assert fourth == WriteCounts(added=2)
    row = wh.execute(
        "SELECT status, result, tags, meta->>'k', typeof(created_at), typeof(meta), _first_seen_at < _last_modified_at,"
        " md5(_raw) = _hash, _raw->>'status' FROM checkr.reports WHERE id = 'r2'"
    ).fetchone()
    assert row == ("complete", "clear", ["x"], "1", "TIMESTAMP WITH TIME ZONE", "JSON", True, True, "complete")
    unchanged_row = wh.execute(
        "SELECT _first_seen_at = _last_modified_at FROM checkr.reports WHERE id = 'r1'"
    ).fetchone()
    assert unchanged_row == (True,)


def test_status_change_makes_history_versions(wh: Warehouse) -> None:
    wh.write_page(page([batch([rec("r1")])], run="run-1"))
    wh.write_page(page([batch([rec("r1", "complete", result="clear")])], run="run-2"))
    versions = wh.execute(
        "SELECT status, _change, _run_id, _valid_to IS NULL, _valid_from FROM checkr.reports_history "
        "WHERE id = 'r1' ORDER BY _valid_from"
    ).fetchall()
    assert [(v[0], v[1], v[2], v[3]) for v in versions] == [
        ("pending", "insert", "run-1", False),
        ("complete", "update", "run-2", True),
    ]
    closed = wh.execute(
        "SELECT h1._valid_to = h2._valid_from FROM checkr.reports_history h1, checkr.reports_history h2 "
        "WHERE h1._change = 'insert' AND h2._change = 'update'"
    ).fetchone()
    assert closed == (True,)


def test_a_first_load_writes_each_record_once(wh: Warehouse) -> None:
    """Superseded versions are written only when something changes: a first load adds none."""
    wh.write_page(page([batch([rec(f"r{i}") for i in range(5)])], run="run-1"))
    assert wh.execute("SELECT count(*) FROM checkr.reports_superseded").fetchone() == (0,)
    assert wh.execute(
        "SELECT count(*), count(*) FILTER (WHERE _change = 'insert' AND _valid_to IS NULL) FROM checkr.reports_history"
    ).fetchone() == (5, 5)
    wh.write_page(page([batch([rec("r1", "complete")])], run="run-2"))
    assert wh.execute("SELECT id, status, _valid_to IS NOT NULL FROM checkr.reports_superseded").fetchall() == [
        ("r1", "pending", True)
    ]


def test_a_warehouse_with_the_old_history_table_is_migrated(db: WarehouseTarget) -> None:
    """Earlier builds kept every version in a `<table>_history` table; it becomes the view."""
    with Warehouse(db) as wh:
        wh.ensure_tables([REPORTS])
        wh.write_page(page([batch([rec("r1"), rec("r2")])], run="run-1"))
        wh.write_page(page([batch([rec("r1", "complete", result="clear")])], run="run-2"))
        versions = wh.execute("SELECT * FROM checkr.reports_history ORDER BY id, _valid_from").fetchall()
        assert len(versions) == 3
        # rebuild the old layout: one history table with every version, current ones included
        wh.execute("CREATE TABLE checkr.old_history AS SELECT * FROM checkr.reports_history")
        wh.execute("DROP VIEW checkr.reports_history")
        wh.execute("DROP TABLE checkr.reports_superseded")
        wh.execute("ALTER TABLE checkr.old_history RENAME TO reports_history")
    with Warehouse(db) as wh:
        wh.ensure_tables([REPORTS])
        kinds = wh.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_name LIKE 'reports_%' ORDER BY 1"
        ).fetchall()
        assert kinds == [("reports_history", "VIEW"), ("reports_superseded", "BASE TABLE")]
        assert wh.execute("SELECT count(*) FROM checkr.reports_superseded").fetchone() == (1,)
        assert wh.execute("SELECT * FROM checkr.reports_history ORDER BY id, _valid_from").fetchall() == versions


def test_rerun_with_unchanged_data_changes_nothing(wh: Warehouse) -> None:
    records = [rec(f"r{i}", "complete" if i % 2 else "pending") for i in range(30)]
    wh.write_page(page([batch(records)], run="run-1"))
    before = wh.execute("SELECT * FROM checkr.reports ORDER BY id").fetchall()
    counts = wh.write_page(page([batch(records)], run="run-2"))
    assert counts == WriteCounts(unchanged=30)
    assert wh.execute("SELECT * FROM checkr.reports ORDER BY id").fetchall() == before
    assert _counts(wh) == (30, 30)


def test_duplicate_keys_in_one_batch_last_wins(wh: Warehouse) -> None:
    counts = wh.write_page(page([batch([rec("r1"), rec("r1", "complete", result="consider")])]))
    assert counts == WriteCounts(added=1)
    assert wh.execute("SELECT status, result FROM checkr.reports").fetchall() == [("complete", "consider")]
    assert _counts(wh) == (1, 1)


def test_same_id_in_two_connections_are_separate_rows(wh: Warehouse) -> None:
    wh.write_page(page([batch([rec("r1")])], conn="conn-1"))
    counts = wh.write_page(page([batch([rec("r1", "complete")])], conn="conn-2"))
    assert counts == WriteCounts(added=1)
    assert wh.execute("SELECT connection_id, status FROM checkr.reports ORDER BY 1").fetchall() == [
        ("conn-1", "pending"),
        ("conn-2", "complete"),
    ]


def test_webhook_object_writes_are_idempotent(wh: Warehouse) -> None:
    def write() -> list[WriteCounts]:
        return wh.write_objects([ObjectWrite("checkr", "conn-1", [batch([rec("r9", "complete")])], run_id="webhook:e1")])

    assert write() == [WriteCounts(added=1)]
    assert write() == [WriteCounts(unchanged=1)]
    assert _counts(wh) == (1, 1)
    assert wh.get_state("checkr", "conn-1", "reports") is None  # no sync state touched


def test_integer_primary_key_and_decimal(db: WarehouseTarget) -> None:
    from decimal import Decimal

    class Invoice(BaseModel):
        number: int
        amount: Decimal
        paid: bool

    # not a provider's schema: the view parts an integration loaded earlier in this process would apply
    target = TableTarget("acme_billing", "invoices", Invoice, primary_key="number")
    with Warehouse(db) as wh:
        wh.ensure_tables([target])
        recs = [{"number": 7, "amount": "12.5", "paid": False}]
        assert wh.write_page(page([batch(recs, Invoice, target)])) == WriteCounts(added=1)
        recs = [{"number": 7, "amount": "12.5", "paid": True}]
        assert wh.write_page(page([batch(recs, Invoice, target)])) == WriteCounts(updated=1)
        assert wh.execute("SELECT number, amount, paid, typeof(amount) FROM acme_billing.invoices").fetchall() == [
            (7, Decimal("12.5000"), True, "DECIMAL(18,4)")
        ]


def test_wide_records_fit_the_writers_memory(wh: Warehouse) -> None:
    """A batch's text reaches DuckDB in bounded chunks: 1,600 records of 20 KB (32 MB, the most
    a write waits for) in one batch ran the writer out of memory when sent as one chunk."""
    wide = [rec(f"w{i}", notes="x" * 20_000 + str(i)) for i in range(1600)]
    staged = wh.stage(batch(wide))
    assert all(c.nbytes <= 4 * 1024 * 1024 for t in staged.tables for c in t.to_batches())
    counts = wh.write_page(page([staged]))
    assert (counts.added, counts.rejected) == (1600, 0)
    row = wh.execute("SELECT count(*), min(length(_raw)) FROM checkr.reports").fetchone()
    assert row is not None and row[0] == 1600 and row[1] > 20_000


# -- a version never replaces a newer one (issue 12, defect 3) ----------------------------------


def _day(d: int) -> datetime:
    return datetime(2026, 6, d, 12, tzinfo=UTC)


def _at(records: list[dict[str, Any]], day: int) -> RecordBatch:
    b = batch(records)
    b.observed_at = _day(day)
    return b


def test_an_older_version_is_kept_in_history_but_never_replaces_a_newer_one(wh: Warehouse) -> None:
    assert wh.write_page(page([_at([rec("r1", "complete", result="clear")], 5)])) == WriteCounts(added=1)
    assert wh.write_page(page([_at([rec("r1", "pending")], 3)])) == WriteCounts(late=1)  # a late delivery
    assert wh.execute("SELECT status, _observed_at FROM checkr.reports").fetchall() == [("complete", _day(5))]
    history = wh.execute("SELECT status, _change, _observed_at, _valid_from = _valid_to FROM checkr.reports_history "
                         "ORDER BY _observed_at").fetchall()
    assert history == [("pending", "late", _day(3), True), ("complete", "insert", _day(5), None)]
    assert wh.write_page(page([_at([rec("r1", "pending")], 6)])) == WriteCounts(updated=1)  # a newer one applies


def test_the_same_version_seen_later_moves_its_time_forward(wh: Warehouse) -> None:
    """A page fetched on day 6 still shows `pending`: a `complete` observed on day 5 and delivered
    afterwards is older than what the warehouse knows, and is not applied."""
    wh.write_page(page([_at([rec("r1")], 3)]))
    assert wh.write_page(page([_at([rec("r1")], 6)])) == WriteCounts(unchanged=1)
    assert wh.execute("SELECT _observed_at FROM checkr.reports").fetchall() == [(_day(6),)]
    assert wh.write_page(page([_at([rec("r1", "complete")], 5)])) == WriteCounts(late=1)
    assert wh.execute("SELECT status FROM checkr.reports").fetchall() == [("pending",)]


def test_two_versions_observed_at_once_apply_the_last_and_ask_for_a_recheck(wh: Warehouse) -> None:
    wh.write_page(page([_at([rec("r1")], 3)]))
    assert wh.write_page(page([_at([rec("r1", "complete")], 3)])) == WriteCounts(updated=1)
    open_ids = lambda: wh.open_record_ids(REPORTS, "conn-1", "status", ["complete"])  # noqa: E731
    assert open_ids() == ["r1"]  # complete, but due for a re-check: the re-poll fetches it again
    assert wh.write_page(page([_at([rec("r1", "complete")], 4)])) == WriteCounts(unchanged=1)
    assert open_ids() == []


def test_the_latest_observed_version_wins_within_one_write(wh: Warehouse) -> None:
    b = batch([rec("r1", "complete"), rec("r1", "pending")])  # delivered newest first
    b.observed_at = [_day(5), _day(3)]
    assert wh.write_page(page([b])) == WriteCounts(added=1)
    assert wh.execute("SELECT status FROM checkr.reports").fetchall() == [("complete",)]


def test_a_deleted_record_is_not_brought_back_by_a_version_older_than_its_deletion(wh: Warehouse) -> None:
    wh.begin_attempt("checkr", "conn-1", "reports")
    wh.write_page(page([_at([rec("r1"), rec("r2")], 3)], attempt="a1"))
    state = wh.begin_attempt("checkr", "conn-1", "reports", fresh=True)
    assert state.attempt_id
    seen = _at([rec("r1")], 6)
    seen.track_seen = True
    wh.write_page(page([seen], attempt=state.attempt_id))
    assert wh.complete_attempt("checkr", "conn-1", "reports", state.attempt_id, deletes=[REPORTS], run_id="r",
                               observed_at=_day(6)) == 1
    assert wh.write_page(page([_at([rec("r2", "complete")], 5)])) == WriteCounts(late=1)
    assert wh.execute("SELECT _deleted_at IS NOT NULL FROM checkr.reports WHERE id = 'r2'").fetchall() == [(True,)]


def test_a_late_arrival_that_a_later_whole_list_read_did_not_list_lands_deleted(wh: Warehouse) -> None:
    """A whole-list read that began on day 4 did not list r2 or r3: a webhook's r2 observed on day 3 had
    vanished by then (stored deleted, with the reason); r3 observed on day 5 is newer than that read
    (live); r4, quarantined by that read and so owed, was listed (live)."""
    from warehouse.loader import RejectedRecord

    state = wh.begin_attempt("checkr", "conn-1", "reports", fresh=True)
    listed = _at([rec("r1")], 4)
    listed.track_seen = True
    first = page([listed], attempt=state.attempt_id, rejects=[RejectedRecord("reports", "r4", "bad", "{}")])
    first.list_from = _day(4)
    wh.write_page(first)
    wh.complete_attempt("checkr", "conn-1", "reports", state.attempt_id, deletes=[REPORTS], run_id="r",
                        observed_at=_day(4))
    arrivals = [_at([rec("r2")], 3), _at([rec("r3")], 5), _at([rec("r4")], 3)]
    wh.write_objects([ObjectWrite("checkr", "conn-1", [b], run_id="webhook:e1") for b in arrivals])
    rows = wh.execute("SELECT id, _deleted_reason FROM checkr.reports ORDER BY id").fetchall()
    assert rows == [("r1", None), ("r2", "not listed by a full read that began after this version"),
                    ("r3", None), ("r4", None)]


def test_a_vanished_record_deleted_on_arrival_stays_deleted_when_a_later_but_older_event_follows(
        wh: Warehouse) -> None:
    """Soak seed 163: a report created and removed between two syncs; its held-back events arrive
    after a whole-list read that began on day 4 and did not list it. `report.created` (day 2) lands
    deleted; `report.completed` (day 3), newer than that version but older than the read, is a late
    version and must not bring it back. An event from after the read (day 5) still applies."""
    state = wh.begin_attempt("checkr", "conn-1", "reports", fresh=True)
    listed = _at([rec("r1")], 4)
    listed.track_seen = True
    first = page([listed], attempt=state.attempt_id)
    first.list_from = _day(4)
    wh.write_page(first)
    wh.complete_attempt("checkr", "conn-1", "reports", state.attempt_id, deletes=[REPORTS], run_id="r",
                        observed_at=_day(4))
    wh.write_objects([ObjectWrite("checkr", "conn-1", [_at([rec("r2")], 2)], run_id="webhook:created")])
    deleted = "SELECT status, _deleted_at IS NOT NULL FROM checkr.reports WHERE id = 'r2'"
    assert wh.execute(deleted).fetchall() == [("pending", True)]
    assert wh.write_objects([ObjectWrite("checkr", "conn-1", [_at([rec("r2", "complete")], 3)],
                                         run_id="webhook:completed")]) == [WriteCounts(late=1)]
    assert wh.execute(deleted).fetchall() == [("pending", True)]
    wh.write_objects([ObjectWrite("checkr", "conn-1", [_at([rec("r2", "complete")], 5)], run_id="webhook:back")])
    assert wh.execute(deleted).fetchall() == [("complete", False)]


def test_webhook_arrivals_are_counted_per_connection_in_the_applying_write(wh: Warehouse) -> None:
    def arrive(conn: str, day: int, events: int) -> None:
        wh.write_objects([ObjectWrite("checkr", conn, [batch([rec(f"{conn}-{day}")])], run_id=f"webhook:{day}",
                                      received_at=_day(day), events=events)])

    arrive("conn-1", 5, 2)
    arrive("conn-1", 3, 1)  # delivered late: the latest arrival stays day 5
    arrive("conn-2", 4, 1)
    assert wh.execute("SELECT connection_id, last_received_at, events FROM _screensync.webhook_arrivals "
                      "ORDER BY 1").fetchall() == [("conn-1", _day(5), 3), ("conn-2", _day(4), 1)]


@pytest.mark.parametrize("size", [3, 2_500])
def test_replaced_versions_are_copied_exactly_in_small_and_large_writes(wh: Warehouse, size: int) -> None:
    """A write that changes some of its records and not others, adding one: exactly the stored rows
    it replaces go to `_superseded`, as they were."""
    wh.write_page(page([batch([rec(f"r{i}") for i in range(size + 5)])], run="run-1"))
    # some of the page changed, some did not, one is new; in one write
    changed = [rec(f"r{i}", "complete", result="clear") for i in range(size)]
    counts = wh.write_page(page([batch([*changed, rec(f"r{size + 1}"), rec("new-1")])], run="run-2"))
    assert counts.updated == len(changed) and counts.added == 1
    superseded = wh.execute(
        "SELECT id, status, _run_id, _change FROM checkr.reports_superseded ORDER BY id").fetchall()
    assert superseded == sorted((r["id"], "pending", "run-1", "insert") for r in changed)
    current = dict(wh.execute("SELECT id, status FROM checkr.reports").fetchall())
    assert all(current[r["id"]] == "complete" for r in changed)
    assert sum(s == "complete" for s in current.values()) == len(changed)
