"""Warehouse test helpers: a tiny report model and page builders."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import orjson
from pydantic import BaseModel

from warehouse.loader import PageWrite, RecordBatch, TableTarget


class Report(BaseModel):
    id: str
    candidate_id: str
    status: Literal["pending", "complete"]
    result: str | None = None
    created_at: datetime
    tags: list[str] = []
    meta: dict[str, Any] | None = None


REPORTS = TableTarget("checkr", "reports", Report)


def rec(rid: str, status: str = "pending", **extra: Any) -> dict[str, Any]:
    return {"id": rid, "candidate_id": f"c-{rid}", "status": status, "created_at": "2024-05-01T10:00:00+00:00", **extra}


def batch(
    records: list[dict[str, Any]],
    model: type[BaseModel] = Report,
    target: TableTarget = REPORTS,
    track_seen: bool = False,
) -> RecordBatch:
    raws = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS).decode() for r in records]
    rows = [model.model_validate(r).model_dump() for r in records]
    return RecordBatch(target, rows, raws, track_seen=track_seen)


def page(
    batches: list[RecordBatch],
    *,
    attempt: str = "a1",
    run: str | None = None,
    conn: str = "conn-1",
    checkpoint: dict[str, Any] | None = None,
    cursor: Any = None,
    rejects: list[Any] | None = None,
) -> PageWrite:
    return PageWrite(
        "checkr", conn, "reports", run or uuid.uuid4().hex, attempt, batches, rejects or [], checkpoint, cursor
    )


def file_of_small_row_groups(path: Path, groups: int, rows: int) -> None:
    """`big.records`: `groups` row groups of `rows` ~10 KB rows each, as writes leave them for a vacuum."""
    con = duckdb.connect(config={"memory_limit": "64MB", "threads": "1"})
    con.execute("SET max_vacuum_tasks = 0")
    con.execute(f"ATTACH '{path}' AS w (ROW_GROUP_SIZE 8192)")
    con.execute("CREATE SCHEMA w.big")
    con.execute("CREATE TABLE w.big.records (id VARCHAR, raw VARCHAR)")
    for g in range(groups):
        con.execute(f"""INSERT INTO w.big.records SELECT 'r{g}-' || range,
                        repeat(md5((range * {g + 7})::VARCHAR), 300) FROM range({rows})""")
        con.execute("CHECKPOINT w")  # each checkpoint leaves the rows since the last in a row group of their own
    con.close()


def row_groups(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        (count,) = con.execute("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('big.records')").fetchone()
    return int(count)
