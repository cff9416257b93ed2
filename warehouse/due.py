"""Which open records are due for a re-check, most overdue first, and remembering each check.

An open record is due at the later of (a) the provider's own estimate (a column, plus a declared
delay) and (b) its last change or last check, whichever is later, plus a growing interval: the
n-th check in a row that found nothing new waits `intervals[n]` (the last one repeats). A change
seen by anyone (list sync, webhook, this re-poll) starts the intervals over. While the connection's
webhooks are flowing (one arrived within `quiet_s`) the intervals are stretched; when they stop, the
stretch goes and the records are pulled back in. A record to re-check (`_recheck_at`) is due at once.
Caller owns the transaction. Times: the estimate is the provider's, the rest this machine's clock.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from warehouse.records import TableTarget
from warehouse.tables import ident, table_ref

DUE_DDL = """
CREATE TABLE IF NOT EXISTS _screensync.due_checks (
    integration VARCHAR, connection_id VARCHAR, "table" VARCHAR, record_id VARCHAR,
    checked_at TIMESTAMPTZ, checks INTEGER
);
"""

_IDS = "_screensync_checked_ids"


def _state(target: TableTarget, after: str | None, after_plus_s: float) -> str:
    """Per open record: id, the provider's estimate, when it last changed, when last checked, checks since."""
    pk = ident(target.primary_key)
    estimate = "NULL::TIMESTAMPTZ" if after is None else f"t.{ident(after)} + to_seconds({float(after_plus_s)})"
    return f"""SELECT CAST(t.{pk} AS VARCHAR) AS id, {estimate} AS estimate, t._recheck_at,
            t._last_modified_at AS changed, d.checked_at,
            CASE WHEN d.checked_at IS NULL OR t._last_modified_at > d.checked_at THEN 0 ELSE d.checks END AS n
        FROM {table_ref(target)} t
        LEFT JOIN _screensync.due_checks d ON d.integration = $integ AND d.connection_id = t.connection_id
             AND d."table" = $table AND d.record_id = CAST(t.{pk} AS VARCHAR)
        WHERE t.connection_id = $conn AND t._deleted_at IS NULL
          AND (t.{{field}} IS NULL OR CAST(t.{{field}} AS VARCHAR) <> ALL($terminal::VARCHAR[]) OR t._recheck_at IS NOT NULL)"""


def due_ids(
    con: duckdb.DuckDBPyConnection, target: TableTarget, *, integration: str, connection_id: str, state_field: str,
    terminal: Sequence[str], after: str | None, after_plus_s: float, intervals_s: Sequence[float],
    stretch: float, quiet_s: float, limit: int | None,
) -> list[str]:
    """Ids of the connection's open records due now, most overdue first, at most `limit`."""
    state = _state(target, after, after_plus_s).replace("{field}", ident(state_field))
    sql = f"""
    WITH s AS ({state}),
    flowing AS (SELECT count(*) > 0 AS yes FROM _screensync.webhook_arrivals
                WHERE integration = $integ AND connection_id = $conn
                  AND last_received_at > current_timestamp - to_seconds($quiet)),
    d AS (SELECT id, CASE WHEN _recheck_at IS NOT NULL THEN '-infinity'::TIMESTAMPTZ ELSE greatest(
            coalesce(estimate, '-infinity'::TIMESTAMPTZ),
            greatest(changed, coalesce(checked_at, changed))
              + to_seconds($intervals[least(n, len($intervals) - 1) + 1]
                           * CASE WHEN (SELECT yes FROM flowing) THEN $stretch ELSE 1 END)) END AS due_at
          FROM s)
    SELECT id FROM d WHERE due_at <= current_timestamp ORDER BY due_at, id
    {"" if limit is None else f"LIMIT {int(limit)}"}"""
    rows = con.execute(sql, {"integ": integration, "conn": connection_id, "table": target.table,
                             "terminal": [str(t) for t in terminal], "intervals": [float(i) for i in intervals_s],
                             "stretch": float(stretch), "quiet": float(quiet_s)}).fetchall()
    return [r[0] for r in rows]


def note_checked(con: duckdb.DuckDBPyConnection, target: TableTarget, *, integration: str, connection_id: str,
                 ids: Sequence[str]) -> None:
    """These records were just asked for (after their answers were written): one more check in a row
    that found nothing new, or the first after a change (which starts the intervals over)."""
    if not ids:
        return
    pk = ident(target.primary_key)
    scope = {"integ": integration, "conn": connection_id, "table": target.table}
    con.register(_IDS, pa.table({"id": pa.array(sorted(set(ids)), type=pa.string())}))
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _screensync_checked AS
            SELECT i.id, CASE WHEN d.checked_at IS NULL OR t._last_modified_at > d.checked_at THEN 0
                              ELSE d.checks + 1 END AS checks
            FROM {_IDS} i
            LEFT JOIN _screensync.due_checks d ON d.integration = $integ AND d.connection_id = $conn
                 AND d."table" = $table AND d.record_id = i.id
            LEFT JOIN {table_ref(target)} t ON t.connection_id = $conn AND CAST(t.{pk} AS VARCHAR) = i.id""",
            scope,
        )
        con.execute(
            f"""DELETE FROM _screensync.due_checks WHERE integration = $integ AND connection_id = $conn
                AND "table" = $table AND record_id IN (SELECT id FROM {_IDS})""",
            scope,
        )
        con.execute(
            """INSERT INTO _screensync.due_checks
            SELECT $integ, $conn, $table, id, current_timestamp, checks FROM _screensync_checked""",
            scope,
        )
        con.execute("DROP TABLE _screensync_checked")
    finally:
        con.unregister(_IDS)
