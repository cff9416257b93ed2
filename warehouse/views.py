"""The `unified` views: cross-provider SELECTs glued together from per-integration parts.

Each view's columns are a contract declared once, in warehouse/unified_views.yaml. Each
integration contributes its own SELECT (it knows its columns); the warehouse checks every part
against the contract (a missing, extra or incompatibly typed column fails, named), casts it to the
contract's types and unions the parts whose tables exist, so a warehouse with one integration
synced still has working views. A view with no usable part is an empty SELECT of its contract, so
dashboards never break on a fresh file. Parts are passed in by the caller; nothing is registered
globally.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

import duckdb
import yaml

from warehouse.changes import create_changes_view
from warehouse.freshness import SYNC_FRESHNESS
from warehouse.records import TableTarget
from warehouse.tables import ident, main_columns_sql, table_ref

log = logging.getLogger("screensync.warehouse")

SCHEMA = "unified"
CONTRACTS_FILE = Path(__file__).with_name("unified_views.yaml")


class ViewPartLike(Protocol):
    view: str
    sql: str
    requires: list[str] | tuple[str, ...]


@dataclass(frozen=True)
class ViewPart:
    view: str  # "background_checks" (in schema `unified`)
    sql: str  # a SELECT producing the view's columns (by name)
    requires: tuple[str, ...]  # "schema.table" names the SELECT reads
    source: str = ""  # who contributed it (an integration name), for messages

    @classmethod
    def of(cls, view: str, sql: str, requires: Iterable[str], source: str = "") -> ViewPart:
        """A checked part: a known view name, tables named as 'schema.table'."""
        ident(view, "view name")
        for table in requires:
            if table.count(".") != 1:
                raise ValueError(f"view part for {view!r} requires {table!r}: name tables as 'schema.table'")
        return cls(view, sql.strip(), tuple(requires), source)


@cache
def view_contracts(path: Path = CONTRACTS_FILE) -> dict[str, tuple[tuple[str, str], ...]]:
    """View name -> ((column, DuckDB type), ...) in order, from the contracts file."""
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of view -> columns")
    contracts: dict[str, tuple[tuple[str, str], ...]] = {}
    for view, columns in raw.items():
        if not isinstance(columns, dict) or not columns:
            raise ValueError(f"{path}: view {view!r} needs a mapping of column -> type")
        ident(str(view), "view name")  # a name DuckDB can take, or fail here
        contracts[str(view)] = tuple((str(c), str(t).upper()) for c, t in columns.items() if ident(str(c), "column"))
    return contracts


# Types a part may return for a contract type: the same family is cast to the contract's type.
_FAMILIES = {
    "text": re.compile(r"^(VARCHAR|TEXT|STRING)$"),
    "number": re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|U?(TINY|SMALL|BIG|HUGE)?INT|FLOAT|DOUBLE|REAL|"
                         r"DECIMAL(\(.*\))?)$"),
    "time": re.compile(r"^(DATE|TIMESTAMP( WITH TIME ZONE)?|TIMESTAMPTZ|TIMESTAMP_(S|MS|NS))$"),
    "bool": re.compile(r"^BOOLEAN$"),
}


def _family(duck_type: str) -> str:
    return next((name for name, pattern in _FAMILIES.items() if pattern.match(duck_type.upper())), duck_type.upper())


def check_part(con: duckdb.DuckDBPyConnection, part: ViewPartLike, contract: tuple[tuple[str, str], ...]) -> None:
    """Raise naming the column when `part` does not produce exactly the contract's columns."""
    who = f"unified.{part.view}: the part from {getattr(part, 'source', '') or 'an integration'}"
    try:
        described = con.execute(f"DESCRIBE ({part.sql.strip().rstrip(';')})").fetchall()
    except duckdb.Error as exc:
        raise ValueError(f"{who} does not run: {exc}") from exc
    got = {str(row[0]): str(row[1]) for row in described}
    wanted = dict(contract)
    for column in wanted:
        if column not in got:
            raise ValueError(f"{who} lacks column {column!r} ({wanted[column]}), declared in {CONTRACTS_FILE.name}")
    for column, duck_type in got.items():
        if column not in wanted:
            raise ValueError(f"{who} has column {column!r}, which the contract in {CONTRACTS_FILE.name} "
                             f"does not declare")
        if duck_type != '"NULL"' and duck_type != "NULL" and _family(duck_type) != _family(wanted[column]):
            raise ValueError(f"{who} returns column {column!r} as {duck_type}; the contract says {wanted[column]}")


