"""An action's audit row waits (bounded) for the write in progress (a sync's page, a batch of webhooks),
instead of being lost."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from integrations.engine.actions import ActionRecord
from warehouse.read import query

HOLD = """
import sys, time
from warehouse.loader import Warehouse
with Warehouse(sys.argv[1]).transaction():   # a write in progress in another process
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    ending = time.time()
print(ending, flush=True)
"""


def _record() -> ActionRecord:
    now = datetime.now(UTC)
    return ActionRecord(
        action_id="act-1",
        integration="checkr",
        connection_id="cust-1",
        action="create_candidate",
        method="POST",
        endpoint="/candidates",
        status="success",
        started_at=now,
        finished_at=now,
        duration_s=0.1,
        input={"email": "a@example.com"},
    )


def test_audit_row_is_written_after_the_write_in_progress_releases_the_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.action_log import append_action_log

    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("SCREENSYNC_WAREHOUSE", str(path))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), "3"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert append_action_log(_record()) is True
        written = time.time()
        assert float(holder.stdout.readline()) < written  # it waited for the holder's transaction to end
    finally:
        holder.wait(timeout=60)
    rows = query("SELECT action_id, status FROM _screensync.action_log", path=path)
    assert rows == [("act-1", "success")]
