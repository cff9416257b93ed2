"""When a write runs the warehouse writer out of memory: smaller writes, never a lost run.

The writer's DuckDB has a fixed memory limit (SCREENSYNC_WAREHOUSE_MEMORY, 48 MB by default).
A write that exceeds it (a page of unusually wide records, one huge record) is written again in
halves, each in a transaction of its own, halving again where needed; a single record that
still does not fit is quarantined with its raw JSON and an error naming the setting. Upserts
are idempotent, so rows written before the transaction that moves the checkpoint are simply
written again, unchanged, if the run dies in between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from warehouse.connection import WarehouseError
from warehouse.records import PageWrite, RejectedRecord, StagedBatch, TableTarget, WriteCounts

log = logging.getLogger("screensync.warehouse")

MEMORY_ENV = "SCREENSYNC_WAREHOUSE_MEMORY"
_MARKERS = ("out of memory", "could not allocate", "failed to allocate", "failed to pin block")


def is_out_of_memory(exc: BaseException) -> bool:
    """DuckDB's own out-of-memory error, or a commit that failed for want of memory."""
    return isinstance(exc, duckdb.OutOfMemoryException) or any(m in str(exc).lower() for m in _MARKERS)


def raise_hint(limit: str) -> str:
    return f"raise {MEMORY_ENV} (now {limit}; e.g. {MEMORY_ENV}=256MB)"


class WarehouseOutOfMemory(WarehouseError):
    """A write needed more than the writer's memory limit; nothing of it was kept."""

    def __init__(self, what: str, path: Path, limit: str, exc: BaseException) -> None:
        self.limit = limit
        detail = str(exc).split("\n", 1)[0]
        super().__init__(
            f"could not write {what} to {path}: the warehouse writer ran out of memory ({detail}); "
            f"{raise_hint(limit)}. Nothing of this write was kept; the next run resumes from its checkpoint."
        )


@dataclass(frozen=True)
class Part:
    """Some staged rows of one table."""

    target: TableTarget
    rows: pa.Table
    track_seen: bool

    def staged(self) -> StagedBatch:
        return StagedBatch(self.target, [self.rows], track_seen=self.track_seen)


def parts_of(batches: list[StagedBatch]) -> list[Part]:
    return [Part(b.target, t, b.track_seen) for b in batches for t in b.tables if t.num_rows]


def halves(parts: list[Part]) -> tuple[list[Part], list[Part]] | None:
    """The same rows in two smaller writes, or None when `parts` is a single row."""
    if len(parts) > 1:
        mid = len(parts) // 2
        return parts[:mid], parts[mid:]
    (part,) = parts
    if part.rows.num_rows <= 1:
        return None
    mid = part.rows.num_rows // 2
    return [Part(part.target, part.rows.slice(0, mid), part.track_seen)], [
        Part(part.target, part.rows.slice(mid), part.track_seen)
    ]


def oversize_reject(part: Part, limit: str) -> RejectedRecord:
    """The quarantine entry for one row that does not fit the writer even alone."""
    raw = part.rows.column("_raw")[0].as_py()
    key = part.rows.column(part.target.primary_key)[0].as_py()
    size = len(raw.encode()) / (1024 * 1024)
    error = (
        f"{part.target.qualified}: a record of {size:.1f} MB does not fit the warehouse writer's memory; "
        f"{raise_hint(limit)}, then `screensync rejects retry` lands it"
    )
    return RejectedRecord(part.target.table, None if key is None else str(key), error, raw)


def spill_raw(reject: RejectedRecord, folder: Path, run_id: str) -> RejectedRecord:
    """Keep a raw too large even to quarantine in DuckDB as a file beside the warehouse."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}-{reject.model}-{reject.record_id or 'unknown'}.json"
    path.write_text(reject.raw, encoding="utf-8")
    return RejectedRecord(
        reject.model,
        reject.record_id,
        f"{reject.error} (raw JSON kept in {path})",
        orjson.dumps({"screensync_raw_file": str(path)}).decode(),
    )


Commit = Callable[[PageWrite], WriteCounts]  # one transaction; raises WarehouseOutOfMemory


def write_in_parts(commit: Commit, page: PageWrite, limit: str, spill: Path) -> WriteCounts:
    """`page` after its one transaction ran out of memory: its rows in halves (recursively), each
    without the checkpoint, then the rejects, seen keys and checkpoint. Rejected counts include only
    the records quarantined here."""
    staged = [b for b in page.batches if isinstance(b, StagedBatch)]
    counts, quarantined = WriteCounts(), 0
    parts = parts_of(staged)
    todo = [parts] if parts else []
    while todo:
        group = todo.pop()
        try:
            counts = counts + commit(replace(page, batches=[p.staged() for p in group], rejects=[],
                                             checkpoint=None, cursor=None))
        except WarehouseOutOfMemory:
            split = halves(group)
            if split is not None:
                todo += [split[1], split[0]]
                continue
            _quarantine_alone(commit, page, group[0], limit, spill)
            quarantined += 1
    # the rejects, the seen keys of the tracked tables and the checkpoint, now the rows are in
    counts = counts + commit(replace(page, batches=[StagedBatch(b.target, [], track_seen=b.track_seen) for b in staged]))
    counts.rejected += quarantined
    return counts


def _quarantine_alone(commit: Commit, page: PageWrite, part: Part, limit: str, spill: Path) -> None:
    """One record too large to write even alone: its own quarantine entry (the raw in a file in
    `spill` if even that does not fit), counted as seen and owed like any reject."""
    reject = oversize_reject(part, limit)
    log.warning("%s", reject.error)
    alone = replace(page, batches=[StagedBatch(part.target, [], track_seen=part.track_seen)], rejects=[reject],
                    checkpoint=None, cursor=None)
    try:
        commit(alone)
    except WarehouseOutOfMemory:
        commit(replace(alone, rejects=[spill_raw(reject, spill, page.run_id)]))
