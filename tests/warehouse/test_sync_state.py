"""Checkpoints, attempts, deletes and rejects: what makes a killed run resumable and correct."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from tests.support.warehouse_target import WarehouseTarget
from tests.warehouse.whelpers import REPORTS, batch, page, rec
from warehouse.loader import RejectedRecord, StagedBatch, Warehouse, WarehouseError, WriteCounts

pytestmark = pytest.mark.both_backends  # every test here runs on the DuckDB file and on a DuckLake (but file_only ones)


def test_page_and_checkpoint_commit_together_or_not_at_all(wh: Warehouse) -> None:
    state = wh.begin_attempt("checkr", "conn-1", "reports")
    good = batch([rec("r1")])
    # a staged table DuckDB cannot insert: the failure happens inside the transaction, after `good`
    staged = wh.stage(batch([rec("r2")]))
    (table,) = staged.tables
    at = table.schema.get_field_index("created_at")
    broken = StagedBatch(REPORTS, [table.set_column(at, "created_at", pa.array(["not a time"]))])
    with pytest.raises(WarehouseError, match="not a time"):
        wh.write_page(page([good, broken], attempt=state.attempt_id or "", checkpoint={"page": 2}))
    assert wh.execute("SELECT count(*) FROM checkr.reports").fetchone() == (0,)
    assert wh.execute("SELECT count(*) FROM checkr.reports_history").fetchone() == (0,)
    after = wh.get_state("checkr", "conn-1", "reports")
    assert after is not None and after.checkpoint is None
    # the connection is still usable and the same page then lands with its checkpoint
    wh.write_page(page([good], attempt=state.attempt_id or "", checkpoint={"page": 2}, cursor="2024-05-01"))
    saved = wh.get_state("checkr", "conn-1", "reports")
    assert saved is not None and (saved.checkpoint, saved.cursor) == ({"page": 2}, "2024-05-01")


def test_deletes_only_on_completion_and_across_a_resume(db: WarehouseTarget) -> None:
    records = [rec(f"r{i}") for i in range(6)]
    with Warehouse(db) as wh:
        wh.ensure_tables([REPORTS])
        a = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
        wh.write_page(page([batch(records, track_seen=True)], attempt=a))
        wh.complete_attempt("checkr", "conn-1", "reports", a, deletes=[REPORTS], run_id="run-1")
        # next full run: r0, r1 on page 1, then the process dies
        b = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
        assert b != a
        wh.write_page(page([batch(records[:2], track_seen=True)], attempt=b, checkpoint={"page": 2}))
        assert wh.execute("SELECT count(*) FROM checkr.reports WHERE _deleted_at IS NOT NULL").fetchone() == (0,)
    with Warehouse(db) as wh:  # a new process resumes the same attempt and sees r2, r3 on page 2
        wh.ensure_tables([REPORTS])
        resumed = wh.begin_attempt("checkr", "conn-1", "reports")
        assert (resumed.attempt_id, resumed.checkpoint) == (b, {"page": 2})
        wh.write_page(page([batch(records[2:4], track_seen=True)], attempt=b, checkpoint=None))
        deleted = wh.complete_attempt("checkr", "conn-1", "reports", b, deletes=[REPORTS], run_id="run-2")
        assert deleted == 2
        gone = wh.execute("SELECT id FROM checkr.reports WHERE _deleted_at IS NOT NULL ORDER BY id").fetchall()
        assert gone == [("r4",), ("r5",)]
        hist = wh.execute(
            "SELECT id, _change, _run_id FROM checkr.reports_history WHERE _valid_to IS NULL AND _change = 'delete' "
            "ORDER BY id"
        ).fetchall()
        assert hist == [("r4", "delete", "run-2"), ("r5", "delete", "run-2")]
        state = wh.get_state("checkr", "conn-1", "reports")
        assert state is not None and state.checkpoint is None and state.attempt_id is None
        assert wh.execute("SELECT count(*) FROM _screensync.seen_keys").fetchone() == (0,)
        # deleting again is a no-op: already-deleted rows are not deleted twice
        c = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
        wh.write_page(page([batch(records[:4], track_seen=True)], attempt=c))
        assert wh.complete_attempt("checkr", "conn-1", "reports", c, deletes=[REPORTS], run_id="run-3") == 0


@pytest.mark.file_only("the DuckDB file's row groups (pragma_storage_info); a lake writes Parquet files")
def test_the_keys_a_run_saw_leave_no_storage_behind(db: Path) -> None:
    """The writer runs without DuckDB's vacuum: keys deleted a whole run at a time must still
    free their row groups, or delete tracking would grow the file with every full sync."""
    records = [rec(f"r{i}") for i in range(3000)]
    for run in range(3):
        with Warehouse(db) as wh:
            wh.ensure_tables([REPORTS])
            for conn in ("conn-1", "conn-2"):  # two connections' keys share row groups
                a = wh.begin_attempt("checkr", conn, "reports").attempt_id or ""
                wh.write_page(page([batch(records, track_seen=True)], attempt=a, conn=conn))
            for conn in ("conn-1", "conn-2"):
                state = wh.get_state("checkr", conn, "reports")
                assert state is not None and state.attempt_id
                wh.complete_attempt("checkr", conn, "reports", state.attempt_id, deletes=[REPORTS], run_id=f"r{run}")
    with Warehouse(db) as wh:
        wh.execute("CHECKPOINT")
        assert wh.execute("SELECT count(*) FROM _screensync.seen_keys").fetchone() == (0,)
        groups = wh.execute("SELECT count(*) FROM pragma_storage_info('_screensync.seen_keys')").fetchone()
        assert groups == (0,)
        assert wh.execute("SELECT count(*) FROM checkr.reports").fetchone() == (6000,)


def test_deletes_leave_other_connections_alone(wh: Warehouse) -> None:
    wh.write_page(page([batch([rec("x1")])], conn="conn-2"))
    a = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
    wh.write_page(page([batch([rec("r1")], track_seen=True)], attempt=a))
    assert wh.complete_attempt("checkr", "conn-1", "reports", a, deletes=[REPORTS], run_id="r") == 0
    assert wh.execute("SELECT count(*) FROM checkr.reports WHERE _deleted_at IS NULL").fetchone() == (2,)


def test_a_deleted_record_that_comes_back_is_undeleted(wh: Warehouse) -> None:
    wh.write_page(page([batch([rec("r1"), rec("r2")])]))
    a = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
    wh.write_page(page([batch([rec("r1")], track_seen=True)], attempt=a))
    assert wh.complete_attempt("checkr", "conn-1", "reports", a, deletes=[REPORTS], run_id="run-d") == 1
    counts = wh.write_page(page([batch([rec("r2")])], run="run-back"))
    assert counts == WriteCounts(updated=1)
    assert wh.execute("SELECT _deleted_at, _run_id FROM checkr.reports WHERE id = 'r2'").fetchone() == (
        None,
        "run-back",
    )
    changes = wh.execute(
        "SELECT _change FROM checkr.reports_history WHERE id = 'r2' ORDER BY _valid_from"
    ).fetchall()
    assert changes == [("insert",), ("delete",), ("update",)]


def test_rejected_records_are_stored_with_their_raw_json(wh: Warehouse) -> None:
    rejects = [
        RejectedRecord("reports", "r7", "Report: status: Input should be 'pending'", '{"id":"r7","status":"x"}'),
        RejectedRecord("reports", None, "not an object", "not json at all"),
    ]
    counts = wh.write_page(page([batch([rec("r1")])], rejects=rejects, run="run-r"))
    assert counts == WriteCounts(added=1, rejected=2)
    rows = wh.execute(
        "SELECT run_id, integration, connection_id, sync, model, record_id, error, raw->>'status', json_type(raw) "
        "FROM _screensync.rejected_records ORDER BY record_id NULLS LAST"
    ).fetchall()
    assert rows == [
        (
            "run-r",
            "checkr",
            "conn-1",
            "reports",
            "reports",
            "r7",
            "Report: status: Input should be 'pending'",
            "x",
            "OBJECT",
        ),
        ("run-r", "checkr", "conn-1", "reports", "reports", None, "not an object", None, "VARCHAR"),
    ]


def test_begin_attempt_without_checkpoint_starts_fresh_and_drops_stale_seen_keys(wh: Warehouse) -> None:
    a = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
    wh.write_page(page([batch([rec("r1")], track_seen=True)], attempt=a))  # last page: no checkpoint, then a crash
    b = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id
    assert b and b != a
    assert wh.execute("SELECT count(*) FROM _screensync.seen_keys WHERE attempt_id = ?", [a]).fetchone() == (0,)


def test_open_record_ids_lists_non_terminal_live_records(wh: Warehouse) -> None:
    wh.write_page(page([batch([rec("r1"), rec("r2", "complete"), rec("r3")])]))
    assert wh.open_record_ids(REPORTS, "conn-1", "status", ["complete"]) == ["r1", "r3"]
    with pytest.raises(ValueError, match="no column 'state'"):
        wh.open_record_ids(REPORTS, "conn-1", "state", ["complete"])


@pytest.mark.file_only("the file writer's memory limit (out of memory at commit)")
def test_a_write_the_warehouse_cannot_take_fails_clearly_and_keeps_the_checkpoint(db: Path) -> None:
    """Out of memory at commit (a tiny buffer pool here) names the sync; nothing half-lands."""
    from warehouse.loader import WarehouseError

    records = [rec(f"r{i}", meta={"blob": "x" * 2000}) for i in range(3000)]
    with Warehouse(db) as wh:
        wh.ensure_tables([REPORTS])
        a = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
        wh.write_page(page([batch(records[:10])], attempt=a, checkpoint={"page": 2}))
    with Warehouse(db, memory_limit="2MB") as wh:
        wh.ensure_tables([REPORTS])
        with pytest.raises(WarehouseError, match=r"(?i)could not write checkr/conn-1/reports to .*out of memory"):
            wh.write_page(page([batch(records)], attempt=a, checkpoint={"page": 3}))
    with Warehouse(db) as wh:
        state = wh.get_state("checkr", "conn-1", "reports")
        assert state is not None and state.checkpoint == {"page": 2}
        assert wh.execute("SELECT count(*) FROM checkr.reports").fetchone() == (10,)


def test_positions_are_appended_and_the_end_of_an_attempt_keeps_only_the_newest(wh: Warehouse) -> None:
    a = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
    for n in range(3):
        wh.write_page(page([batch([rec(f"r{n}")])], attempt=a, checkpoint={"page": n + 1}))
    rows = wh.execute("SELECT seq, checkpoint::VARCHAR FROM _screensync.sync_positions ORDER BY seq").fetchall()
    assert rows == [(1, None), (2, '{"page":1}'), (3, '{"page":2}'), (4, '{"page":3}')]  # no row updated
    state = wh.get_state("checkr", "conn-1", "reports")
    assert state is not None and state.checkpoint == {"page": 3} and state.attempt_id == a
    wh.complete_attempt("checkr", "conn-1", "reports", a, deletes=[], run_id="run-1")
    assert wh.execute("SELECT seq, checkpoint, attempt_id FROM _screensync.sync_positions").fetchall() == [
        (5, None, None)]


@pytest.mark.file_only("a file written by an older version; no lake ever had the old table")
def test_a_warehouse_with_the_old_sync_state_table_keeps_its_positions(db: Path) -> None:
    import duckdb

    old = duckdb.connect(str(db))
    old.execute("CREATE SCHEMA _screensync")
    old.execute("CREATE TABLE _screensync.sync_state (integration VARCHAR, connection_id VARCHAR, sync VARCHAR, "
                "cursor JSON, checkpoint JSON, attempt_id VARCHAR, updated_at TIMESTAMPTZ)")
    old.execute("""INSERT INTO _screensync.sync_state VALUES
                   ('checkr', 'conn-1', 'reports', '"2024-05-01"', '{"page": 7}', 'att-1', now())""")
    old.execute("""CREATE TABLE _screensync.sync_runs (
        run_id VARCHAR, integration VARCHAR, connection_id VARCHAR, sync VARCHAR, model VARCHAR, mode VARCHAR,
        status VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
        added BIGINT, updated BIGINT, deleted BIGINT, unchanged BIGINT, rejected BIGINT,
        requests BIGINT, retries BIGINT, duration_s DOUBLE, error VARCHAR)""")
    old.execute("INSERT INTO _screensync.sync_runs (run_id, sync, status, added) VALUES ('run-0', 'reports', 'failed', 5)")
    old.close()
    with Warehouse(db) as wh:
        state = wh.get_state("checkr", "conn-1", "reports")
        assert state is not None and (state.cursor, state.checkpoint, state.attempt_id, state.failures) == (
            "2024-05-01", {"page": 7}, "att-1", 0)
        assert wh.begin_attempt("checkr", "conn-1", "reports").attempt_id == "att-1"  # resumes it
        kind = wh.execute("SELECT table_name, table_type FROM information_schema.tables "
                          "WHERE table_name IN ('sync_state', 'sync_runs') ORDER BY 1")
        assert kind.fetchall() == [("sync_runs", "VIEW"), ("sync_state", "VIEW")]
        assert wh.execute("SELECT run_id, status, added FROM _screensync.sync_runs").fetchall() == [
            ("run-0", "failed", 5)]


def test_a_run_is_two_appended_rows_and_shows_as_its_newest(wh: Warehouse) -> None:
    from datetime import UTC, datetime

    from warehouse.state import RunRecord, RunStatus

    run = RunRecord(run_id="run-1", integration="checkr", connection_id="conn-1", sync="reports", model="Report",
                    mode="full", status=RunStatus.RUNNING, started_at=datetime.now(UTC))
    wh.record_run(run)
    wh.record_run(run.model_copy(update={"status": RunStatus.SUCCESS, "added": 3, "finished_at": datetime.now(UTC)}))
    rows = wh.execute("SELECT seq, status FROM _screensync.sync_run_events ORDER BY seq").fetchall()
    assert [status for _, status in rows] == ["running", "success"]
    assert rows[0][0] < rows[1][0]  # the transaction's time: a later row of the run is newer
    assert wh.execute("SELECT run_id, status, added FROM _screensync.sync_runs").fetchall() == [("run-1", "success", 3)]


def test_a_page_builds_on_the_last_committed_position_not_on_a_failed_one(
        wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    """A held file's writer appends each position from the one it wrote last, unread (state._append's
    `newest`); a write that failed after appending its position must leave nothing of it behind."""
    from warehouse import state as st

    def fails_after(*args: object, **kw: object) -> None:
        saved(*args, **kw)  # type: ignore[arg-type]
        raise RuntimeError("after the position")

    saved = st.save_position
    with wh.holding():
        a = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
        wh.write_page(page([batch([rec("r1")])], attempt=a, checkpoint={"page": 1}, cursor="c1"))
        monkeypatch.setattr(st, "save_position", fails_after)
        with pytest.raises(RuntimeError, match="after the position"):
            wh.write_page(page([batch([rec("r2")])], attempt=a, checkpoint={"page": 2}, cursor="c2"))
        monkeypatch.setattr(st, "save_position", saved)
        wh.write_page(page([batch([rec("r3")])], attempt=a, checkpoint={"page": 3}))  # cursor left as it is
        state = wh.get_state("checkr", "conn-1", "reports")
        assert state is not None and (state.checkpoint, state.cursor, state.attempt_id) == ({"page": 3}, "c1", a)
    assert wh.execute("SELECT seq FROM _screensync.sync_positions ORDER BY seq").fetchall() == [(1,), (2,), (3,)]


@pytest.mark.file_only("another process writing the file while this one let go of it")
def test_a_position_another_writer_appended_is_built_on(db: Path) -> None:
    import duckdb

    with Warehouse(db) as wh:
        wh.ensure_tables([REPORTS])
        a = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
        wh.write_page(page([batch([rec("r1")])], attempt=a, checkpoint={"page": 1}, cursor="c1"))
        with duckdb.connect(str(db)) as other:  # the file is let go between writes: another writer's turn
            other.execute("""INSERT INTO _screensync.sync_positions
                SELECT integration, connection_id, sync, '"c-other"', checkpoint, attempt_id, updated_at, failures,
                       failure, attempt_from, seq + 1 FROM _screensync.sync_positions WHERE seq = 2""")
        wh.write_page(page([batch([rec("r2")])], attempt=a, checkpoint={"page": 2}))
        state = wh.get_state("checkr", "conn-1", "reports")
        assert state is not None and (state.checkpoint, state.cursor) == ({"page": 2}, "c-other")


def test_a_deferred_attempt_is_written_by_its_connections_first_write(wh: Warehouse) -> None:
    """`begin_attempt(defer=True)` (what run_sync does) writes nothing; the attempt's position goes in
    the first write transaction of its connection, before that write's own position."""
    wh.ensure_tables([REPORTS])
    a = wh.begin_attempt("checkr", "conn-1", "reports", stored=None, defer=True).attempt_id or ""
    assert wh.get_state("checkr", "conn-1", "reports") is None  # nothing written yet
    wh.write_page(page([batch([rec("r1")])], attempt=a, checkpoint={"page": 2}, cursor="c1"))
    rows = wh.execute("SELECT seq, attempt_id, checkpoint::VARCHAR FROM _screensync.sync_positions ORDER BY seq")
    assert rows.fetchall() == [(1, a, None), (2, a, '{"page":2}')]
    # another connection's writes do not carry it
    b = wh.begin_attempt("checkr", "conn-2", "reports", stored=None, defer=True).attempt_id or ""
    wh.write_page(page([batch([rec("r9")])], attempt=a, checkpoint={"page": 3}))
    assert wh.get_state("checkr", "conn-2", "reports") is None
    wh.complete_attempt("checkr", "conn-2", "reports", b, deletes=[], run_id="run-2")  # its own end does
    done = wh.get_state("checkr", "conn-2", "reports")
    assert done is not None and (done.attempt_id, done.checkpoint) == (None, None)


