"""The set-based upsert of one staged batch into a model table and its superseded versions.

A handful of statements per batch, whatever its size, and only the ones the batch needs: joins
against the table count new and changed rows (nothing else comes back to Python), then
a plain INSERT when every row is new (a first load), UPDATE ... FROM for changed rows after
their previous version is copied to `_superseded`, and an anti-joined INSERT for the rest.
Rows whose hash did not change are never rewritten, so an unchanged re-run leaves the records
as they were. Caller owns the transaction.

**A version never replaces a newer one.** Every staged row carries `_observed_at`, when that
version was true at the provider (a page's `Date` header, a webhook event's time), and so does
every stored row. A changed row is applied only when it was observed at or after the stored
version; an older one (a late or reordered webhook, a list page fetched before a webhook was
applied) goes to `_superseded` as `_change = 'late'` and the table keeps the newer version. On a
tie the incoming version is applied and the row gets `_recheck_at`: which of the two is newer
cannot be known, so the re-poll fetches it again. An unchanged row seen later only moves its
`_observed_at` forward, so an older version arriving afterwards is still recognised as older.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from warehouse.changes import record_upserts
from warehouse.columns import Column
from warehouse.records import TableTarget, WriteCounts
from warehouse.sql import lit
from warehouse.tables import SUPERSEDED, ident, table_ref

STAGE = "_screensync_stage"

DIFFERS = "(t._hash IS DISTINCT FROM s._hash OR t._deleted_at IS NOT NULL)"
NOT_OLDER = "(s._observed_at IS NULL OR t._observed_at IS NULL OR s._observed_at >= t._observed_at)"
APPLY = f"({DIFFERS} AND {NOT_OLDER})"  # replaces the stored version
LATE = f"({DIFFERS} AND NOT {NOT_OLDER})"  # older than the stored version: history only
FIRST_SEEN_NOW = "t._first_seen_at IS NOT DISTINCT FROM current_timestamp"  # added earlier in this transaction
SEEN_LATER = f"(NOT {DIFFERS} AND s._observed_at > t._observed_at)"  # same content, observed later


def upsert_stage(
    con: duckdb.DuckDBPyConnection,
    target: TableTarget,
    columns: Sequence[Column],
    stage: pa.Table,
    *,
    connection_id: str,
    run_id: str,
    seen_attempt: str | None = None,
    expect_existing: bool = False,
    feed: bool = True,
    lake: bool | None = None,
) -> WriteCounts:
    """Upsert `stage` (typed columns + `_raw` + `_hash` + `_observed_at`, optionally `_run_id`: see
    staging.build_stage; keys already unique) for one connection.

    `expect_existing` (the previous batch of this table found existing rows) skips the key-only
    probe and diffs at once: one query instead of two when re-syncing known records.
    `feed`: give each added or updated row a change-feed cursor (warehouse/changes.py) in this transaction;
    `lake`: whether `con` writes a DuckLake, when the caller knows.
    """
    if stage.num_rows == 0:
        return WriteCounts()
    main, superseded = table_ref(target), table_ref(target, SUPERSEDED)
    pk = ident(target.primary_key)
    typed = [ident(c.name) for c in columns]
    cols = ", ".join(typed)
    conn = lit(connection_id)
    run = "s._run_id" if "_run_id" in stage.column_names else lit(run_id)
    match = f"t.connection_id = {conn} AND t.{pk} = s.{pk}"
    # Registering the Arrow table is zero-copy; a temp table per page cost ~3 ms, more than the rest.
    con.register(STAGE, stage)
    try:
        def tally(known: str) -> str:
            return ", ".join(f"count(*) FILTER (WHERE {known}{cond})" for cond in (APPLY, LATE, SEEN_LATER))

        # the diff: counts, and the keys this write adds or changes (the change feed's rows) at no extra read
        diff = f"""SELECT count(*) FILTER (WHERE t.{pk} IS NULL), {tally(f"t.{pk} IS NOT NULL AND ")},
            list(CAST(s.{pk} AS VARCHAR)) FILTER (WHERE t.{pk} IS NULL OR ({APPLY} AND {FIRST_SEEN_NOW})),
            list(CAST(s.{pk} AS VARCHAR)) FILTER (WHERE t.{pk} IS NOT NULL AND {APPLY} AND NOT {FIRST_SEEN_NOW})
            FROM {STAGE} s LEFT JOIN {main} t ON {match}"""
        added_ids: list[str] | None = None  # None with nothing known: every staged key is new
        updated_ids: list[str] = []
        existing = expect_existing
        if not existing:
            # Which keys exist reads only the key columns (a third cheaper than the full diff):
            # when none does, as on every write of a first load, no hash needs comparing.
            row = con.execute(f"SELECT count(*) FROM {STAGE} s SEMI JOIN {main} t ON {match}").fetchone()
            existing = bool(row and row[0])
        if existing:
            row = con.execute(diff).fetchone()
            added, updated, late, seen_later = (int(v) for v in row[:4]) if row else (0, 0, 0, 0)
            added_ids, updated_ids = (row[4] or [], row[5] or []) if row else ([], [])
        else:
            added, updated, late, seen_later = stage.num_rows, 0, 0, 0
        statements = []
        if seen_attempt is not None:
            statements.append(
                f"""INSERT INTO _screensync.seen_keys
                SELECT {lit(seen_attempt)}, {lit(target.schema)}, {lit(target.table)}, {conn}, CAST({pk} AS VARCHAR)
                FROM {STAGE}"""
            )
        if late:
            # arrived after a newer version: never current, kept so history has everything that arrived
            staged = ", ".join(f"s.{c}" for c in typed)
            statements.append(
                f"""INSERT INTO {superseded} BY NAME
                SELECT {staged}, {conn} AS connection_id, s._raw, s._hash, current_timestamp AS _valid_from,
                    current_timestamp AS _valid_to, 'late' AS _change, {run} AS _run_id, s._observed_at
                FROM {STAGE} s JOIN {main} t ON {match} WHERE {LATE}"""
            )
        if updated:
            # the version being replaced: a live row, or the deletion of a soft-deleted one
            old = ", ".join(f"t.{c}" for c in typed)
            statements.append(
                f"""INSERT INTO {superseded} BY NAME
                SELECT {old}, t.connection_id, t._raw, t._hash,
                    coalesce(t._deleted_at, t._last_modified_at) AS _valid_from, current_timestamp AS _valid_to,
                    CASE WHEN t._deleted_at IS NOT NULL THEN 'delete'
                         WHEN t._last_modified_at = t._first_seen_at THEN 'insert' ELSE 'update' END AS _change,
                    t._run_id, t._observed_at
                FROM {main} t JOIN {STAGE} s ON {match} WHERE {APPLY}"""
            )
            sets = ", ".join(f"{c} = s.{c}" for c in typed)
            statements.append(
                f"""UPDATE {main} t SET {sets}, _raw = s._raw, _hash = s._hash,
                    _last_modified_at = current_timestamp, _deleted_at = NULL, _deleted_reason = NULL,
                    _run_id = {run}, _synced_at = current_timestamp, _observed_at = s._observed_at,
                    _recheck_at = CASE WHEN s._observed_at = t._observed_at THEN current_timestamp END
                FROM {STAGE} s WHERE {match} AND {APPLY}"""
            )
        if seen_later:
            statements.append(
                f"""UPDATE {main} t SET _observed_at = s._observed_at, _recheck_at = NULL
                FROM {STAGE} s WHERE {match} AND {SEEN_LATER}"""
            )
        if added:
            new_only = (
                ""
                if added == stage.num_rows
                else f"WHERE NOT EXISTS (SELECT 1 FROM {main} t WHERE {match})"
            )
            statements.append(
                f"""INSERT INTO {main} BY NAME
                SELECT {cols}, _raw, _hash, {conn} AS connection_id, current_timestamp AS _first_seen_at,
                       current_timestamp AS _last_modified_at, {run} AS _run_id, current_timestamp AS _synced_at,
                       _observed_at
                FROM {STAGE} s {new_only}"""
            )
        if statements:
            con.execute(";\n".join(statements))
        if feed and (added or updated):  # the change feed's cursors, in this same transaction
            record_upserts(con, target, connection_id=connection_id, stage=STAGE, added=added_ids, updated=updated_ids,
                           lake=lake)
    finally:
        con.unregister(STAGE)
    return WriteCounts(added=added, updated=updated, unchanged=stage.num_rows - added - updated - late, late=late)
