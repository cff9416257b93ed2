"""A webhook's record that a later whole-list read did not list had vanished: it lands deleted.

A late webhook can carry a record that was created and removed between two syncs (Checkr sends no
event when a report vanishes): the warehouse never held it, so the version guard has nothing to
compare with, and it would land live until the next re-poll or sweep. But if a complete read of
the table's whole list (a full sync, a sweep) *began* after the event's time and did not list the
record, the record had vanished by then: it was either listed (and so held) or gone. So an arrival
that is new to the warehouse, older than the start of the last complete whole-list read of its
table and never quarantined (a quarantined record was listed), is stored soft-deleted. The start is the
provider's time of the attempt's first list page, kept across a resumed attempt (state.py).
Caller owns the transaction.
"""

from __future__ import annotations

import duckdb

from warehouse.deletes import end_selected
from warehouse.records import TableTarget
from warehouse.sql import lit
from warehouse.tables import ident, table_ref

REASON = "not listed by a full read that began after this version"


def note_list_read(
    con: duckdb.DuckDBPyConnection, integration: str, connection_id: str, sync: str, tables: list[TableTarget]
) -> None:
    """An attempt that read whole lists completed: remember, per table, when (provider time) it began."""
    if not tables:  # most attempts read no whole list (an incremental page, a re-poll): no statement
        return
    row = con.execute(
        "SELECT attempt_from FROM _screensync.sync_positions WHERE integration = ? AND connection_id = ? AND sync = ? "
        "ORDER BY seq DESC LIMIT 1",  # the key's newest position (the `sync_state` view numbers every key's)
        [integration, connection_id, sync],
    ).fetchone()
    if not row or row[0] is None:
        return
    for t in tables:
        scope = [integration, connection_id, t.schema, t.table]
        con.execute('DELETE FROM _screensync.list_reads WHERE integration = ? AND connection_id = ? '
                    'AND "schema" = ? AND "table" = ?', scope)
        con.execute("INSERT INTO _screensync.list_reads VALUES (?, ?, ?, ?, ?, current_timestamp)", [*scope, row[0]])


def delete_unlisted_arrivals(
    con: duckdb.DuckDBPyConnection, target: TableTarget, *, integration: str, connection_id: str, run_id: str
) -> int:
    """Soft-delete the rows this transaction inserted that a later complete list read did not list.

    The deletion is observed when that read began: a later event still older than the read (a
    record's completion after its creation, both delivered late) is then a late version, and does
    not bring the record back (soak seed 163 did: created, deleted here, then undeleted by its
    `report.completed` of an hour later)."""
    row = con.execute(
        'SELECT max(listed_from) FROM _screensync.list_reads WHERE integration = ? AND connection_id = ? '
        'AND "schema" = ? AND "table" = ?', [integration, connection_id, target.schema, target.table]).fetchone()
    listed_from = row[0] if row else None
    if listed_from is None:
        return 0
    main, pk = table_ref(target), ident(target.primary_key)
    quarantined = (  # listed, but quarantined (a webhook landing it settles what was owed, so not owed_records)
        f"(SELECT record_id FROM _screensync.rejected_records WHERE integration = {lit(integration)} "
        f"AND connection_id = $conn AND model = {lit(target.table)} AND record_id IS NOT NULL)"
    )
    select = (f"SELECT {pk} FROM {main} WHERE connection_id = $conn AND _deleted_at IS NULL "
              f"AND _first_seen_at = current_timestamp AND _observed_at < $listed_from "
              f"AND CAST({pk} AS VARCHAR) NOT IN {quarantined}")
    return end_selected(con, target, connection_id=connection_id, run_id=run_id, select=select, reason=REASON,
                        params={"listed_from": listed_from}, observed_at=listed_from)
