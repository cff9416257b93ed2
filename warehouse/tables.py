"""Create and evolve the typed model tables, their superseded versions and `_history` views.

`<table>` holds the current version of each record; `<table>_superseded` holds the versions
that were replaced (or deleted), written only when a record changes; the `<table>_history`
view puts the two together, one row per version. A first load therefore writes each
record once, not twice. Evolution only ever adds columns: a dropped model field keeps its column (old data stays
queryable) and a changed type is left alone with a warning rather than rewriting a table.
"""

from __future__ import annotations

import logging
import re

import duckdb

from warehouse.columns import Column, model_columns
from warehouse.records import TableTarget

log = logging.getLogger("screensync.warehouse")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

META_COLUMNS: tuple[tuple[str, str], ...] = (
    ("connection_id", "VARCHAR"),
    ("_raw", "JSON"),
    ("_hash", "VARCHAR"),
    ("_first_seen_at", "TIMESTAMPTZ"),
    ("_last_modified_at", "TIMESTAMPTZ"),
    ("_deleted_at", "TIMESTAMPTZ"),
    ("_deleted_reason", "VARCHAR"),  # why: not listed by a full sync, or gone at the provider (404)
    ("_run_id", "VARCHAR"),
    ("_synced_at", "TIMESTAMPTZ"),
    ("_observed_at", "TIMESTAMPTZ"),  # when this version was true at the provider (its clock): upsert.py
    ("_recheck_at", "TIMESTAMPTZ"),  # set when two versions were observed at the same time: fetch it again
)
HISTORY_META: tuple[tuple[str, str], ...] = (
    ("connection_id", "VARCHAR"),
    ("_raw", "JSON"),
    ("_hash", "VARCHAR"),
    ("_valid_from", "TIMESTAMPTZ"),
    ("_valid_to", "TIMESTAMPTZ"),
    ("_change", "VARCHAR"),
    ("_run_id", "VARCHAR"),
    ("_observed_at", "TIMESTAMPTZ"),
)
RESERVED = {name for name, _ in META_COLUMNS} | {name for name, _ in HISTORY_META}


def ident(name: str, what: str = "identifier") -> str:
    """Quote a schema/table/column name after checking it is a plain identifier."""
    if not _IDENT.match(name):
        raise ValueError(f"invalid {what} {name!r}: use letters, digits and underscores, not starting with a digit")
    return f'"{name}"'


def table_ref(target: TableTarget, suffix: str = "") -> str:
    """`"schema"."table"`; `suffix` names a companion: `_superseded` (table) or `_history` (view)."""
    return f"{ident(target.schema, 'schema name')}.{ident(target.table + suffix, 'table name')}"


SUPERSEDED = "_superseded"
HISTORY = "_history"


def target_columns(target: TableTarget) -> tuple[Column, ...]:
    """The model's columns, checked against the metadata names and the primary key."""
    cols = model_columns(target.model)
    names = {c.name for c in cols}
    clash = names & RESERVED
    if clash:
        raise ValueError(
            f"model {target.model.__name__} uses reserved column name(s) {sorted(clash)} ({target.qualified})"
        )
    if target.primary_key not in names:
        raise ValueError(
            f"primary key {target.primary_key!r} is not a field of {target.model.__name__} ({target.qualified})"
        )
    for c in cols:
        ident(c.name, f"column name in {target.model.__name__}")
    return cols


def _existing(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
        "AND database_name = current_database()",
        [schema, table],
    ).fetchall()
    return {name: dtype for name, dtype in rows}


_TYPE_ALIASES = {"TIMESTAMPWITHTIMEZONE": "TIMESTAMPTZ", "INT64": "BIGINT", "INT8": "BIGINT", "FLOAT8": "DOUBLE",
                 "BOOL": "BOOLEAN", "STRING": "VARCHAR", "TEXT": "VARCHAR"}


def _canonical_type(dtype: str) -> str:
    """DuckDB reports `TIMESTAMP WITH TIME ZONE` for a column declared `TIMESTAMPTZ`: compare canonically."""
    compact = dtype.replace(" ", "").upper()
    for alias, name in _TYPE_ALIASES.items():
        compact = compact.replace(alias, name)
    return compact


