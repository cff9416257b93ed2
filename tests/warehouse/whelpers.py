"""Warehouse test helpers: a tiny report model and page builders."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

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