def _cast_to(contract: tuple[tuple[str, str], ...], sql: str) -> str:
    cols = ", ".join(f"CAST({ident(n)} AS {t}) AS {ident(n)}" for n, t in contract)
    return f"SELECT {cols} FROM ({sql})"




def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchall()
    return {r[0] for r in rows}


def _empty_select(shape: tuple[tuple[str, str], ...]) -> str:
    cols = ", ".join(f"NULL::{t} AS {ident(n)}" for n, t in shape)
    return f"SELECT {cols} WHERE false"


def usable_parts(con: duckdb.DuckDBPyConnection, parts: Iterable[ViewPartLike]) -> list[ViewPartLike]:
    """The parts whose tables exist here, each checked against its view's contract (raises naming
    the view and column of the first that breaks it, or a view without a contract)."""
    contracts = view_contracts()
    tables = _existing_tables(con)
    usable = []
    for p in parts:
        if p.view not in contracts:
            raise ValueError(f"no contract for view unified.{p.view} in {CONTRACTS_FILE.name}; known: {sorted(contracts)}")
        if all(t in tables for t in p.requires):
            check_part(con, p, contracts[p.view])
            usable.append(p)
    return usable


def check_parts_over_empty_tables(parts: list[ViewPartLike], targets: list[TableTarget]) -> None:
    """Check parts against their contracts over empty copies of `targets` in a throwaway in-memory
    database (a definition's parts, at load). A part whose tables are not among them is not used."""
    con = duckdb.connect(":memory:")
    try:
        schemas = sorted({t.schema for t in targets})
        ddl = [f"CREATE TABLE {table_ref(t)} ({main_columns_sql(t)})" for t in targets]
        if ddl:
            con.execute(";".join([*(f"CREATE SCHEMA IF NOT EXISTS {ident(s)}" for s in schemas), *ddl]))
        usable_parts(con, parts)
    finally:
        con.close()


def create_views(con: duckdb.DuckDBPyConnection, parts: Iterable[ViewPartLike] | None = None) -> dict[str, int]:
    """(Re)create every `unified` view from `parts`; returns the number of parts used per view."""
    contracts = view_contracts()
    by_view: dict[str, list[str]] = {name: [] for name in contracts}
    for p in usable_parts(con, parts or []):
        by_view[p.view].append(_cast_to(contracts[p.view], p.sql.strip().rstrip(";")))
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    used: dict[str, int] = {}
    for view, sqls in by_view.items():
        ref = f"{SCHEMA}.{ident(view, 'view name')}"
        body = "\nUNION ALL BY NAME\n".join(f"({s})" for s in sqls) if sqls else _empty_select(contracts[view])
        try:
            con.execute(f"CREATE OR REPLACE VIEW {ref} AS {body}")
        except duckdb.Error as exc:
            raise ValueError(f"view unified.{view} could not be created from its parts: {exc}") from exc
        used[view] = len(sqls)
    create_meta_views(con)
    return used


def create_meta_views(con: duckdb.DuckDBPyConnection) -> None:
    """The views of screensync's own tables (`sync_freshness`, `changes`), which need no integration's
    parts; `open_records`, which `sync_freshness` reads, is the empty shape until parts are given."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    (found,) = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() "
        f"AND schema_name = '{SCHEMA}' AND view_name = 'open_records'"
    ).fetchone() or (0,)
    if not found:
        con.execute(f"CREATE VIEW {SCHEMA}.open_records AS {_empty_select(view_contracts()['open_records'])}")
    con.execute(SYNC_FRESHNESS)
    create_changes_view(con)
