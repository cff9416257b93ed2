"""Soft deletes after a complete full run: rows of the connection the attempt did not see.

Only called once every page of an attempt has landed (possibly across resumed runs, which is
why the seen ids are stored, not held in memory). Caller owns the transaction.
"""

from __future__ import annotations

import duckdb

from warehouse.columns import model_columns
from warehouse.records import TableTarget
from warehouse.tables import SUPERSEDED, ident, table_ref

GONE = "_screensync_gone"


def soft_delete_unseen(
    con: duckdb.DuckDBPyConnection, target: TableTarget, *, connection_id: str, attempt_id: str, run_id: str
) -> int:
    main, superseded = table_ref(target), table_ref(target, SUPERSEDED)
    pk = ident(target.primary_key)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {GONE} AS
        SELECT t.{pk} FROM {main} t
        WHERE t.connection_id = $conn AND t._deleted_at IS NULL AND CAST(t.{pk} AS VARCHAR) NOT IN (
            SELECT id FROM _screensync.seen_keys
            WHERE attempt_id = $attempt AND "schema" = $schema AND "table" = $table AND connection_id = $conn)""",
        {"conn": connection_id, "attempt": attempt_id, "schema": target.schema, "table": target.table},
    )
    (count,) = con.execute(f"SELECT count(*) FROM {GONE}").fetchone() or (0,)
    if count:
        # the live version ends here; the row itself then stands for the deletion (see `_history`)
        cols = ", ".join(f"t.{ident(c.name)}" for c in model_columns(target.model))
        con.execute(
            f"""INSERT INTO {superseded} BY NAME
            SELECT {cols}, t.connection_id, t._raw, t._hash, t._last_modified_at AS _valid_from,
                   current_timestamp AS _valid_to,
                   CASE WHEN t._last_modified_at = t._first_seen_at THEN 'insert' ELSE 'update' END AS _change,
                   t._run_id
            FROM {main} t JOIN {GONE} g ON t.{pk} = g.{pk} WHERE t.connection_id = $conn""",
            {"conn": connection_id},
        )
        con.execute(
            f"""UPDATE {main} t SET _deleted_at = current_timestamp, _run_id = $run, _synced_at = current_timestamp
            FROM {GONE} g WHERE t.connection_id = $conn AND t.{pk} = g.{pk}""",
            {"conn": connection_id, "run": run_id},
        )
    con.execute(f"DROP TABLE IF EXISTS {GONE}")
    return int(count)
