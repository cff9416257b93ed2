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
    con.register(STAGE, stage)
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {CHANGES} AS
            SELECT s.*, md5(s._raw) AS _hash, t.{pk} IS NULL AS _new
            FROM {STAGE} s LEFT JOIN {main} t ON t.connection_id = $conn AND t.{pk} = s.{pk}
            WHERE t.{pk} IS NULL OR t._hash IS DISTINCT FROM md5(s._raw) OR t._deleted_at IS NOT NULL""",
            {"conn": connection_id},
        )
        added, updated = con.execute(
            f"SELECT count(*) FILTER (WHERE _new), count(*) FILTER (WHERE NOT _new) FROM {CHANGES}"
        ).fetchone() or (0, 0)
        if updated:
            sets = ", ".join(f"{c} = c.{c}" for c in typed)
            con.execute(
                f"""UPDATE {main} t SET {sets}, _raw = c._raw, _hash = c._hash,
                    _last_modified_at = current_timestamp, _deleted_at = NULL,
                    _run_id = $run, _synced_at = current_timestamp
                FROM {CHANGES} c WHERE NOT c._new AND t.connection_id = $conn AND t.{pk} = c.{pk}""",
                {"conn": connection_id, "run": run_id},
            )
            con.execute(
                f"""UPDATE {hist} h SET _valid_to = current_timestamp FROM {CHANGES} c
                WHERE NOT c._new AND h.connection_id = $conn AND h.{pk} = c.{pk} AND h._valid_to IS NULL""",
                {"conn": connection_id},
            )
        cols = ", ".join(typed)
        if added:
            con.execute(
                f"""INSERT INTO {main} BY NAME
                SELECT {cols}, _raw, _hash, $conn AS connection_id, current_timestamp AS _first_seen_at,
                       current_timestamp AS _last_modified_at, $run AS _run_id, current_timestamp AS _synced_at
                FROM {CHANGES} WHERE _new""",
                {"conn": connection_id, "run": run_id},
            )
        if added or updated:
            con.execute(
                f"""INSERT INTO {hist} BY NAME
                SELECT {cols}, _raw, _hash, $conn AS connection_id, current_timestamp AS _valid_from,
                       CASE WHEN _new THEN 'insert' ELSE 'update' END AS _change, $run AS _run_id
                FROM {CHANGES}""",
                {"conn": connection_id, "run": run_id},
            )
        if seen_attempt is not None:
            con.execute(
                f"""INSERT INTO _screensync.seen_keys
                SELECT $attempt, $schema, $table, $conn, CAST({pk} AS VARCHAR) FROM {STAGE}""",
                {"attempt": seen_attempt, "schema": target.schema, "table": target.table, "conn": connection_id},
            )
        con.execute(f"DROP TABLE IF EXISTS {CHANGES}")
    finally:
        con.unregister(STAGE)
    return WriteCounts(added=added, updated=updated, unchanged=stage.num_rows - added - updated)
