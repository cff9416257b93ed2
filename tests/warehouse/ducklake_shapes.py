"""Our warehouse's write shapes on a DuckLake connection, shared by the DuckLake spike's tests
and bench/ducklake_commits.py.

The page transaction is the one `Warehouse._write_page` runs (upsert of staged Arrow rows into
a model table and its `_superseded` versions, seen keys, then the checkpoint), built from the
same warehouse functions, so what is measured here is what the real backend would send. The
worker functions run in spawned processes: several writers committing to one DuckLake at once.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
import time
from decimal import Decimal
from typing import Any, Literal

import duckdb
import orjson
import pyarrow as pa
from pydantic import BaseModel

from warehouse import ducklake, owed
from warehouse import state as st
from warehouse.changes import CHANGES_DDL
from warehouse.columns import Column
from warehouse.freshness import ARRIVALS_DDL
from warehouse.records import RejectedRecord, TableTarget, WriteCounts
from warehouse.staging import build_stage
from warehouse.tables import ensure_model_tables, target_columns
from warehouse.upsert import upsert_stage

INTEGRATION = "spike"
SYNC = "checks"
CONFLICT = "Transaction conflict"
RETRIES_EXHAUSTED = "Exceeded the maximum retry count"  # DuckLake's own snapshot-id race retries ran out


class Package(enum.StrEnum):
    BASIC = "basic"
    PRO = "pro"


class Check(BaseModel):
    """Every column type our models map to (warehouse/columns.py)."""

    id: str
    status: Literal["pending", "complete"]
    package: Package
    amount: Decimal | None = None
    score: float | None = None
    count: int | None = None
    clear: bool | None = None
    created_at: dt.datetime
    due_on: dt.date | None = None
    tags: list[str] = []
    ids: list[int] = []
    meta: dict[str, Any] | None = None


CHECKS = TableTarget("spike", "checks", Check)


def columns() -> tuple[Column, ...]:
    return target_columns(CHECKS)


def record(key: int, version: int) -> dict[str, Any]:
    return {
        "id": f"chk-{key:05d}",
        "status": "complete" if version % 2 else "pending",
        "package": Package.PRO if key % 2 else Package.BASIC,
        "amount": Decimal("12.5000") + version,
        "score": key / 7,
        "count": version,
        "clear": bool(version % 2),
        "created_at": dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC) + dt.timedelta(minutes=key),
        "due_on": dt.date(2024, 6, 1),
        "tags": ["a", f"v{version}"],
        "ids": [key, version],
        "meta": {"version": version, "nested": {"key": key}},
    }


def stage(keys: range, version: int) -> pa.Table:
    """Staged Arrow rows (typed columns + `_raw` as Arrow JSON + `_hash`), as the loader stages a page."""
    rows = [Check.model_validate(record(k, version)).model_dump() for k in keys]
    raws = [orjson.dumps(record(k, version), default=str, option=orjson.OPT_SORT_KEYS).decode() for k in keys]
    return build_stage(columns(), "id", rows, raws, CHECKS.qualified)


def setup(con: duckdb.DuckDBPyConnection, *, versions: bool = True) -> None:
    """The meta schema and the model tables, once, before any concurrent writer starts: concurrent
    `CREATE ... IF NOT EXISTS` of one name conflict in DuckLake (the second commit fails).
    `versions` adds the append-only table and its view, which need DuckLake's `snapshot_id`."""
    con.execute(st.META_DDL)
    st.prepare_logs(con)
    con.execute(owed.OWED_DDL)
    con.execute(CHANGES_DDL)
    con.execute(ARRIVALS_DDL)
    con.execute(POSITIONS_DDL)
    con.execute("BEGIN TRANSACTION")
    ensure_model_tables(con, CHECKS)
    con.execute("COMMIT")
    if versions:
        con.execute(VERSIONS_DDL)


# The append-only alternative for a model table: every version is a row, writers only INSERT; the
# current version of a record is the newest row of its key in commit order (DuckLake's `snapshot_id`
# of the row, NULL for the writer's own uncommitted rows, then `rowid`).
VERSIONS = "spike.checks_versions"
CURRENT = "spike.checks_current"
VERSIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS {VERSIONS} AS
    SELECT * EXCLUDE (_first_seen_at, _last_modified_at, _deleted_at), NULL::VARCHAR AS _change
    FROM spike.checks LIMIT 0;
CREATE OR REPLACE VIEW {CURRENT} AS
    SELECT * FROM {VERSIONS}
    QUALIFY row_number() OVER (PARTITION BY connection_id, id ORDER BY snapshot_id DESC NULLS FIRST, rowid DESC) = 1;
