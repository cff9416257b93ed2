"""The `unified` views: cross-provider SELECTs glued together from per-integration parts.

Each integration registers its own SELECT (it knows its columns); the warehouse only unions
the parts whose tables exist, so a warehouse with one integration synced still has working
views. A view with no usable part gets an empty, correctly-typed shape instead of vanishing,
so dashboards never break on a fresh file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import duckdb

from warehouse.changes import create_changes_view
from warehouse.freshness import OPEN_RECORDS_SHAPE, SYNC_FRESHNESS
from warehouse.tables import ident

log = logging.getLogger("screensync.warehouse")

SCHEMA = "unified"


class ViewPartLike(Protocol):
    view: str
    sql: str
    requires: list[str]


@dataclass(frozen=True)
class ViewPart:
    view: str  # "background_checks" (in schema `unified`)
    sql: str  # a SELECT producing the view's columns (by name)
    requires: tuple[str, ...]  # "schema.table" names the SELECT reads


_REGISTRY: dict[tuple[str, str], ViewPart] = {}

# Columns of each view when no integration can contribute yet.
EMPTY_SHAPES: dict[str, list[tuple[str, str]]] = {
    "background_checks": [
        ("provider", "VARCHAR"),
        ("connection_id", "VARCHAR"),
        ("check_id", "VARCHAR"),
        ("candidate_id", "VARCHAR"),
        ("candidate_email", "VARCHAR"),
        ("package", "VARCHAR"),
        ("status", "VARCHAR"),
        ("result", "VARCHAR"),
        ("created_at", "TIMESTAMPTZ"),
        ("completed_at", "TIMESTAMPTZ"),
        ("turnaround_hours", "DOUBLE"),
    ],
    "invoices": [
        ("provider", "VARCHAR"),
        ("connection_id", "VARCHAR"),
        ("invoice_id", "VARCHAR"),
        ("number", "VARCHAR"),
        ("status", "VARCHAR"),
        ("amount_cents", "BIGINT"),
        ("currency", "VARCHAR"),
        ("period_start", "DATE"),
        ("period_end", "DATE"),
        ("issued_at", "TIMESTAMPTZ"),
    ],
    "packages": [
        ("provider", "VARCHAR"),
        ("connection_id", "VARCHAR"),
        ("package_id", "VARCHAR"),
        ("package_key", "VARCHAR"),
        ("name", "VARCHAR"),
        ("price_cents", "BIGINT"),
        ("currency", "VARCHAR"),
        ("deleted", "BOOLEAN"),
    ],
    "accounts": [
        ("provider", "VARCHAR"),
        ("connection_id", "VARCHAR"),
        ("account_id", "VARCHAR"),
        ("name", "VARCHAR"),
        ("authorized", "BOOLEAN"),
        ("created_at", "TIMESTAMPTZ"),
    ],
    "open_records": OPEN_RECORDS_SHAPE,  # warehouse/freshness.py
}



def register_view_part(view: str, sql: str, requires: list[str]) -> None:
    """Add (or replace, same view + SQL) one integration's SELECT for `unified.<view>`."""
    ident(view, "view name")
    for table in requires:
        if table.count(".") != 1:
            raise ValueError(f"view part for {view!r} requires {table!r}: name tables as 'schema.table'")
    _REGISTRY[(view, sql.strip())] = ViewPart(view, sql.strip(), tuple(requires))


def registered_parts() -> list[ViewPart]:
    return list(_REGISTRY.values())


def clear_view_parts() -> None:
    _REGISTRY.clear()


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchall()
    return {r[0] for r in rows}


def _empty_select(shape: list[tuple[str, str]]) -> str:
    cols = ", ".join(f"NULL::{t} AS {ident(n)}" for n, t in shape)
    return f"SELECT {cols} WHERE false"


def create_views(con: duckdb.DuckDBPyConnection, parts: Iterable[ViewPartLike] | None = None) -> dict[str, int]:
    """(Re)create every `unified` view; returns the number of parts used per view."""
    all_parts = list(parts) if parts is not None else list(registered_parts())
    tables = _existing_tables(con)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    by_view: dict[str, list[str]] = {name: [] for name in EMPTY_SHAPES}
    for p in all_parts:
        ident(p.view, "view name")
        usable = all(t in tables for t in p.requires)
        by_view.setdefault(p.view, [])
        if usable:
            by_view[p.view].append(p.sql.strip().rstrip(";"))
    used: dict[str, int] = {}
    for view, sqls in by_view.items():
        ref = f"{SCHEMA}.{ident(view, 'view name')}"
        if sqls:
            body = "\nUNION ALL BY NAME\n".join(f"({s})" for s in sqls)
        elif view in EMPTY_SHAPES:
            body = _empty_select(EMPTY_SHAPES[view])
        else:
            con.execute(f"DROP VIEW IF EXISTS {ref}")
            continue
        try:
            con.execute(f"CREATE OR REPLACE VIEW {ref} AS {body}")
        except duckdb.Error as exc:
            raise ValueError(f"view unified.{view} could not be created from its parts: {exc}") from exc
        used[view] = len(sqls)
    con.execute(SYNC_FRESHNESS)
    create_changes_view(con)
    return used
