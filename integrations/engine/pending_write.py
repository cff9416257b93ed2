"""Pages validated and staged but not yet written, and when to write them.

Pages are validated and converted to Arrow as they arrive, then written as one transaction
holding their records and the checkpoint after the last of them, once MAX_RECORDS_PER_WRITE
records (or MAX_BYTES_PER_WRITE of Arrow data) are waiting or the oldest has waited
MAX_WRITE_DELAY_S, whichever comes first. A slow provider thus still gets a checkpoint twice a
second (every page when pages take longer), and a fast one gets transactions of ~8,000 rows,
which DuckDB writes straight to the file as whole row groups instead of through its write-ahead
log: a full sync was twice as fast as with a transaction per page or two (docs/benchmarks.md).
"""

from __future__ import annotations

import time

from integrations.engine.paginators import Page
from warehouse.loader import ROW_GROUP_SIZE, RejectedRecord, StagedBatch, TableTarget

MAX_RECORDS_PER_WRITE = ROW_GROUP_SIZE  # a whole row group per table: written without the WAL
MAX_BYTES_PER_WRITE = 32 * 1024 * 1024  # wide records: bounds our memory and DuckDB's at commit
MAX_WRITE_DELAY_S = 0.5


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
        return (
            self.records >= MAX_RECORDS_PER_WRITE
            or self.nbytes >= MAX_BYTES_PER_WRITE
            or time.monotonic() >= self.deadline
        )

    def add(self, staged: list[StagedBatch], rejects: list[RejectedRecord], page: Page) -> None:
        if self.empty:
            self.deadline = time.monotonic() + MAX_WRITE_DELAY_S
        for b in staged:
            self.nbytes += sum(t.nbytes for t in b.tables)
            if b.target in self.batches:
                self.batches[b.target].tables.extend(b.tables)
            else:
                self.batches[b.target] = b
        self.rejects += rejects
        self.pages += 1
        self.records += len(page.records)
        self.tail = page