def _ensure_one(con: duckdb.DuckDBPyConnection, schema: str, table: str, columns: list[tuple[str, str]]) -> list[str]:
    """Create the table or add missing columns; returns the names of added columns ([] when created)."""
    ref = f"{ident(schema)}.{ident(table)}"
    existing = _existing(con, schema, table)
    if not existing:
        body = ", ".join(f"{ident(n)} {t}" for n, t in columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS {ref} ({body})")
        return []
    added = []
    for name, dtype in columns:
        if name not in existing:
            con.execute(f"ALTER TABLE {ref} ADD COLUMN {ident(name)} {dtype}")
            added.append(name)
        elif _canonical_type(existing[name]) != _canonical_type(dtype):
            log.warning(
                "%s.%s is %s but the model now says %s; keeping the column as it is", ref, name, existing[name], dtype
            )
    return added


def _migrate_history_table(con: duckdb.DuckDBPyConnection, target: TableTarget) -> None:
    """Warehouses written by earlier 0.1 builds kept every version, current ones too, in a `_history` table:
    rename it to `_superseded` and drop the current versions (the main table has them)."""
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ? "
        "AND table_catalog = current_database()",
        [target.schema, target.table + HISTORY],
    ).fetchone()
    if not kind or kind[0] != "BASE TABLE":
        return
    con.execute(f"ALTER TABLE {table_ref(target, HISTORY)} RENAME TO {ident(target.table + SUPERSEDED)}")
    con.execute(f"DELETE FROM {table_ref(target, SUPERSEDED)} WHERE _valid_to IS NULL")
    log.info("%s: moved the old history table to %s%s", target.qualified, target.table, SUPERSEDED)


def history_view_sql(target: TableTarget, columns: list[str]) -> str:
    """Every version of every record: superseded ones plus the current row of the main table.

    A soft-deleted row's current version is its deletion (`_change = 'delete'`, from `_deleted_at`);
    the version it replaced was moved to `_superseded` when it was deleted. A version that arrived
    after a newer one was stored was never current: `_change = 'late'`, valid from and to its arrival.
    """
    cols = ", ".join(["connection_id", *(ident(c) for c in columns), "_raw", "_hash"])
    return f"""CREATE OR REPLACE VIEW {table_ref(target, HISTORY)} AS
    SELECT {cols}, _valid_from, _valid_to, _change, _run_id, _observed_at FROM {table_ref(target, SUPERSEDED)}
    UNION ALL
    SELECT {cols}, coalesce(_deleted_at, _last_modified_at) AS _valid_from, NULL::TIMESTAMPTZ AS _valid_to,
        CASE WHEN _deleted_at IS NOT NULL THEN 'delete'
             WHEN _last_modified_at = _first_seen_at THEN 'insert' ELSE 'update' END AS _change,
        _run_id, _observed_at
    FROM {table_ref(target)}"""


def main_columns_sql(target: TableTarget) -> str:
    """The column list of a main table, as `ensure_model_tables` creates it (for throwaway copies)."""
    columns = [META_COLUMNS[0], *((c.name, c.duckdb_type) for c in target_columns(target)), *META_COLUMNS[1:]]
    return ", ".join(f"{ident(n)} {t}" for n, t in columns)


def ensure_model_tables(con: duckdb.DuckDBPyConnection, target: TableTarget) -> tuple[bool, list[str]]:
    """Create/evolve `<table>`, `<table>_superseded` and the `<table>_history` view; returns
    (created, added columns).

    When columns are added, existing rows get `_hash = NULL` so the next run that sees them
    rewrites them once with the new typed values (their `_raw` already holds the data).
    """
    cols = target_columns(target)
    (catalog,) = con.execute("SELECT current_database()").fetchone() or ("",)
    if catalog == target.schema:
        raise ValueError(
            f"the warehouse file is named {catalog!r}, the same as schema {target.schema!r}, which makes "
            f"'{target.schema}.<table>' ambiguous in DuckDB; give the warehouse file another name"
        )
    typed = [(c.name, c.duckdb_type) for c in cols]
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(target.schema, 'schema name')}")
    created = not _existing(con, target.schema, target.table)
    added = _ensure_one(con, target.schema, target.table, [META_COLUMNS[0], *typed, *META_COLUMNS[1:]])
    _migrate_history_table(con, target)
    superseded_added = _ensure_one(
        con, target.schema, target.table + SUPERSEDED, [HISTORY_META[0], *typed, *HISTORY_META[1:]]
    )
    if created or added or superseded_added or not _existing(con, target.schema, target.table + HISTORY):
        con.execute(history_view_sql(target, [c.name for c in cols]))
    added = [name for name in added if name not in RESERVED]  # new metadata columns start empty
    if added:
        con.execute(f"UPDATE {table_ref(target)} SET _hash = NULL")
        log.info("%s: added column(s) %s; existing rows refresh on their next sync", target.qualified, added)
    return created, added
