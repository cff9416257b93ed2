"""The shapes the sync engine hands to the warehouse (plain dataclasses: hot path, no validation cost)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
from pydantic import BaseModel


@dataclass(frozen=True)
class TableTarget:
    schema: str  # "checkr"
    table: str  # "reports"
    model: type[BaseModel]
    primary_key: str = "id"
    deleted_field: str | None = None  # set on a version: the provider deleted the record (deletes.py)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"


# When a record version was true at the provider (`_observed_at`, the provider's clock): one time for
# every row of a batch (a page's `Date` header), or one per row (records fetched one by one, webhooks).
Observed = datetime | list[datetime | None] | None


@dataclass
class RecordBatch:
    target: TableTarget
    rows: list[dict[str, Any]]  # validated field values by name (nested models may stay models)
    raws: list[str]  # canonical compact JSON of each record (same order): stored in _raw, hashed
    track_seen: bool = False  # full sync with delete tracking: remember these ids under the attempt
    observed_at: Observed = None  # None: unknown, the version is applied whatever is stored
    run_ids: list[str] | None = None  # per row `_run_id` (webhooks: `webhook:<event id>`); None: the write's run


@dataclass
class StagedBatch:
    """Records of one target already in Arrow form (see `Warehouse.stage`): a few pages of them
    take a fraction of the memory of the validated Python objects while they wait to be written."""

    target: TableTarget
    tables: list[pa.Table]  # typed columns + `_raw` + `_hash`, one table per staged page
    track_seen: bool = False

    @property
    def num_rows(self) -> int:
        return sum(t.num_rows for t in self.tables)


@dataclass
class RejectedRecord:
    model: str
    record_id: str | None
    error: str
    raw: str


@dataclass
class PageWrite:
    """Everything one page produced; written in ONE transaction so a crash never splits it."""

    integration: str
    connection_id: str
    sync: str
    run_id: str
    attempt_id: str
    batches: list[RecordBatch | StagedBatch]
    rejects: list[RejectedRecord] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None  # resumable position AFTER this page (None = leave as is)
    cursor: Any | None = None  # new incremental cursor (None = leave as is)
    list_from: datetime | None = None  # provider time of the attempt's first list page (state.py)


@dataclass
class ObjectWrite:
    """Objects of one connection written outside a sync run (webhooks): no seen keys, no checkpoint."""

    integration: str
    connection_id: str
    batches: list[RecordBatch]
    rejects: list[RejectedRecord] = field(default_factory=list)
    run_id: str = "webhook"  # for the rejects; rows carry their own `run_ids` when given
    sync: str = "webhook"
    received_at: datetime | None = None  # webhooks: when the latest of its events arrived (warehouse/freshness.py)
    events: int = 0  # how many events it carries


@dataclass
class WriteCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    late: int = 0  # older than the version stored: kept in history only (`_change = 'late'`)

    def __add__(self, other: WriteCounts) -> WriteCounts:
        return WriteCounts(
            self.added + other.added,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.rejected + other.rejected,
            self.late + other.late,
        )
