"""The `_screensync` meta schema: sync runs, cursors/checkpoints, rejected records, seen keys.

Checkpoints live in the same warehouse as the records so that one transaction can move
both; a separate state store could never be kept in step after a crash.

Positions and run rows are appended, never updated: each change of a (integration, connection, sync)'s cursor,
checkpoint or attempt adds a row to `sync_positions` with the next `seq` of that key, and the view
`sync_state` is the newest row per key. On a DuckLake an UPDATE of a table conflicts with every
concurrent writer of that table, so an updated state row made every page of every connection
conflict with every other's; appended rows do not conflict (docs/warehouse.md). One run at a time
writes a key (the sync lock), so `max(seq) + 1` read in the run's transaction is the order of its
writes. The end of an attempt drops the key's older rows. Likewise a run's rows are appended to
`sync_run_events` (today one, when it ends), and the view `sync_runs` shows the newest per run.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import duckdb
import orjson
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from warehouse.records import RejectedRecord
from warehouse.retry import rollback_quietly
from warehouse.sql import lit

META_DDL = """
CREATE SCHEMA IF NOT EXISTS _screensync;
-- a run's rows (one, when it ends; `seq` orders a run's rows); the view `sync_runs` shows the newest
CREATE TABLE IF NOT EXISTS _screensync.sync_run_events (
    run_id VARCHAR, integration VARCHAR, connection_id VARCHAR, sync VARCHAR, model VARCHAR, mode VARCHAR,
    status VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
    added BIGINT, updated BIGINT, deleted BIGINT, unchanged BIGINT, rejected BIGINT,
    requests BIGINT, retries BIGINT, duration_s DOUBLE, error VARCHAR, seq BIGINT
);
-- failures: consecutive failures of the saved position, failure: how it failed (see note_failure);
-- attempt_from: provider time of the attempt's first list page (what it did not list had vanished by then)
CREATE TABLE IF NOT EXISTS _screensync.sync_positions (
    integration VARCHAR, connection_id VARCHAR, sync VARCHAR,
    cursor JSON, checkpoint JSON, attempt_id VARCHAR, updated_at TIMESTAMPTZ,
    failures INTEGER, failure VARCHAR, attempt_from TIMESTAMPTZ, seq BIGINT
);
-- per table: the start (provider time) of the last complete read of its whole list (listed_since.py)
CREATE TABLE IF NOT EXISTS _screensync.list_reads (
    integration VARCHAR, connection_id VARCHAR, "schema" VARCHAR, "table" VARCHAR,
    listed_from TIMESTAMPTZ, completed_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS _screensync.rejected_records (
    run_id VARCHAR, integration VARCHAR, connection_id VARCHAR, sync VARCHAR, model VARCHAR,
    record_id VARCHAR, error VARCHAR, raw JSON, rejected_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS _screensync.seen_keys (
    attempt_id VARCHAR, "schema" VARCHAR, "table" VARCHAR, connection_id VARCHAR, id VARCHAR
);
"""

STATE_COLUMNS = ("cursor", "checkpoint", "attempt_id", "updated_at", "failures", "failure", "attempt_from")
_KEY = ("integration", "connection_id", "sync")
STATE_VIEW = f"""CREATE OR REPLACE VIEW _screensync.sync_state AS
SELECT {", ".join((*_KEY, *STATE_COLUMNS))} FROM _screensync.sync_positions
QUALIFY row_number() OVER (PARTITION BY {", ".join(_KEY)} ORDER BY seq DESC) = 1"""
# a warehouse from before positions were appended: its sync_state table, completed, becomes the first rows
_OLD_STATE_COLUMNS = (
    "ALTER TABLE _screensync.sync_state ADD COLUMN IF NOT EXISTS failures INTEGER DEFAULT 0",
    "ALTER TABLE _screensync.sync_state ADD COLUMN IF NOT EXISTS failure VARCHAR",
    "ALTER TABLE _screensync.sync_state ADD COLUMN IF NOT EXISTS attempt_from TIMESTAMPTZ",
)


def prepare_logs(con: duckdb.DuckDBPyConnection) -> None:
    """After META_DDL: the `sync_state` and `sync_runs` views over their appended rows (moving an
    older warehouse's tables of those names into them first). Caller owns the transaction."""
    cols = ", ".join((*_KEY, *STATE_COLUMNS))
    if _into_log(con, "sync_state", "sync_positions", cols, _OLD_STATE_COLUMNS):
        con.execute(STATE_VIEW)
    cols = ", ".join(RUN_COLUMNS)
    if _into_log(con, "sync_runs", "sync_run_events", cols):
        con.execute(f"""CREATE OR REPLACE VIEW _screensync.sync_runs AS
            SELECT {cols} FROM _screensync.sync_run_events
            QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY seq DESC) = 1""")


def _into_log(con: duckdb.DuckDBPyConnection, old: str, log: str, cols: str, alters: tuple[str, ...] = ()) -> bool:
    """Move the rows of an older warehouse's table `old` into `log` and drop it; True when the view
    named `old` is to be created (there is no such view yet)."""
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = '_screensync' AND table_name = ?", [old]
    ).fetchone()
    if kind and kind[0] == "BASE TABLE":
        for alter in alters:
            con.execute(alter)
        con.execute(f"INSERT INTO _screensync.{log} ({cols}, seq) SELECT {cols}, 1 FROM _screensync.{old}")
        con.execute(f"DROP TABLE _screensync.{old}")
        return True
    return not kind


class RunStatus(StrEnum):
    """How a run ended: the engine's results, the flows, the CLI and `_screensync.sync_runs` share it."""

    SUCCESS = "success"
    PARTIAL = "partial"  # finished, but records were quarantined or are still owed (`screensync rejects`)
    FAILED = "failed"  # stopped by an error; the checkpoint is kept and the next run resumes
    INTERRUPTED = "interrupted"  # stopped part-way (warehouse held, operator); the next run resumes
    RUNNING = "running"  # a row of a run still in progress


FINISHED = frozenset({RunStatus.SUCCESS, RunStatus.PARTIAL})  # what landed is all that could land


class SyncState(BaseModel):
    integration: str
    connection_id: str
    sync: str
    cursor: Any = None
    checkpoint: dict[str, Any] | None = None
    attempt_id: str | None = None
    updated_at: datetime | None = None
    failures: int = 0  # consecutive runs that failed the same way from this checkpoint
    failure: str | None = None


class RunRecord(BaseModel):
    """One row of `_screensync.sync_runs` (appended when the run ends; a run's newest row shows)."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    integration: str
    connection_id: str
    sync: str
    model: str
    mode: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None = None
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    rejected: int = 0
    requests: int = 0
    retries: int = 0
    duration_s: float | None = None
    error: str | None = None

    @classmethod
    def from_result(cls, result: Any) -> RunRecord:
        """Build from the engine's SyncResult (any object or dict with the same field names)."""
        data = (
            result.model_dump()
            if isinstance(result, BaseModel)
            else dict(result)
            if isinstance(result, dict)
            else vars(result)
        )
        status = data.get("status")
        data["status"] = getattr(status, "value", status)
        return cls.model_validate(data)


RUN_COLUMNS = tuple(RunRecord.model_fields)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def get_state(con: duckdb.DuckDBPyConnection, integration: str, connection_id: str, sync: str) -> SyncState | None:
    row = con.execute(
        # the key's newest position, not the `sync_state` view: that numbers every key's rows first
        "SELECT cursor, checkpoint, attempt_id, updated_at, failures, failure FROM _screensync.sync_positions "
        "WHERE integration = ? AND connection_id = ? AND sync = ? ORDER BY seq DESC LIMIT 1",
        [integration, connection_id, sync],
    ).fetchone()
    if row is None:
        return None
    cursor, checkpoint, attempt_id, updated_at, failures, failure = row
    return SyncState(
        integration=integration,
        connection_id=connection_id,
        sync=sync,
        cursor=orjson.loads(cursor) if cursor is not None else None,
        checkpoint=orjson.loads(checkpoint) if checkpoint is not None else None,
        attempt_id=attempt_id,
        updated_at=updated_at,
        failures=failures or 0,
        failure=failure,
    )


def _key_filter(integration: str, connection_id: str, sync: str) -> str:
    return f"integration = {lit(integration)} AND connection_id = {lit(connection_id)} AND sync = {lit(sync)}"


# sync key -> its newest position (STATE_COLUMNS and seq; {} for a key known to have none): `_append`'s `newest`
Newest = dict[tuple[str, str, str], dict[str, Any]]
_TYPES = {"cursor": "JSON", "checkpoint": "JSON", "attempt_id": "VARCHAR", "updated_at": "TIMESTAMPTZ",
          "failures": "INTEGER", "failure": "VARCHAR", "attempt_from": "TIMESTAMPTZ", "seq": "BIGINT"}


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


KEEP = _Marker("KEEP")  # a column of a new position: as in the newest one (`p`)
NOW = _Marker("NOW")  # the time it is written


@dataclass(frozen=True)
class IfUnset:
    """A column of a new position: `p`'s value, or this one where `p` has none."""

    value: Any


def _literal(value: Any, column: str) -> str:
    if value is None:
        return "NULL"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return f"CAST({lit(text)} AS {_TYPES[column]})"


def _over_p(value: Any, column: str) -> str:
    """A new position's column as SQL over the newest row `p` (read in the same statement)."""
    if value is KEEP:
        return "coalesce(p.failures, 0)" if column == "failures" else f"p.{column}"
    if value is NOW:
        return "current_timestamp"
    if isinstance(value, IfUnset):
        return f"coalesce(p.{column}, {_literal(value.value, column)})"
    return _literal(value, column)


def _from_p(value: Any, column: str, p: dict[str, Any]) -> Any:
    """The same, computed from a known newest row."""
    if value is KEEP:
        return p.get(column) or 0 if column == "failures" else p.get(column)
    if value is NOW:
        return datetime.now(UTC)
    if isinstance(value, IfUnset):
        return value.value if p.get(column) is None else p[column]
    return value


def _append(con: duckdb.DuckDBPyConnection, integration: str, connection_id: str, sync: str,
            sets: dict[str, Any], newest: Newest | None = None) -> None:
    """Append the key's next position: the newest one (`p`) with `sets` applied (column -> a value,
    KEEP, NOW or IfUnset; JSON columns as JSON text), `updated_at` now. Caller owns the transaction.

    `newest`: what this process wrote last per key, where nobody else can have written since (the
    embedded file held by this process; the warehouse forgets it after any failed write): the new
    position is computed from it and inserted as plain values, instead of from `p` read back in
    the statement (3.5-4.5 ms a position under load against ~1.5 ms), and noted there."""
    key = (integration, connection_id, sync)
    sets = {"updated_at": NOW, **sets}
    known = newest.get(key) if newest is not None else None
    columns = ", ".join((*_KEY, *STATE_COLUMNS))
    if newest is not None and known is not None:
        row = {c: _from_p(sets.get(c, KEEP), c, known) for c in STATE_COLUMNS}
        row["seq"] = (known.get("seq") or 0) + 1
        values = ", ".join(_literal(v, c) for c, v in row.items())
        con.execute(f"""INSERT INTO _screensync.sync_positions ({columns}, seq)
            VALUES ({lit(integration)}, {lit(connection_id)}, {lit(sync)}, {values})""")
        newest[key] = row
        return
    values = ", ".join(_over_p(sets.get(c, KEEP), c) for c in STATE_COLUMNS)
    source = f"SELECT * FROM _screensync.sync_positions WHERE {_key_filter(*key)} ORDER BY seq DESC LIMIT 1"
    returned = con.execute(
        f"""INSERT INTO _screensync.sync_positions ({columns}, seq)
        SELECT {lit(integration)}, {lit(connection_id)}, {lit(sync)}, {values}, coalesce(p.seq, 0) + 1
        FROM (SELECT 1) AS one LEFT JOIN ({source}) AS p ON true
        {"" if newest is None else f"RETURNING {', '.join((*STATE_COLUMNS, 'seq'))}"}"""  # (a lake has no RETURNING)
    ).fetchone()
    if newest is not None and returned is not None:
        newest[key] = dict(zip((*STATE_COLUMNS, "seq"), returned, strict=True))


def save_position(
    con: duckdb.DuckDBPyConnection,
    integration: str,
    connection_id: str,
    sync: str,
    *,
    checkpoint: dict[str, Any] | None,
    cursor: Any,
    attempt_id: str,
    list_from: datetime | None = None,
    newest: Newest | None = None,
) -> None:
    """Store the checkpoint and/or cursor (None leaves each as it is), and the attempt's first list
    page time once. Caller owns the transaction. `newest`: see `_append`."""
    if checkpoint is None and cursor is None and list_from is None:
        return
    sets: dict[str, Any] = {"attempt_id": attempt_id}
    if list_from is not None:
        sets["attempt_from"] = IfUnset(list_from)
    if checkpoint is not None:
        sets["checkpoint"] = _dumps(checkpoint)
    if cursor is not None:
        sets["cursor"] = _dumps(cursor)
    _append(con, integration, connection_id, sync, sets, newest)


@dataclass(frozen=True)
class Begun:
    """A fresh attempt whose position row is not written yet (`Warehouse.begin_attempt(defer=True)`)."""

    key: tuple[str, str, str]
    attempt_id: str
    abandoned: str | None  # the attempt it replaces, whose seen keys go
    first: bool  # the key had no position at all (so none is read back to append this one)


def start_attempt(state: SyncState | None, integration: str, connection_id: str, sync: str, *,
                  fresh: bool = False) -> tuple[SyncState, Begun | None]:
    """Resume the attempt that left a checkpoint (nothing to write), or start a fresh one: its state,
    and what `write_begun` appends for it. `fresh` discards a stored checkpoint (a full refresh, or
    a position that keeps failing)."""
    if state is not None and state.checkpoint and state.attempt_id and not fresh:
        return state, None
    begun = Begun((integration, connection_id, sync), uuid.uuid4().hex, state.attempt_id if state else None,
                  first=state is None)
    # what write_begun appends: the cursor carried over, the rest as set there
    return SyncState(integration=integration, connection_id=connection_id, sync=sync,
                     cursor=state.cursor if state is not None else None, attempt_id=begun.attempt_id,
                     updated_at=datetime.now(UTC)), begun


def write_begun(con: duckdb.DuckDBPyConnection, begun: Begun, newest: Newest | None = None) -> None:
    """Append a fresh attempt's position (no checkpoint, no failures) and drop the seen keys of the
    attempt it replaces. Caller owns the transaction. `newest`: see `_append`."""
    if begun.first and newest is not None:  # under the key's sync lock nobody else has written it since
        newest.setdefault(begun.key, {})
    if begun.abandoned:
        con.execute("DELETE FROM _screensync.seen_keys WHERE attempt_id = ?", [begun.abandoned])
    _append(con, *begun.key, {
        "attempt_id": begun.attempt_id, "checkpoint": None, "failures": 0, "failure": None, "attempt_from": None},
        newest)


class Unread:
    """`begin_attempt(stored=UNREAD)`: the caller has not read the state; read it in the session."""


UNREAD = Unread()


def begin_attempt(
    con: duckdb.DuckDBPyConnection, integration: str, connection_id: str, sync: str, *, fresh: bool = False,
    newest: Newest | None = None, stored: SyncState | Unread | None = UNREAD,
) -> SyncState:
    """`start_attempt` and, for a fresh attempt, `write_begun` in a transaction of its own.

    `stored`: the state as the caller just read it under the key's sync lock (nobody else writes
    the key's positions), so it is not read again (a statement a run)."""
    state = get_state(con, integration, connection_id, sync) if isinstance(stored, Unread) else stored
    started, begun = start_attempt(state, integration, connection_id, sync, fresh=fresh)
    if begun is None:
        return started
    con.execute("BEGIN TRANSACTION")
    try:
        write_begun(con, begun, newest)
        con.execute("COMMIT")
    except BaseException:
        rollback_quietly(con)  # a COMMIT that conflicted (DuckLake) has already ended the transaction
        raise
    return started


def finish_attempt(
    con: duckdb.DuckDBPyConnection, integration: str, connection_id: str, sync: str, attempt_id: str,
    newest: Newest | None = None,
) -> None:
    """Clear the checkpoint, forget the attempt's seen keys and the key's older positions. Caller owns
    the transaction."""
    _append(con, integration, connection_id, sync, {
        "checkpoint": None, "attempt_id": None, "failures": 0, "failure": None, "attempt_from": None}, newest)
    known = newest.get((integration, connection_id, sync)) if newest is not None else None
    prune_positions(con, integration, connection_id, sync, below=known.get("seq") if known else None)
    con.execute("DELETE FROM _screensync.seen_keys WHERE attempt_id = ?", [attempt_id])


def prune_positions(con: duckdb.DuckDBPyConnection, integration: str, connection_id: str, sync: str, *,
                    below: int | None = None) -> None:
    """Drop the key's positions but the newest (the state is the newest; older ones only take room).
    `below`: the newest's seq, when known (not looked up)."""
    where = _key_filter(integration, connection_id, sync)
    newest = str(int(below)) if below is not None else f"(SELECT max(seq) FROM _screensync.sync_positions WHERE {where})"
    con.execute(f"DELETE FROM _screensync.sync_positions WHERE {where} AND seq < {newest}")


def note_failure(con: duckdb.DuckDBPyConnection, integration: str, connection_id: str, sync: str, how: str,
                 newest: Newest | None = None) -> int:
    """Count a failed run against the stored checkpoint; returns how many runs in a row failed
    `how` from this same checkpoint (a different checkpoint or another error starts again at 1)."""
    state = get_state(con, integration, connection_id, sync)
    position = orjson.dumps(state.checkpoint if state else None, option=orjson.OPT_SORT_KEYS)
    signature = hashlib.blake2b(position + b"\x1f" + how.encode(), digest_size=12).hexdigest()
    failures = (state.failures if state and state.failure == signature else 0) + 1
    con.execute("BEGIN TRANSACTION")
    try:
        _append(con, integration, connection_id, sync, {"failures": failures, "failure": signature,
                                                        "updated_at": KEEP}, newest)
        con.execute("COMMIT")
    except BaseException:
        rollback_quietly(con)  # a COMMIT that conflicted (DuckLake) has already ended the transaction
        raise
    return failures


def insert_rejects(
    con: duckdb.DuckDBPyConnection,
    rejects: Sequence[RejectedRecord],
    *,
    run_id: str,
    integration: str,
    connection_id: str,
    sync: str,
) -> None:
    """Bulk-insert rejected records (raw kept as JSON when it parses, else as a JSON string).

    The raw goes in as Arrow JSON, so DuckDB stores it without parsing it again: a quarantined
    record of several MB must not need several times that of the writer's memory."""
    if not rejects:
        return
    raws = [r.raw if _is_json(r.raw) else _dumps(str(r.raw)) for r in rejects]
    n = len(rejects)
    tbl = pa.table(
        {
            "run_id": [run_id] * n,
            "integration": [integration] * n,
            "connection_id": [connection_id] * n,
            "sync": [sync] * n,
            "model": [r.model for r in rejects],
            "record_id": pa.array([r.record_id for r in rejects], type=pa.string()),
            "error": [r.error for r in rejects],
            "raw": pa.array(raws, type=pa.json_()),
        }
    )
    con.register("_screensync_rejects", tbl)
    try:
        con.execute(
            "INSERT INTO _screensync.rejected_records BY NAME "
            "SELECT *, current_timestamp AS rejected_at FROM _screensync_rejects"
        )
    finally:
        con.unregister("_screensync_rejects")


def _is_json(text: Any) -> bool:
    """orjson's parser, or Python's for what orjson refuses but JSON allows (lone surrogate escapes)."""
    try:
        orjson.loads(text)
        return True
    except (orjson.JSONDecodeError, TypeError):
        pass
    try:
        json.loads(text, parse_constant=_refuse)
        return True
    except (ValueError, TypeError):
        return False


def _refuse(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def record_run(con: duckdb.DuckDBPyConnection, run: RunRecord) -> None:
    """Append the run's newest row (one statement: its own transaction unless the caller's is open).

    Its `seq` is the transaction's time in microseconds: a later row of the same run comes from a
    later transaction, and no read of the run's earlier rows is needed (a scan of every run's id,
    ~5 ms a run as the log grows); rows from before (seq 1, 2, ...) stay older than any of these."""
    values = {**run.model_dump(), "status": run.status.value}
    placeholders = ", ".join(f"${c}" for c in RUN_COLUMNS)
    con.execute(
        f"""INSERT INTO _screensync.sync_run_events ({', '.join(RUN_COLUMNS)}, seq)
        SELECT {placeholders}, epoch_us(current_timestamp)""",
        values,
    )
