"""Pages validated and staged but not yet written, and when to write them.

Pages are validated and converted to Arrow as they arrive, then written as one transaction
holding their records and the checkpoint after the last of them. DuckDB writes a table's new
rows straight into the file, as compressed row groups, only when the transaction adds at least
a row group of them (ROW_GROUP_SIZE); a smaller insert goes through the write-ahead log and is
compressed again by a later checkpoint, which cost a full sync about a third of its time
(docs/benchmarks.md). So a write is due once every table it touches has a whole row group
waiting, or sooner when waiting longer would cost too much: MAX_ROWS_PER_TABLE rows in one table
(a child table that stays sparse), MAX_BYTES_PER_WRITE of Arrow data (wide records), or the
oldest page waiting MAX_WRITE_DELAY_S (a slow provider still gets a checkpoint that often).

Whole row groups only pay when the writer is the slow side. At a slow provider (slow_provider.py)
the writer would wait anyway, so a write is due at MAX_BYTES_SLOW_PROVIDER: what a sync fetching
one page at a time gathers in MAX_WRITE_DELAY_S at 150 ms. Fetching several pages at a time gathered
4x that (12-13 MB of Arrow for 20,000 Checkr candidates), and DuckDB's memory at commit grew with
it: +56 MB of RSS a write against +40. And each such write is checkpointed on its own
(SLOW_PROVIDER_WAL_BYTES, warehouse/access.py): several syncs' writes sharing one attach stacked
their memory until its checkpoint (issue 17, docs/benchmarks.md).
"""

from __future__ import annotations

import time

from integrations.engine import slow_provider
from integrations.engine.paginators import Page
from warehouse import access
from warehouse.loader import ROW_GROUP_SIZE, RejectedRecord, StagedBatch, TableTarget

MAX_ROWS_PER_TABLE = 4 * ROW_GROUP_SIZE
MAX_BYTES_PER_WRITE = 32 * 1024 * 1024  # bounds our memory while pages wait, and DuckDB's at commit
MAX_BYTES_SLOW_PROVIDER = 4 * 1024 * 1024
SLOW_PROVIDER_WAL_BYTES = 256 * 1024  # a write of 4 MB of Arrow leaves ~4.5 MB in the log, of 800 records ~0.8; bookkeeping ~30 KB
MAX_WRITE_DELAY_S = 2.0


class PendingWrite:
    """Pages validated and staged but not yet written."""

    def __init__(self) -> None:
        self.batches: dict[TableTarget, StagedBatch] = {}
        self.rejects: list[RejectedRecord] = []
        self.pages = 0
        self.records = 0
        self.nbytes = 0
        self.tail: Page | None = None
        self.deadline = float("inf")

    @property
    def empty(self) -> bool:
        return self.pages == 0

    @property
    def due(self) -> bool:
        if self.empty:
            return False
        counts = [n for n in (b.num_rows for b in self.batches.values()) if n]
        return (
            (bool(counts) and min(counts) >= ROW_GROUP_SIZE)
            or (bool(counts) and max(counts) >= MAX_ROWS_PER_TABLE)
            or self.nbytes >= (MAX_BYTES_SLOW_PROVIDER if slow_provider.detected() else MAX_BYTES_PER_WRITE)
            or time.monotonic() >= self.deadline
        )

    def add(self, staged: list[StagedBatch], rejects: list[RejectedRecord], page: Page) -> None:
        if self.empty:
            self.deadline = time.monotonic() + MAX_WRITE_DELAY_S
        for b in staged:
            self.nbytes += sum(t.get_total_buffer_size() for t in b.tables)
            if b.target in self.batches:
                self.batches[b.target].tables.extend(b.tables)
            else:
                self.batches[b.target] = b
        self.rejects += rejects
        self.pages += 1
        self.records += len(page.records)
        self.tail = page


slow_provider.on_detected(lambda: access.keep_wal_below(SLOW_PROVIDER_WAL_BYTES))
