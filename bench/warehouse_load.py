"""Warehouse load speed: 100k synthetic records in pages of 100, then an unchanged re-run.

Run: .venv/bin/python bench/warehouse_load.py [records] [page_size] [--let-go] [--wide]

`--wide`: records shaped more like Checkr's (30 more text columns, a raw record of ~2 KB).
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, create_model

from warehouse.loader import PageWrite, RecordBatch, TableTarget, Warehouse, WriteCounts


class BenchReport(BaseModel):
    id: str
    candidate_id: str
    package: str | None = None
    status: Literal["pending", "complete"]
    result: str | None = None
    created_at: datetime
    completed_at: datetime | None = None
    turnaround_time: int | None = None
    geo_ids: list[str] = []
    metadata: dict[str, Any] | None = None


WIDE_FIELDS = [f"detail_{k:02d}" for k in range(30)]
WideReport = create_model("WideReport", __base__=BenchReport,
                          **{f: (str | None, None) for f in WIDE_FIELDS})  # type: ignore[call-overload]


def make_page(start: int, size: int, status: str, wide: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    raws, rows = [], []
    for i in range(start, start + size):
        rec = {
            "id": f"r{i:07d}",
            "candidate_id": f"c{i // 3:07d}",
            "package": "driver_pro",
            "status": status,
            "result": "clear" if status == "complete" else None,
            "created_at": (base + timedelta(minutes=i)).isoformat(),
            "completed_at": (base + timedelta(minutes=i, hours=30)).isoformat() if status == "complete" else None,
            "turnaround_time": 3600 * 30 if status == "complete" else None,
            "geo_ids": ["g1", "g2"],
            "metadata": {"n": i},
        }
        if wide:
            rec.update({f: f"{f} {status} {i % 997} " + "x" * 48 for f in WIDE_FIELDS})
        raws.append(orjson.dumps(rec, option=orjson.OPT_SORT_KEYS).decode())
        rows.append((WideReport if wide else BenchReport).model_validate(rec).model_dump())
    return rows, raws


def load(wh: Warehouse, target: TableTarget, n: int, page: int, status: str) -> tuple[WriteCounts, float, float]:
    """Returns counts, seconds spent in the warehouse, and total seconds (incl. building pages)."""
    attempt = wh.begin_attempt("bench", "conn-1", "reports").attempt_id or ""
    run_id = uuid.uuid4().hex
    total, in_wh = WriteCounts(), 0.0
    t0 = time.perf_counter()
    for start in range(0, n, page):
        rows, raws = make_page(start, min(page, n - start), status, wide=target.model is WideReport)
        last = start + page >= n
        w0 = time.perf_counter()
        total = total + wh.write_page(
            PageWrite(
                "bench",
                "conn-1",
                "reports",
                run_id,
                attempt,
                [RecordBatch(target, rows, raws, track_seen=True)],
                [],
                None if last else {"page": start + page},
            )
        )
        in_wh += time.perf_counter() - w0
    w0 = time.perf_counter()
    wh.complete_attempt("bench", "conn-1", "reports", attempt, deletes=[target], run_id=run_id)
    in_wh += time.perf_counter() - w0
    return total, in_wh, time.perf_counter() - t0


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if len(args) > 0 else 100_000
    page = int(args[1]) if len(args) > 1 else 100
    target = TableTarget("bench", "reports", WideReport if "--wide" in sys.argv else BenchReport)
    for held in (True, False) if "--let-go" in sys.argv else (True,):
        print("held between writes (a sync):" if held else "letting go after every write:")
        with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "warehouse.duckdb") as wh:
            wh.ensure_tables([target])
            for label, status in (
                ("initial load", "pending"),
                ("unchanged re-run", "pending"),
                ("all updated", "complete"),
            ):
                with wh.holding() if held else nullcontext():
                    counts, in_wh, total = load(wh, target, n, page, status)
                print(
                    f"{label:>17}: {n} records in pages of {page}: warehouse {in_wh:.2f}s "
                    f"({n / in_wh:,.0f} records/s), with page building {total:.2f}s  {counts}"
                )


if __name__ == "__main__":
    main()
