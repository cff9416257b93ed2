"""Records still owed: quarantined with an id, and not landed since.

A quarantined record of an incremental sync would never be read again once the cursor passed
it, so its id is kept here (in the transaction that quarantined it) until a later write lands
that id — a later page, a fetch by id (`refetch`), a webhook — or the provider says it is gone.
`_screensync.rejected_records` keeps the history of every quarantine; this table is what is
still missing. Caller owns the transaction unless a function says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa
from pydantic import BaseModel

from warehouse.records import RejectedRecord

OWED_DDL = """
CREATE TABLE IF NOT EXISTS _screensync.owed_records (
    integration VARCHAR, connection_id VARCHAR, sync VARCHAR, "table" VARCHAR, record_id VARCHAR,
    attempts INTEGER, first_rejected_at TIMESTAMPTZ, last_rejected_at TIMESTAMPTZ,
    last_error VARCHAR, last_run_id VARCHAR
);
"""

_NEW = "_screensync_owed_new"


class OwedRecord(BaseModel):
    integration: str
    connection_id: str
    sync: str
    table: str
    record_id: str
    attempts: int
    first_rejected_at: datetime
    last_rejected_at: datetime
    last_error: str
    last_run_id: str


def owe(
    con: duckdb.DuckDBPyConnection,
    rejects: Sequence[RejectedRecord],
    *,
    integration: str,
    connection_id: str,
    sync: str,
    run_id: str,
) -> set[str]:
    """Record the rejects that carry an id as owed (again); returns the tables they belong to."""
    latest: dict[tuple[str, str], RejectedRecord] = {}
    for r in rejects:
        if r.record_id is not None and r.record_id.strip():
            latest[(r.model, r.record_id)] = r
    if not latest:
        return set()
    new = pa.table({
        "table": [t for t, _ in latest],
        "record_id": [rid for _, rid in latest],
        "last_error": [r.error for r in latest.values()],
    })
    key = "o.integration = $integ AND o.connection_id = $conn AND o.\"table\" = n.\"table\" AND o.record_id = n.record_id"
    params = {"integ": integration, "conn": connection_id, "sync": sync, "run": run_id}
    con.register(_NEW, new)
    try:
        con.execute(
            f"""UPDATE _screensync.owed_records o SET attempts = o.attempts + 1, last_rejected_at = current_timestamp,
                last_error = n.last_error, last_run_id = $run, sync = $sync
            FROM {_NEW} n WHERE {key}""",
            params,
        )
        con.execute(
            f"""INSERT INTO _screensync.owed_records
            SELECT $integ, $conn, $sync, n."table", n.record_id, 1, current_timestamp, current_timestamp,
                   n.last_error, $run
            FROM {_NEW} n WHERE NOT EXISTS (SELECT 1 FROM _screensync.owed_records o WHERE {key})""",
            params,
        )
    finally:
        con.unregister(_NEW)
    return {t for t, _ in latest}


def settle_landed(
    con: duckdb.DuckDBPyConnection, *, integration: str, connection_id: str, table: str, stage: str, key: str,
    main: str,
) -> None:
    """Owed ids of `table` that the staged rows (relation `stage`, id column `key`) just landed: the
    stored version (in `main`, after the upsert) is the staged one. A version older than the one
    stored did not land (warehouse/upsert.py keeps it in history only)."""
    con.execute(
        f"""DELETE FROM _screensync.owed_records WHERE integration = $integ AND connection_id = $conn
            AND "table" = $table AND record_id IN (
                SELECT CAST(s.{key} AS VARCHAR) FROM {stage} s JOIN {main} t
                ON t.connection_id = $conn AND t.{key} = s.{key} AND t._hash = s._hash)""",
        {"integ": integration, "conn": connection_id, "table": table},
    )


def owing_tables(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str, str]]:
    """(integration, connection, table) that owe anything: the writer checks landed ids only there."""
    rows = con.execute('SELECT DISTINCT integration, connection_id, "table" FROM _screensync.owed_records').fetchall()
    return {(r[0], r[1], r[2]) for r in rows}


def owed_records(
    con: duckdb.DuckDBPyConnection,
    *,
    integration: str | None = None,
    connection_id: str | None = None,
    sync: str | None = None,
    limit: int | None = None,
) -> list[OwedRecord]:
    where, params = [], []
    for column, value in (("integration", integration), ("connection_id", connection_id), ("sync", sync)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = (
        'SELECT integration, connection_id, sync, "table", record_id, attempts, first_rejected_at, '
        "last_rejected_at, last_error, last_run_id FROM _screensync.owed_records"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + ' ORDER BY integration, connection_id, sync, "table", record_id'
        + (f" LIMIT {int(limit)}" if limit is not None else "")
    )
    names = list(OwedRecord.model_fields)
    return [OwedRecord(**dict(zip(names, row, strict=True))) for row in con.execute(sql, params).fetchall()]


def unidentified_rejects(con: duckdb.DuckDBPyConnection) -> int:
    """Quarantined items without an id: nothing can fetch them again."""
    row = con.execute("SELECT count(*) FROM _screensync.rejected_records WHERE record_id IS NULL").fetchone()
    return int(row[0]) if row else 0


def count_owed(con: duckdb.DuckDBPyConnection, integration: str, connection_id: str, sync: str) -> int:
    row = con.execute(
        "SELECT count(*) FROM _screensync.owed_records WHERE integration = ? AND connection_id = ? AND sync = ?",
        [integration, connection_id, sync],
    ).fetchone()
    return int(row[0]) if row else 0
