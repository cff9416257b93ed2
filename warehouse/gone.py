"""Records the provider says are gone (404/410 when fetched by id): marked, never fetched again.

A re-poll, a fetch of an owed record or of a referenced one can meet a record that no longer
exists at the provider. Its live row (if any) is soft-deleted with the time and the reason, it is
owed no more, and its id is remembered in `_screensync.gone_records` so nothing asks for it again
(a referenced id that never landed has no row to mark). Caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from warehouse.changes import GONE
from warehouse.deletes import end_live_versions
from warehouse.records import TableTarget
from warehouse.tables import ident

GONE_DDL = """
CREATE TABLE IF NOT EXISTS _screensync.gone_records (
    integration VARCHAR, connection_id VARCHAR, "table" VARCHAR, record_id VARCHAR,
    gone_at TIMESTAMPTZ, reason VARCHAR, run_id VARCHAR
);
"""

_IDS = "_screensync_gone_ids"


def mark_gone(
    con: duckdb.DuckDBPyConnection,
    target: TableTarget,
    *,
    integration: str,
    connection_id: str,
    ids: Sequence[str],
    reason: str,
    run_id: str,
    observed_at: datetime | None = None,
) -> None:
    """Soft-delete these records of the connection, settle what is owed of them and remember them."""
    if not ids:
        return
    con.register(_IDS, pa.table({target.primary_key: pa.array(sorted(set(ids)), type=pa.string())}))
    try:
        end_live_versions(con, target, connection_id=connection_id, keys=_IDS, reason=reason, run_id=run_id,
                          observed_at=observed_at, action=GONE)
        scope = {"integ": integration, "conn": connection_id, "table": target.table}
        pk = ident(target.primary_key)
        con.execute(
            f"""DELETE FROM _screensync.owed_records WHERE integration = $integ AND connection_id = $conn
                AND "table" = $table AND record_id IN (SELECT {pk} FROM {_IDS})""",
            scope,
        )
        con.execute(
            f"""DELETE FROM _screensync.gone_records WHERE integration = $integ AND connection_id = $conn
                AND "table" = $table AND record_id IN (SELECT {pk} FROM {_IDS})""",
            scope,
        )
        con.execute(
            f"""INSERT INTO _screensync.gone_records
            SELECT $integ, $conn, $table, {pk}, current_timestamp, $reason, $run FROM {_IDS}""",
            {**scope, "reason": reason, "run": run_id},
        )
    finally:
        con.unregister(_IDS)
