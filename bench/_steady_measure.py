"""What bench/steady_state.py measures in each scenario: how late report changes reached the
warehouse, and whether a change-feed consumer saw every change once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any


def parse_time(text: str) -> datetime:
    """A sandbox time ('2026-06-01T12:00:00Z', '2026-06-01 12:00:00') as UTC."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _figures(lags: list[float], unseen: int) -> dict[str, Any]:
    if not lags:
        return {"n": 0, "unseen": unseen}
    lags = sorted(lags)
    pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]  # noqa: E731
    return {"n": len(lags), "p50_s": round(pick(0.5)), "p99_s": round(pick(0.99)), "max_s": round(lags[-1]),
            "unseen": unseen}


def lags(db: Path, spec: dict[str, Any], truth: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
    """Per report that finished at the provider within (start, end]: finish time (the provider's field)
    to the first version in the warehouse with that final state (this process's clock followed the
    sandbox's, so both are sandbox time). Not landed by the end: counted `unseen`, lag up to the end.
    `late`: reports we held open before they finished whose first stored estimate had passed by then
    (the issue's "reports past their estimated completion"). `found_done`: reports whose first stored
    version was already final, i.e. found after they finished (on an old candidate, say, which only
    the daily sweep or a webhook brings): how late is then discovery, not refresh."""
    from warehouse.read import query

    done = ", ".join(f"'{s}'" for s in spec["done"])
    estimate = f"arg_min({spec['estimate']}, _valid_from)" if spec.get("estimate") else "NULL"
    landed = {rid: (at, est, seen_open) for rid, at, est, seen_open in query(
        f"""SELECT CAST(id AS VARCHAR), min(_valid_from) FILTER (WHERE {spec['state']} IN ({done})), {estimate},
                   bool_or({spec['state']} IS NULL OR {spec['state']} NOT IN ({done}))
        FROM {spec['table']}_history WHERE _change <> 'late' GROUP BY 1""", path=db)}
    every: list[float] = []
    late: list[float] = []
    found: list[float] = []
    unseen = late_unseen = 0
    for rec in truth["reports"]:
        finished = rec.get(spec["done_at"])
        if not finished or str(rec.get(spec.get("truth_state", spec["state"]))) not in spec["done"]:
            continue
        at = parse_time(finished)
        if not start < at <= end:
            continue
        stored_at, first_estimate, seen_open = landed.get(str(rec[spec["truth_id"]]), (None, None, False))
        lag = ((stored_at or end) - at).total_seconds()
        is_late = bool(seen_open) and first_estimate is not None and at > parse_time(str(first_estimate))
        if stored_at is None:
            unseen += 1
            late_unseen += is_late
        every.append(lag)
        if is_late:
            late.append(lag)
        if stored_at is not None and not seen_open:
            found.append(lag)
    return {"all": _figures(every, unseen), "late": _figures(late, late_unseen), "found_done": _figures(found, 0)}


class FeedConsumer:
    """A consumer of the change feed reading all along, as downstream systems would: it asks for what
    came after the last cursor it handled, in a fresh read session each time."""

    def __init__(self, db: Path, every_s: float = 0.25) -> None:
        self.db, self.every_s = db, every_s
        self.seen: list[int] = []
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> list[int]:
        import duckdb

        from warehouse.changes import read_changes
        from warehouse.connection import WarehouseError
        from warehouse.read import read_session

        since = self.seen[-1] if self.seen else 0
        try:
            with read_session(self.db) as con:
                return [int(c["cursor"]) for c in read_changes(con, since=since, limit=2000)]
        except (WarehouseError, duckdb.CatalogException):  # held past the timeout: the next look
            return []

    def _run(self) -> None:
        while True:
            batch = self._read()
            self.reads += 1
            self.seen.extend(batch)
            if not batch:
                if self._stop.is_set():
                    return
                self._stop.wait(self.every_s)

    def __enter__(self) -> FeedConsumer:
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=600)

    def result(self, db: Path) -> dict[str, int]:
        """Changes in the feed, and the consumer's gaps (cursors it never got) and repeats."""
        from warehouse.changes import last_cursor
        from warehouse.read import read_session

        with read_session(db) as con:
            last = last_cursor(con)
        got = set(self.seen)
        return {"changes": last, "seen": len(self.seen), "gaps": len(set(range(1, last + 1)) - got),
                "repeats": len(self.seen) - len(got), "reads": self.reads}
