"""Soft deletes after a complete full run: rows of the connection the attempt did not see.

Only called once every page of an attempt has landed (possibly across resumed runs, which is
why the seen ids are stored, not held in memory). A quarantined record was seen too: a record
that fails validation (a provider's schema change, say) is never taken for a deleted one. An
item that could not even be identified (no id, not an object) might be any record, so an
attempt that met one deletes nothing. Caller owns the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from warehouse.changes import DELETED, record_deletes
from warehouse.columns import model_columns
from warehouse.records import TableTarget
from warehouse.tables import SUPERSEDED, ident, table_ref

log = logging.getLogger("screensync.warehouse")

GONE = "_screensync_gone"
NOT_LISTED = "not listed by a full sync"  # `_deleted_reason` of a record a complete full run did not see
_REJECTED = "_screensync_rejected_seen"


def mark_rejects_seen(
    con: duckdb.DuckDBPyConnection,
    target: TableTarget,
    *,
    connection_id: str,
    attempt_id: str,
    ids: Sequence[str | None],
) -> None:
    """Count quarantined records as seen by the attempt; None stands for an unidentified item."""
    if not ids:
        return
    con.register(_REJECTED, pa.table({"id": pa.array(list(ids), type=pa.string())}))
    try:
        con.execute(
            f"INSERT INTO _screensync.seen_keys SELECT $attempt, $schema, $table, $conn, id FROM {_REJECTED}",
            {"attempt": attempt_id, "schema": target.schema, "table": target.table, "conn": connection_id},
        )
    finally:
        con.unregister(_REJECTED)


def soft_delete_unseen(
    con: duckdb.DuckDBPyConnection,
    target: TableTarget,
    *,
    connection_id: str,
    attempt_id: str,
    run_id: str,
    observed_at: datetime | None = None,
) -> int:
    """Soft-delete the rows of the connection the attempt did not see; `observed_at` (provider clock)
    is when their absence was seen, so an older version arriving later does not bring them back."""
    main = table_ref(target)
    pk = ident(target.primary_key)
    scope = {"conn": connection_id, "attempt": attempt_id, "schema": target.schema, "table": target.table}
    (unidentified,) = con.execute(
        """SELECT count(*) FROM _screensync.seen_keys WHERE attempt_id = $attempt AND "schema" = $schema
            AND "table" = $table AND connection_id = $conn AND id IS NULL""",
        scope,
    ).fetchone() or (0,)
    if unidentified:
        log.warning(
            "%s, connection %s: %d quarantined item(s) without an id this run; no record is marked deleted",
            target.qualified, connection_id, unidentified,
        )
        return 0
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {GONE} AS
        SELECT t.{pk} FROM {main} t
        WHERE t.connection_id = $conn AND t._deleted_at IS NULL AND CAST(t.{pk} AS VARCHAR) NOT IN (
            SELECT id FROM _screensync.seen_keys
            WHERE attempt_id = $attempt AND "schema" = $schema AND "table" = $table AND connection_id = $conn
              AND id IS NOT NULL)""",
        scope,
    )
    (count,) = con.execute(f"SELECT count(*) FROM {GONE}").fetchone() or (0,)
    if count:
        end_live_versions(con, target, connection_id=connection_id, keys=GONE, reason=NOT_LISTED, run_id=run_id,
                          observed_at=observed_at)
    con.execute(f"DROP TABLE IF EXISTS {GONE}")
    return int(count)


def end_live_versions(
    con: duckdb.DuckDBPyConnection,
    target: TableTarget,
    *,
    connection_id: str,
    keys: str,
    reason: str,
    run_id: str,
    observed_at: datetime | None = None,
    action: str = DELETED,
) -> None:
    """Soft-delete the live rows of the connection whose key is in relation `keys` (column named
    as the primary key): the live version moves to `_superseded`, and the row itself then stands
    for the deletion (see `_history`), with when (`_deleted_at`) and why (`_deleted_reason`).
    `observed_at` (provider clock) is when the absence was seen: an older version arriving later
    does not bring the record back (upsert.py)."""
    main, superseded = table_ref(target), table_ref(target, SUPERSEDED)
    pk = ident(target.primary_key)
    live = (f"t.connection_id = $conn AND t._deleted_at IS NULL "
            f"AND CAST(t.{pk} AS VARCHAR) IN (SELECT CAST({pk} AS VARCHAR) FROM {keys})")
    cols = ", ".join(f"t.{ident(c.name)}" for c in model_columns(target.model))
    con.execute(
        f"""INSERT INTO {superseded} BY NAME
        SELECT {cols}, t.connection_id, t._raw, t._hash, t._last_modified_at AS _valid_from,
               current_timestamp AS _valid_to,
               CASE WHEN t._last_modified_at = t._first_seen_at THEN 'insert' ELSE 'update' END AS _change,
               t._run_id, t._observed_at
        FROM {main} t WHERE {live}""",
        {"conn": connection_id},
    )
    con.execute(
        f"""UPDATE {main} t SET _deleted_at = current_timestamp, _deleted_reason = $reason, _run_id = $run,
            _synced_at = current_timestamp, _observed_at = greatest(t._observed_at, $observed::TIMESTAMPTZ)
        WHERE {live}""",
        {"conn": connection_id, "run": run_id, "reason": reason, "observed": observed_at},
    )
    record_deletes(con, target, connection_id=connection_id, keys=keys, action=action)  # `action` in the feed


def delete_marked(con: duckdb.DuckDBPyConnection, target: TableTarget, *, connection_id: str, run_id: str) -> int:
    """Soft-delete the live rows this transaction wrote whose newest version says the provider deleted
    them (`target.deleted_field` set, e.g. a cancelled invitation's `deleted_at`). Runs after the
    upsert, so the version guard has already chosen the newest version: an older live version that
    arrives later is refused there, and a deletion older than what is stored never applies."""
    assert target.deleted_field is not None
    main, pk, field = table_ref(target), ident(target.primary_key), ident(target.deleted_field)
    return end_selected(
        con, target, connection_id=connection_id, run_id=run_id,
        select=(f"SELECT {pk} FROM {main} WHERE connection_id = $conn AND _deleted_at IS NULL "
                f"AND _synced_at = current_timestamp AND {field} IS NOT NULL"),
        reason=f"deleted at the provider ({target.deleted_field} is set)",
    )


_SELECTED = "_screensync_selected_keys"


def end_selected(con: duckdb.DuckDBPyConnection, target: TableTarget, *, connection_id: str, run_id: str,
                 select: str, reason: str, params: dict[str, object] | None = None,
                 observed_at: datetime | None = None) -> int:
    """Soft-delete the live rows whose keys `select` returns (it may use $conn): the keys are taken
    first, since the select may no longer match once they are deleted (the change feed reads them after).
    `observed_at`: as end_live_versions'."""
    keys = con.execute(select, {"conn": connection_id, **(params or {})}).to_arrow_table()
    if not keys.num_rows:
        return 0
    con.register(_SELECTED, keys)
    try:
        end_live_versions(con, target, connection_id=connection_id, keys=_SELECTED, reason=reason, run_id=run_id,
                          observed_at=observed_at)
    finally:
        con.unregister(_SELECTED)
    log.info("%s/%s: %d record(s) soft-deleted: %s", target.qualified, connection_id, keys.num_rows, reason)
    return int(keys.num_rows)
