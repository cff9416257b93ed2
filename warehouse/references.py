"""Which ids a field of one table names that another table does not hold (yet).

A sync declares fields of its records that name records of another table (Checkr: an
invitation's `report_id`, a report's `candidate_id`); after its run the engine fetches by id
whatever this finds. Ids the table holds (deleted ones too: a deletion is a known state), owes
(quarantined: the owning sync fetches them again) or knows to be gone are not missing.
"""

from __future__ import annotations

import duckdb

from warehouse.records import TableTarget
from warehouse.tables import ident, table_ref


def missing_references(
    con: duckdb.DuckDBPyConnection,
    source: TableTarget,
    field: str,
    target: TableTarget,
    *,
    integration: str,
    connection_id: str,
    limit: int,
) -> list[str]:
    """Up to `limit` ids that live rows of `source` name in `field` and `target` lacks, in id order."""
    named = f"CAST(s.{ident(field)} AS VARCHAR)"
    rows = con.execute(
        f"""SELECT DISTINCT {named} AS id FROM {table_ref(source)} s
        WHERE s.connection_id = $conn AND s._deleted_at IS NULL AND s.{ident(field)} IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM {table_ref(target)} t
                          WHERE t.connection_id = $conn AND CAST(t.{ident(target.primary_key)} AS VARCHAR) = {named})
          AND NOT EXISTS (SELECT 1 FROM _screensync.owed_records o WHERE o.integration = $integ
                          AND o.connection_id = $conn AND o."table" = $table AND o.record_id = {named})
          AND NOT EXISTS (SELECT 1 FROM _screensync.gone_records g WHERE g.integration = $integ
                          AND g.connection_id = $conn AND g."table" = $table AND g.record_id = {named})
        ORDER BY 1 LIMIT {int(limit)}""",
        {"conn": connection_id, "integ": integration, "table": target.table},
    ).fetchall()
    return [r[0] for r in rows]