"""


def append_versions(con: duckdb.DuckDBPyConnection, table: pa.Table, *, connection_id: str, run_id: str) -> int:
    """The upsert as appends: a new version for each new or changed record, nothing rewritten."""
    cols = ", ".join(f's."{c.name}"' for c in columns())
    con.register("_spike_stage", table)
    try:
        row = con.execute(
            f"""INSERT INTO {VERSIONS} BY NAME
            SELECT {cols}, s._raw, s._hash, $conn AS connection_id, $run AS _run_id, current_timestamp AS _synced_at,
                   CASE WHEN c.id IS NULL THEN 'insert' ELSE 'update' END AS _change
            FROM _spike_stage s LEFT JOIN (SELECT id, _hash, _change FROM {CURRENT} WHERE connection_id = $conn) c
                ON c.id = s.id
            WHERE c.id IS NULL OR c._hash IS DISTINCT FROM s._hash OR c._change = 'delete'""",
            {"conn": connection_id, "run": run_id},
        ).fetchone()
    finally:
        con.unregister("_spike_stage")
    return int(row[0]) if row else 0


def append_only_page(
    con: duckdb.DuckDBPyConnection, table: pa.Table, *, connection_id: str, run_id: str, attempt_id: str,
    checkpoint: dict[str, Any],
) -> int:
    """A page with nothing but INSERTs: versions, seen keys, checkpoint row."""
    con.execute("BEGIN TRANSACTION")
    try:
        written = append_versions(con, table, connection_id=connection_id, run_id=run_id)
        con.register("_spike_seen", table.select(["id"]))
        con.execute("INSERT INTO _screensync.seen_keys SELECT $a, 'spike', 'checks', $c, id FROM _spike_seen",
                    {"a": attempt_id, "c": connection_id})
        con.unregister("_spike_seen")
        append_position(con, connection_id, attempt_id, checkpoint)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return written


# Append-only checkpoints: one row per page, the newest per (integration, connection, sync) wins.
POSITIONS_DDL = """
CREATE TABLE IF NOT EXISTS _screensync.spike_positions (
    integration VARCHAR, connection_id VARCHAR, sync VARCHAR, attempt_id VARCHAR,
    checkpoint JSON, cursor JSON, written_at TIMESTAMPTZ
);
"""
LATEST_POSITION = """
SELECT connection_id, checkpoint FROM _screensync.spike_positions
QUALIFY row_number() OVER (PARTITION BY integration, connection_id, sync
                           ORDER BY snapshot_id DESC NULLS FIRST, rowid DESC) = 1
