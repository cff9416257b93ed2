"""The set-based upsert of one staged batch into a model table and its history.

A handful of statements per batch, whatever its size: diff against the table once into a
small temp table, then UPDATE ... FROM / INSERT ... BY NAME from it. Rows whose hash did
not change are never rewritten, so an unchanged re-run leaves the files as they were.
Caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from warehouse.columns import Column
from warehouse.records import TableTarget, WriteCounts
from warehouse.sql import lit
from warehouse.tables import ident, table_ref

STAGE = "_screensync_stage"
CHANGES = "_screensync_changes"


def upsert_stage(
    con: duckdb.DuckDBPyConnection,
    target: TableTarget,
    columns: Sequence[Column],
    stage: pa.Table,
    *,
    connection_id: str,
    run_id: str,
    seen_attempt: str | None = None,
) -> WriteCounts:
    """Upsert `stage` (typed columns + `_raw`, keys already unique) for one connection."""
    if stage.num_rows == 0:
        return WriteCounts()
    main, hist = table_ref(target), table_ref(target, history=True)
    pk = ident(target.primary_key)
    typed = [ident(c.name) for c in columns]
    cols = ", ".join(typed)
    conn, run = lit(connection_id), lit(run_id)
    # One scan of the Arrow stage into a native temp table: every later statement reads that
    # (cheaper than re-scanning Arrow) and the big table is joined exactly once. The stage is
    # found by DuckDB's replacement scan of this local variable (about 0.5 ms a page cheaper
    # than register/unregister); its name must match STAGE.
    _screensync_stage = stage
    added, updated = con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {CHANGES} AS
            SELECT s.*, md5(s._raw) AS _hash,
                   CASE WHEN t.{pk} IS NULL THEN 'new'
                        WHEN t._hash IS DISTINCT FROM md5(s._raw) OR t._deleted_at IS NOT NULL THEN 'changed'
                        ELSE 'same' END AS _state
            FROM {STAGE} s LEFT JOIN {main} t ON t.connection_id = {conn} AND t.{pk} = s.{pk};
            SELECT count(*) FILTER (WHERE _state = 'new'), count(*) FILTER (WHERE _state = 'changed')
            FROM {CHANGES};"""
    ).fetchone() or (0, 0)
    statements = []
    if updated:
        sets = ", ".join(f"{c} = c.{c}" for c in typed)
        statements.append(
            f"""UPDATE {main} t SET {sets}, _raw = c._raw, _hash = c._hash,
                _last_modified_at = current_timestamp, _deleted_at = NULL,
                _run_id = {run}, _synced_at = current_timestamp
            FROM {CHANGES} c WHERE c._state = 'changed' AND t.connection_id = {conn} AND t.{pk} = c.{pk}"""
        )
        statements.append(
            f"""UPDATE {hist} h SET _valid_to = current_timestamp FROM {CHANGES} c
            WHERE c._state = 'changed' AND h.connection_id = {conn} AND h.{pk} = c.{pk} AND h._valid_to IS NULL"""
        )
    if added:
        statements.append(
            f"""INSERT INTO {main} BY NAME
            SELECT {cols}, _raw, _hash, {conn} AS connection_id, current_timestamp AS _first_seen_at,
                   current_timestamp AS _last_modified_at, {run} AS _run_id, current_timestamp AS _synced_at
            FROM {CHANGES} WHERE _state = 'new'"""
        )
    if added or updated:
        statements.append(
            f"""INSERT INTO {hist} BY NAME
            SELECT {cols}, _raw, _hash, {conn} AS connection_id, current_timestamp AS _valid_from,
                   CASE _state WHEN 'new' THEN 'insert' ELSE 'update' END AS _change, {run} AS _run_id
            FROM {CHANGES} WHERE _state <> 'same'"""
        )
    if seen_attempt is not None:
        statements.append(
            f"""INSERT INTO _screensync.seen_keys
            SELECT {lit(seen_attempt)}, {lit(target.schema)}, {lit(target.table)}, {conn}, CAST({pk} AS VARCHAR)
            FROM {CHANGES}"""
        )
    if statements:
        con.execute(";\n".join(statements))
    return WriteCounts(added=added, updated=updated, unchanged=stage.num_rows - added - updated)
