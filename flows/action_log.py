"""`_screensync.action_log`: one row per action attempt, beside the synced data, for audits.

One write transaction like any other (warehouse/access.py): it waits for the write in progress
(a sync's page, a batch of webhooks), never for a whole sync. Only when the warehouse stays busy
past WAIT_SECONDS (a process outside screensync holding the file open) is the row skipped, with
an error in the run's log (the run's artifact still records the action).
"""

from __future__ import annotations

import logging

import orjson

from integrations.engine.actions import ActionRecord

log = logging.getLogger("screensync.actions")
WAIT_SECONDS = 60.0

DDL = """
CREATE SCHEMA IF NOT EXISTS _screensync;
CREATE TABLE IF NOT EXISTS _screensync.action_log (
    action_id VARCHAR PRIMARY KEY,
    integration VARCHAR NOT NULL,
    connection_id VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    method VARCHAR,
    endpoint VARCHAR,
    idempotency_key VARCHAR,
    status VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    duration_s DOUBLE,
    input JSON,
    output JSON,
    error VARCHAR
);
"""


def append_action_log(record: ActionRecord) -> bool:
    """Insert the row, waiting (bounded) for other writers; False (and an error) when it never could."""
    import duckdb

    from common.settings import warehouse_setting
    from warehouse.loader import Warehouse, WarehouseError
    from warehouse.retry import short_error

    try:
        wh = Warehouse(warehouse_setting(), lock_timeout=WAIT_SECONDS, purpose=f"action {record.action}")
        values = [
            record.action_id,
            record.integration,
            record.connection_id,
            record.action,
            record.method,
            record.endpoint,
            record.idempotency_key,
            record.status,
            record.started_at,
            record.finished_at,
            record.duration_s,
            orjson.dumps(record.input).decode(),
            orjson.dumps(record.output).decode() if record.output is not None else None,
            record.error,
        ]

        def insert(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(DDL)
            con.execute("INSERT INTO _screensync.action_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

        wh.write(insert, what=f"action {record.action}'s log row")  # retried on a DuckLake commit conflict
    except (WarehouseError, duckdb.Error) as exc:
        log.error("action %s on %s not written to the action log: %s", record.action, record.connection_id,
                  short_error(exc))
        return False
    return True
