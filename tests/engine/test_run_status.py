"""One RunStatus, and every consumer handles every value of it (partial included)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from integrations.engine.results import RunStatus, SyncResult


def result(status: RunStatus, **kw: object) -> SyncResult:
    now = datetime.now(UTC)
    fields: dict[str, object] = dict(
        run_id=f"run-{status.value}", integration="checkr", connection_id="c1", sync="candidates", model="Candidate",
        mode="incremental", status=status, started_at=now, finished_at=now, duration_s=1.0, rejected=2, owed=2,
        error=None if status in (RunStatus.SUCCESS, RunStatus.PARTIAL) else "boom", hint="do this",
    )
    fields.update(kw)
    return SyncResult.model_validate(fields)


def test_the_warehouse_and_the_engine_share_one_run_status() -> None:
    from warehouse import state

    assert state.RunStatus is RunStatus
    assert {s.value for s in RunStatus} == {"success", "partial", "failed", "interrupted", "running"}
    assert result(RunStatus.PARTIAL).ok and result(RunStatus.SUCCESS).ok
    assert not any(result(s).ok for s in (RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.RUNNING))


@pytest.mark.parametrize("status", list(RunStatus))
def test_every_consumer_handles_every_status(status: RunStatus, tmp_path: Path) -> None:
    from flows.artifacts import failures_markdown, sync_table_rows
    from screensync import exit_codes
    from screensync.sync_cli import results_table
    from warehouse.loader import RunRecord, Warehouse

    r = result(status)
    assert results_table([r]).row_count == 1
    assert sync_table_rows([r])[0]["status"] == status.value and sync_table_rows([r])[0]["owed"] == 2
    markdown = failures_markdown("checkr", [r])
    assert (f"— {status.value}" in markdown) == (status != RunStatus.SUCCESS)
    expected = {"success": 0, "partial": 3, "failed": 1, "interrupted": 4, "running": 4}[status.value]
    assert exit_codes.for_results([r]) == expected
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        wh.record_run(RunRecord.from_result(r))
        assert wh.execute("SELECT status FROM _screensync.sync_runs").fetchall() == [(status.value,)]


def test_the_most_serious_outcome_sets_the_exit_code() -> None:
    from screensync import exit_codes

    statuses = [RunStatus.SUCCESS, RunStatus.PARTIAL, RunStatus.INTERRUPTED, RunStatus.FAILED]
    for n in range(1, len(statuses) + 1):
        assert exit_codes.for_results([result(s) for s in statuses[:n]]) == [0, 3, 4, 1][n - 1]


def test_a_partial_run_counts_as_fresh(tmp_path: Path) -> None:
    from warehouse.loader import RunRecord, Warehouse

    with Warehouse(tmp_path / "wh.duckdb") as wh:
        wh.create_views([])
        wh.record_run(RunRecord.from_result(result(RunStatus.PARTIAL)))
        row = wh.execute("SELECT last_success_run_id, last_status FROM unified.sync_freshness").fetchall()
    assert row == [("run-partial", "partial")]
