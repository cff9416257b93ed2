"""The change feed: every change the warehouse takes gets a cursor, in the transaction that makes it.

A record added, updated (or brought back), deleted by a full sync or gone at the provider (404),
whether from a sync page, a re-poll, a refetch, a referenced record or a webhook, adds one row to
`_screensync.changes` in the same transaction as the change itself: the cursor exists exactly when
the change does. Each write numbers its changes on from the feed's last cursor, in that transaction,
so cursors are gap-free, strictly increasing in commit order and never reused (a prune keeps the
newest row). That is safe because the embedded warehouse lets one write transaction in at a time
(warehouse/access.py).

A DuckLake takes concurrent writers, and two INSERT-only transactions do not conflict, so "last + 1"
would hand the same cursor to both. There the cursor is the feed row's DuckLake row id + 1 instead:
DuckLake numbers a table's rows when it commits them, in commit order, never reuses a number and
keeps it through compaction; a reader sees a snapshot, which holds every row numbered below its
next row id and none above. So a consumer that stored cursor N and reads again sees exactly the
changes committed after the ones it had (cursors may skip numbers: a prune, rows of a failed
commit never numbered; they never repeat or go back). The stored `cursor` column stays NULL there.

The feed row is slim (which record, what happened, when; each small write adds a row group to it,
so every column costs file space between vacuums): the run, the provider time and the content of the
change are the version in `<table>_history` that starts at the change (`_valid_from = changed_at`, both the write
transaction's `current_timestamp`), so payloads are not stored twice. `unified.changes` and
`changes_sql()` join the two; nothing expires unless `prune()` is run, and even then only the feed
rows go (history keeps every version).
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from warehouse.records import TableTarget
from warehouse.sql import lit
from warehouse.tables import HISTORY, ident, table_ref

CHANGES_DDL = """
CREATE TABLE IF NOT EXISTS _screensync.changes (
    "cursor" BIGINT, integration VARCHAR, "table" VARCHAR, connection_id VARCHAR, record_id VARCHAR,
    action VARCHAR, changed_at TIMESTAMPTZ
);
"""

ADDED, UPDATED, DELETED, GONE = "added", "updated", "deleted", "gone"
ACTIONS = (ADDED, UPDATED, DELETED, GONE)

# the last cursor given: the newest feed row is never pruned (`prune`), so this never goes back
LAST = 'SELECT coalesce(max("cursor"), 0) FROM _screensync.changes'
LAKE_CURSOR = "(rowid + 1)"  # a DuckLake row id: numbered at commit, in commit order (see above)
LAKE_LAST = f"SELECT coalesce(max({LAKE_CURSOR}), 0) FROM _screensync.changes"


def on_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Is the connection's current database a DuckLake (cursors from row ids, not stored)?"""
    row = con.execute("SELECT type FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return bool(row) and row[0] == "ducklake"


def _cursor(con: duckdb.DuckDBPyConnection, alias: str = "") -> str:
    """The cursor of a feed row: the stored column, or on a DuckLake its row id + 1."""
    prefix = f"{alias}." if alias else ""
    return f"({prefix}rowid + 1)" if on_lake(con) else f'{prefix}"cursor"'


def _last(con: duckdb.DuckDBPyConnection) -> str:
    return LAKE_LAST if on_lake(con) else LAST


def record_deletes(con: duckdb.DuckDBPyConnection, target: TableTarget, *, connection_id: str, keys: str,
                   action: str) -> int:
    """Give a cursor to each row of the connection in `target` that this transaction just soft-deleted
    and whose key is in relation `keys` (a column named as the primary key); `action` is `deleted` or
    `gone`. Caller owns the transaction."""
    pk = ident(target.primary_key)
    number = ("NULL::BIGINT" if on_lake(con)  # numbered by DuckLake at commit (module docstring)
              else f"({LAST}) + row_number() OVER (ORDER BY CAST(t.{pk} AS VARCHAR))")
    scope = {"integ": target.schema, "table": target.table, "conn": connection_id}
    # a version landed and deleted by this same transaction (a webhook whose record says it was deleted:
    # `deleted_field`) is one change, the deletion: its feed row says so instead of a second row
    mine = 'changed_at = current_timestamp AND integration = $integ AND "table" = $table AND connection_id = $conn'
    (merged,) = con.execute(
        f"""UPDATE _screensync.changes SET action = {lit(action)}
        WHERE {mine} AND record_id IN (SELECT CAST({pk} AS VARCHAR) FROM {keys})""", scope).fetchone() or (0,)
    row = con.execute(
        f"""INSERT INTO _screensync.changes
        SELECT {number}, $integ, $table, $conn,
               CAST(t.{pk} AS VARCHAR), {lit(action)}, current_timestamp
        FROM {table_ref(target)} t
        WHERE t.connection_id = $conn AND t._deleted_at = current_timestamp
          AND CAST(t.{pk} AS VARCHAR) IN (SELECT CAST({pk} AS VARCHAR) FROM {keys})
          {f"AND CAST(t.{pk} AS VARCHAR) NOT IN (SELECT record_id FROM _screensync.changes WHERE {mine})" if merged else ""}""",
        scope,
    ).fetchone()
    count = row[0] if row else 0
    return int(count) + int(merged)


LITERAL_IDS = 2_000  # more ids than this go to DuckDB as an Arrow table, fewer as SQL text (parsed faster)
FEED_IDS = "_screensync_feed_ids"


def record_upserts(con: duckdb.DuckDBPyConnection, target: TableTarget, *, connection_id: str, stage: str,
                   added: list[str] | None, updated: list[str], lake: bool | None = None) -> int:
    """Give a cursor to each record an upsert just added or updated: `added` and `updated` are the
    ids its diff found (warehouse/upsert.py); `added` None when nothing of `stage` (a relation with
    the primary key column) existed, so every staged key was added. Known from the diff, not found
    again in the table afterwards: that was a scan of the table's key column per write (~2 ms a page
    of 100 as a table grows). `lake`: whether `con` writes a DuckLake, when the caller knows (else
    asked: a statement a write). Caller owns the transaction."""
    scope = f"{lit(target.schema)}, {lit(target.table)}, {lit(connection_id)}"
    lake = on_lake(con) if lake is None else lake
    number = "NULL::BIGINT" if lake else f"({LAST}) + row_number() OVER (ORDER BY record_id)"
    ids = [(i, ADDED) for i in added] + [(i, UPDATED) for i in updated] if added is not None else []
    if added is not None and not ids:
        return 0
    registered = added is not None and len(ids) > LITERAL_IDS
    if added is None:
        rows = f"SELECT CAST({ident(target.primary_key)} AS VARCHAR) AS record_id, {lit(ADDED)} AS action FROM {stage}"
    elif registered:
        rows = f"SELECT record_id, action FROM {FEED_IDS}"
        con.register(FEED_IDS, pa.table({"record_id": [i for i, _ in ids], "action": [a for _, a in ids]}))
    else:  # a bound list parameter cost ~6 ms a statement; SQL text ~0.1 ms
        rows = f"SELECT * FROM (VALUES {', '.join(f'({lit(i)}, {lit(a)})' for i, a in ids)}) AS v(record_id, action)"
    try:
        row = con.execute(
            f"""INSERT INTO _screensync.changes SELECT {number}, {scope}, record_id, action, current_timestamp
            FROM ({rows}) ORDER BY record_id"""  # a lake numbers rows in the order they are inserted
        ).fetchone()
    finally:
        if registered:
            con.unregister(FEED_IDS)
    return int(row[0]) if row else 0


def history_views(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(schema, table) of every model table with a `_history` view in this file."""
    rows = con.execute(
        "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal AND database_name = current_database() "
        "AND view_name LIKE '%\\_history' ESCAPE '\\' ORDER BY ALL"
    ).fetchall()
    return [(schema, view[: -len(HISTORY)]) for schema, view in rows]


_COLUMNS = ("cursor", "integration", "table", "connection_id", "record_id", "action", "changed_at")


def changes_sql(con: duckdb.DuckDBPyConnection) -> str:
    """A SELECT of the feed with each change's record version: the body of `unified.changes`."""
    feed = ", ".join(f'{_cursor(con, "c")} AS "cursor"' if c == "cursor" else f"c.{ident(c)}" for c in _COLUMNS)
    parts = []
    for schema, table in history_views(con):
        hist = f"{ident(schema)}.{ident(table + HISTORY)}"
        pk = ident(_pk(con, schema, table))
        # one version per change: the one that started at it (a late arrival never did: it was never current)
        parts.append(
            f"""SELECT {feed}, h._run_id AS run_id, h._observed_at AS observed_at, h._hash AS version_hash, h._raw AS record
            FROM _screensync.changes c LEFT JOIN (
                SELECT * FROM {hist} WHERE _change <> 'late'
                QUALIFY row_number() OVER (PARTITION BY connection_id, {pk}, _valid_from
                                           ORDER BY _valid_to DESC NULLS FIRST) = 1
            ) h ON h.connection_id = c.connection_id
               AND CAST(h.{pk} AS VARCHAR) = c.record_id AND h._valid_from = c.changed_at
            WHERE c.integration = {lit(schema)} AND c."table" = {lit(table)}"""
        )
    if not parts:
        return (f"SELECT {feed}, NULL::VARCHAR AS run_id, NULL::TIMESTAMPTZ AS observed_at, NULL::VARCHAR AS version_hash, "
                "NULL::JSON AS record FROM _screensync.changes c WHERE false")
    return "\nUNION ALL\n".join(parts)


def _pk(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    """The model table's primary key, as `note_primary_key` left it on the table (`id` before it did)."""
    comment = _comment(con, schema, table)
    return comment[len(_PK):] if comment and comment.startswith(_PK) else "id"


def _comment(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str | None:
    row = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = ? "
        "AND table_name = ?",
        [schema, table],
    ).fetchone()
    return row[0] if row else None


_PK = "primary key: "


def note_primary_key(con: duckdb.DuckDBPyConnection, target: TableTarget) -> None:
    """Remember the table's primary key where a reader can find it (the feed joins on it). Only
    when it is not there yet: on a DuckLake a comment is a change of the table that conflicts with
    every concurrent writer of it."""
    if _comment(con, target.schema, target.table) == _PK + target.primary_key:
        return
    con.execute(f"COMMENT ON TABLE {table_ref(target)} IS {lit(_PK + target.primary_key)}")


def feed_view_missing(con: duckdb.DuckDBPyConnection) -> bool:
    """No `unified.changes` yet: the `unified` views were made by an earlier version and need remaking."""
    row = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() AND schema_name = 'unified' "
        "AND view_name = 'changes'"
    ).fetchone()
    return not row or not row[0]


def create_changes_view(con: duckdb.DuckDBPyConnection) -> None:
    """`unified.changes` (recreated with the other views, so it covers every model table)."""
    has_feed = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = '_screensync' AND table_name = 'changes'"
    ).fetchone()
    if not has_feed or not has_feed[0]:  # a file no writer of this version has prepared
        return
    con.execute(f"CREATE OR REPLACE VIEW unified.changes AS {changes_sql(con)}")


def read_changes(con: duckdb.DuckDBPyConnection, *, since: int, limit: int | None = None,
                 integration: str | None = None, table: str | None = None,
                 connection_id: str | None = None) -> list[dict[str, Any]]:
    """Changes after cursor `since`, in cursor order, each with its record (a dict)."""
    where = ['"cursor" > $since']
    params: dict[str, Any] = {"since": since}
    for column, value in (("integration", integration), ("table", table), ("connection_id", connection_id)):
        if value is not None:
            where.append(f"{ident(column)} = ${column}")
            params[column] = value
    sql = f"SELECT * FROM ({changes_sql(con)}) WHERE {' AND '.join(where)} ORDER BY \"cursor\""
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def last_cursor(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute(_last(con)).fetchone()
    return int(row[0]) if row else 0


def prune(con: duckdb.DuckDBPyConnection, *, before: int) -> int:
    """Drop feed rows with a cursor below `before` (history keeps the versions); returns how many. The
    newest row always stays: the next cursor is counted from it, so a cursor is never given twice."""
    bound, cursor = f"least($b, ({_last(con)}))", _cursor(con)
    (count,) = con.execute(f"SELECT count(*) FROM _screensync.changes WHERE {cursor} < {bound}",
                           {"b": before}).fetchone() or (0,)
    con.execute(f"DELETE FROM _screensync.changes WHERE {cursor} < {bound}", {"b": before})
    return int(count)
