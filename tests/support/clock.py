"""Our own clock moves on, in tests: hours pass for the warehouse without waiting for them.

Due-based refresh (warehouse/due.py) measures its intervals on this machine's clock: a record landed
a second ago is not due for its first interval. A test cannot wait hours, so it moves every time the
warehouse took from this machine's clock back by the same amount, together (the record's change and
check times, its versions' validity, the feed's change times, webhook arrivals), so the file stays
as if it had all happened that much earlier. Provider times (`_observed_at`, the records' own
fields) do not move: they are the provider's clock, which the sandbox moves itself.
"""

from __future__ import annotations

from pathlib import Path

# columns that hold this machine's clock (warehouse/tables.py META_COLUMNS, HISTORY_META; _screensync's)
MACHINE_TIMES = ("_first_seen_at", "_last_modified_at", "_deleted_at", "_synced_at", "_recheck_at", "_valid_from",
                 "_valid_to", "changed_at", "checked_at", "last_received_at", "last_applied_at", "gone_at")


def hours_pass(db: str | Path, hours: float) -> None:
    """Move every machine time in the warehouse at `db` (a file or a DuckLake URL) back by `hours`."""
    from warehouse.loader import Warehouse
    from warehouse.tables import ident

    shift = f"INTERVAL {round(hours * 3600)} SECOND"
    with Warehouse(db) as wh, wh.transaction() as con:  # one transaction: no write lands half-shifted
        columns = con.execute(
            "SELECT table_schema, table_name, list(column_name ORDER BY column_name) FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND column_name IN (SELECT unnest($names::VARCHAR[])) "
            "AND (table_schema, table_name) IN (SELECT (table_schema, table_name) FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE') GROUP BY ALL ORDER BY ALL",
            {"names": list(MACHINE_TIMES)},
        ).fetchall()
        for schema, table, names in columns:
            sets = ", ".join(f"{ident(n)} = {ident(n)} - {shift}" for n in names)
            con.execute(f"UPDATE {ident(schema)}.{ident(table)} SET {sets}")
