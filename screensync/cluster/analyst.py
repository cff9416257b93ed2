"""An analyst who keeps querying the warehouse while the syncs run: `python -m screensync.cluster.analyst`.

Each query goes through `screensync query`'s own path (warehouse/query.py), and each outcome is one
JSON line in `--out`: `answered` (with the rows), `not yet` (no warehouse or table before the first
sync created it) or `failed` (anything else, e.g. waiting too long for a writer). The harness reads
the file back with `read_outcomes`.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

NOT_YET_MARKERS = ("does not exist", "Catalog Error")


class AnalystFigures(BaseModel):
    answered: int = 0
    not_yet: int = 0
    failed: int = 0
    p50_s: float | None = None
    max_s: float | None = None
    max_open_s: float | None = None  # the longest wait for a connection (a writer letting go included)
    over_1s: int = 0  # answers that took longer than the target's second
    first_failure: str | None = None


def default_sql(integrations: list[str]) -> str:
    """What the analyst asks: rows per connection of one model table per integration."""
    table = {"clearchecks": "clearchecks.reports", "checkr": "checkr.reports"}
    parts = [f"SELECT '{i}' AS integration, count(*) AS n FROM {table[i]}" for i in integrations if i in table]
    return " UNION ALL ".join(parts)


def ask(warehouse: str, sql: str, timeout: float) -> dict[str, Any]:
    from warehouse.connection import WarehouseError
    from warehouse.query import run_query

    started = time.monotonic()
    timings: dict[str, float] = {}
    try:
        _, rows = run_query(warehouse, sql, limit=100, timeout=timeout, timings=timings)
        outcome, detail = "answered", json.dumps(rows, default=str)
    except WarehouseError as exc:
        text = str(exc)
        outcome = "not yet" if any(m in text for m in NOT_YET_MARKERS) else "failed"
        detail = text.splitlines()[0][:300]
    return {"at": time.time(), "outcome": outcome, "seconds": time.monotonic() - started,
            "open_s": timings.get("open_s"), "detail": detail}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--sql", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between queries")
    parser.add_argument("--timeout", type=float, default=10.0, help="longest wait for a writer")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with args.out.open("a") as out:
        while not stop.is_set():
            out.write(json.dumps(ask(args.warehouse, args.sql, args.timeout)) + "\n")
            out.flush()
            stop.wait(args.every)


def read_outcomes(path: Path) -> AnalystFigures:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    answered = [r["seconds"] for r in lines if r["outcome"] == "answered"]
    failed = [r for r in lines if r["outcome"] == "failed"]
    return AnalystFigures(
        answered=len(answered),
        not_yet=sum(1 for r in lines if r["outcome"] == "not yet"),
        failed=len(failed),
        p50_s=statistics.median(answered) if answered else None,
        max_s=max(answered) if answered else None,
        over_1s=sum(1 for s in answered if s > 1.0),
        max_open_s=max((r["open_s"] for r in lines if r.get("open_s") is not None), default=None),
        first_failure=failed[0]["detail"] if failed else None,
    )


if __name__ == "__main__":
    main()