def test_a_deferred_attempt_that_fails_before_writing_counts_the_failure_against_itself(wh: Warehouse) -> None:
    wh.ensure_tables([REPORTS])
    a = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
    wh.write_page(page([batch([rec("r1")])], attempt=a, checkpoint={"page": 2}))
    # the stored checkpoint is given up (fresh): the new attempt fails before its first page
    stored = wh.get_state("checkr", "conn-1", "reports")
    fresh = wh.begin_attempt("checkr", "conn-1", "reports", stored=stored, fresh=True, defer=True)
    assert fresh.attempt_id != a
    assert wh.note_failure("checkr", "conn-1", "reports", "http 500") == 1
    state = wh.get_state("checkr", "conn-1", "reports")
    assert state is not None and (state.attempt_id, state.checkpoint, state.failures) == (fresh.attempt_id, None, 1)


def test_a_resumed_attempt_drops_an_unwritten_fresh_one_of_the_same_key(wh: Warehouse) -> None:
    """A run that began fresh and wrote nothing must not, through a later write, replace the attempt
    a next run resumed (its checkpoint and seen keys)."""
    wh.ensure_tables([REPORTS])
    a = wh.begin_attempt("checkr", "conn-1", "reports").attempt_id or ""
    wh.write_page(page([batch([rec("r1")], track_seen=True)], attempt=a, checkpoint={"page": 2}))
    stored = wh.get_state("checkr", "conn-1", "reports")
    wh.begin_attempt("checkr", "conn-1", "reports", stored=stored, fresh=True, defer=True)  # never writes
    resumed = wh.begin_attempt("checkr", "conn-1", "reports", stored=stored, defer=True)
    assert (resumed.attempt_id, resumed.checkpoint) == (a, {"page": 2})
    wh.write_page(page([batch([rec("r2")], track_seen=True)], attempt=a, checkpoint={"page": 3}))
    state = wh.get_state("checkr", "conn-1", "reports")
    assert state is not None and (state.attempt_id, state.checkpoint) == (a, {"page": 3})
    assert wh.execute("SELECT count(*) FROM _screensync.seen_keys WHERE attempt_id = ?", [a]).fetchone() == (2,)