"""


def append_position(con: duckdb.DuckDBPyConnection, connection_id: str, attempt_id: str, checkpoint: dict[str, Any]) -> None:
    con.execute(
        "INSERT INTO _screensync.spike_positions VALUES (?, ?, ?, ?, ?, NULL, current_timestamp)",
        [INTEGRATION, connection_id, SYNC, attempt_id, orjson.dumps(checkpoint).decode()],
    )


def page_transaction(
    con: duckdb.DuckDBPyConnection,
    table: pa.Table,
    *,
    connection_id: str,
    run_id: str,
    attempt_id: str,
    checkpoint: dict[str, Any],
    append_only_state: bool,
    rejects: list[RejectedRecord] | None = None,
) -> WriteCounts:
    """One page, one transaction: rejects, records (+ superseded versions, seen keys), checkpoint.

    With `append_only_state` the checkpoint is a row of the spike's own `spike_positions` table;
    without, it is `save_position` (appended to `sync_positions` since issue 15)."""
    con.execute("BEGIN TRANSACTION")
    try:
        if rejects:
            st.insert_rejects(con, rejects, run_id=run_id, integration=INTEGRATION, connection_id=connection_id,
                              sync=SYNC)
            owed.owe(con, rejects, integration=INTEGRATION, connection_id=connection_id, sync=SYNC, run_id=run_id)
        # feed=False: the change feed's cursors count on from the last one, which concurrent DuckLake
        # committers would both give out (docs/analysts.md, "Change feed"); this measures the upsert alone
        counts = upsert_stage(con, CHECKS, columns(), table, connection_id=connection_id, run_id=run_id,
                              seen_attempt=attempt_id, feed=False)
        if append_only_state:
            append_position(con, connection_id, attempt_id, checkpoint)
        else:
            st.save_position(con, INTEGRATION, connection_id, SYNC, checkpoint=checkpoint, cursor=None,
                             attempt_id=attempt_id)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")  # a failed COMMIT has already ended the transaction: no ROLLBACK after it
    return counts


def is_conflict(exc: BaseException) -> bool:
    """A DuckLake commit that did not happen because of another writer: retry the whole transaction."""
    text = str(exc)
    return isinstance(exc, duckdb.TransactionException) and (CONFLICT in text or RETRIES_EXHAUSTED in text)


def with_retry(attempt: Any, *, max_attempts: int = 60, base_delay: float = 0.02) -> tuple[Any, int, list[str]]:
    """Run `attempt()` until it commits; retries only transaction conflicts, with jittered backoff.
    Returns (its result, conflicts met, their messages' last lines)."""
    conflicts: list[str] = []
    for n in range(max_attempts):
        try:
            return attempt(), len(conflicts), conflicts
        except duckdb.Error as exc:
            if not is_conflict(exc):
                raise
            conflicts.append(str(exc).splitlines()[1] if "\n" in str(exc) else str(exc))
            time.sleep(random.uniform(0, base_delay * 2 ** min(n, 5)))
    raise RuntimeError(f"no commit after {max_attempts} attempts: {conflicts[-1] if conflicts else ''}")


def _wait(barrier: Any) -> None:
    if barrier is not None:
        barrier.wait(timeout=120)


def first_load_worker(url: str, connection_id: str, pages: int, rows: int, barrier: Any, results: Any) -> None:
    """New records page after page (the upsert's INSERT-only path) + an appended checkpoint, no retry:
    appends never conflict, so every commit must succeed."""
    con = ducklake.connect(url)
    errors: list[str] = []
    latencies: list[float] = []
    _wait(barrier)
    for p in range(pages):
        table = stage(range(p * rows, (p + 1) * rows), version=0)
        started = time.perf_counter()
        try:
            page_transaction(con, table, connection_id=connection_id, run_id="run", attempt_id=f"att-{connection_id}",
                             checkpoint={"page": p}, append_only_state=True)
        except duckdb.Error as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        latencies.append(time.perf_counter() - started)
    con.close()
    results.put({"connection_id": connection_id, "errors": errors, "latencies": latencies})


def resync_worker(
    url: str, connection_id: str, pages: int, rows: int, append_only_state: bool, barrier: Any, results: Any
) -> None:
    """The same records changed on every page (the upsert's UPDATE path), checkpoint UPDATEd or
    appended, each page retried whole on a transaction conflict."""
    con = ducklake.connect(url)
    conflicts: list[str] = []
    attempts: list[int] = []
    latencies: list[float] = []
    _wait(barrier)
    for p in range(pages):
        table = stage(range(rows), version=p + 1)
        started = time.perf_counter()

        def attempt(table: pa.Table = table, p: int = p) -> WriteCounts:
            return page_transaction(con, table, connection_id=connection_id, run_id=f"run-{p}",
                                    attempt_id=f"att-{connection_id}", checkpoint={"page": p},
                                    append_only_state=append_only_state)

        _counts, met, messages = with_retry(attempt)
        latencies.append(time.perf_counter() - started)
        attempts.append(met + 1)
        conflicts += messages
    con.close()
    results.put({"connection_id": connection_id, "conflicts": conflicts, "attempts": attempts, "latencies": latencies})


def append_only_worker(url: str, connection_id: str, pages: int, rows: int, barrier: Any, results: Any) -> None:
    """The re-sync of `resync_worker` written as appended versions: no retry, every commit must succeed."""
    con = ducklake.connect(url)
    errors: list[str] = []
    latencies: list[float] = []
    _wait(barrier)
    for p in range(pages):
        table = stage(range(rows), version=p + 1)
        started = time.perf_counter()
        try:
            append_only_page(con, table, connection_id=connection_id, run_id=f"run-{p}",
                             attempt_id=f"att-{connection_id}", checkpoint={"page": p})
        except duckdb.Error as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        latencies.append(time.perf_counter() - started)
    con.close()
    results.put({"connection_id": connection_id, "errors": errors, "latencies": latencies})


def seed(con: duckdb.DuckDBPyConnection, connection_ids: list[str], rows: int) -> None:
    """Version 0 of `rows` records and a sync_state row for each connection (before the writers start)."""
    for cid in connection_ids:
        page_transaction(con, stage(range(rows), version=0), connection_id=cid, run_id="seed", attempt_id=f"att-{cid}",
                         checkpoint={"page": -1}, append_only_state=False)
        append_only_page(con, stage(range(rows), version=0), connection_id=cid, run_id="seed",
                         attempt_id=f"att-{cid}", checkpoint={"page": -1})
