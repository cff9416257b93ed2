"""Webhook objects land in the warehouse even when several deliveries arrive at once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.flows.flow_helpers import read_rows

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "checkr" / "verbatim" / "event_report_completed.json"


def test_concurrent_deliveries_in_one_process_all_land(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB attaches a file once per process: the web app's threads must take turns, not fail."""
    from connections.models import Connection
    from screensync.webhook_wiring import upsert_into_warehouse

    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("SCREENSYNC_WAREHOUSE", str(warehouse))
    template = json.loads(FIXTURE.read_text())
    connection = Connection(connection_id="cust-1", integration="checkr")
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def deliver(i: int) -> None:
        event = json.loads(json.dumps(template))
        event["id"] = f"evt-{i}"
        event["data"]["object"]["id"] = f"report-{i}"
        start.wait()
        try:
            upsert_into_warehouse("checkr", connection, event)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert read_rows(warehouse, "SELECT count(*) FROM checkr.reports WHERE connection_id = 'cust-1'") == [(6,)]
