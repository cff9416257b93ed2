"""`_screensync.action_log`: one row per action attempt, beside the synced data, for audits.

Written under the warehouse writer lock with a short wait: an action must not hang behind a
long sync. Webhook upserts open the file without that lock for a moment each; the row waits for
them, retrying with backoff (warehouse.connection.connect), up to FILE_WAIT_SECONDS. Only when
the warehouse stays busy past both bounds is the row skipped, with an error in the run's log
(the run's artifact still records the action).
"""

from __future__ import annotations

import logging

import orjson

from flows.locks import LockTimeout, file_lock, warehouse_lock_path
from integrations.engine.actions import ActionRecord

log = logging.getLogger("screensync.actions")
LOCK_WAIT_SECONDS = 20.0  # a sync flow holding the writer lock
FILE_WAIT_SECONDS = 60.0  # another process (a webhook write) holding the DuckDB file

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

    from screensync.settings import warehouse_path
    from warehouse.connection import WarehouseError, connect

    path = warehouse_path()
    try:
        with file_lock(warehouse_lock_path(path), timeout=LOCK_WAIT_SECONDS, what=f"warehouse {path}"):
            con = connect(path, timeout=FILE_WAIT_SECONDS)
            try:
                con.execute(DDL)
                con.execute(
                    "INSERT INTO _screensync.action_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
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
                    ],
                )
            finally:
                con.close()
    except (LockTimeout, WarehouseError, duckdb.Error) as exc:
        log.error("action %s on %s not written to the action log: %s", record.action, record.connection_id, exc)
        return False
    return True
