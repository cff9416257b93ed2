"""The state of one sync run and how it lands what it fetched (records, rejects, checkpoint, gone ids)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from integrations.engine.batches import build_batches, targets_for
from integrations.engine.checkpoint import Checkpoint
from integrations.engine.definition import SyncConfig
from integrations.engine.registry import Integration
from integrations.engine.retries import RetryPolicy
from warehouse.loader import PageWrite, RecordBatch, RejectedRecord, StagedBatch, TableTarget, Warehouse, WriteCounts

log = logging.getLogger("screensync.sync")

Progress = Callable[[int, int | None], None]  # (records so far, total if known)


class SyncRun:
    """State of one run (its counts, cursor and provider times) and how it lands records;
    list_sync, repoll_sync, refetch and references drive it, sync_runner.run_sync starts it."""

    def __init__(
        self,
        integ: Integration,
        sync: SyncConfig,
        connection: Any,
        token: str,
        warehouse: Warehouse,
        *,
        full_refresh: bool,
        retry: RetryPolicy | None,
        progress: Progress | None,
    ) -> None:
        self.integ = integ
        self.sync = sync
        self.connection = connection
        self.token = token
        self.wh = warehouse
        self.full_refresh = full_refresh
        self.retry = retry
        self.progress = progress
        self.targets = targets_for(integ, sync)
        self.model_of: dict[str, type[BaseModel]] = {t.table: t.model for t in self.targets.all()}
        self.transform = integ.resolve(sync.transform) if sync.transform else None
        self.run_id = uuid.uuid4().hex
        self.counts = WriteCounts()
        self.pages = 0
        self.records = 0
        self.cursor_start: Any = None  # the cursor this attempt reads after
        self.cursor_hold: Any = None  # the cursor may not pass this (cursor_hold.py)
        self.gone = 0  # records the provider answered 404/410 for (gone.py)
        self.observed_max: datetime | None = None  # latest provider time this run heard (observed.py)
        self.list_from: datetime | None = None  # provider time of this run's first list page (listed_since.py)

    def observed(self, when: datetime | None) -> datetime | None:
        """Note a provider time this run heard; returns it."""
        if when is not None and (self.observed_max is None or when > self.observed_max):
            self.observed_max = when
        return when

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.integ.name, self.connection.connection_id, self.sync.name)

    def validate_page(self, records: list[Any]) -> tuple[list[RecordBatch], list[RejectedRecord], list[dict[str, Any]]]:
        return build_batches(self.sync, self.targets, records, self.transform, whole_list=self.reads_whole_list)

    @property
    def reads_whole_list(self) -> bool:
        """A full sync, or an incremental one's sweep / full refresh: what it did not see is gone."""
        return self.sync.mode == "full" or (self.sync.mode == "incremental" and self.full_refresh)

    def target_of(self, table: str) -> TableTarget:
        """This sync's target for `table`: its own, or an embedded child's."""
        return next(t for t in self.targets.all() if t.table == table)

    def write(self, batches: list[RecordBatch], rejects: list[RejectedRecord], attempt_id: str, *,
              as_sync: str | None = None) -> None:
        """Records without a checkpoint (fetched by id); `as_sync`: written for another sync of the
        integration (a referenced record), whose state is left alone and to which its rejects are owed."""
        self.land(batches, rejects, attempt_id, checkpoint=None, as_sync=as_sync)

    def land(self, batches: list[RecordBatch] | list[StagedBatch], rejects: list[RejectedRecord], attempt_id: str, *,
             checkpoint: Checkpoint | None, cursor: Any = None, as_sync: str | None = None,
             list_from: datetime | None = None) -> None:
        """One warehouse transaction: the records, their rejects, and the checkpoint after them."""
        integration, connection_id, sync = self.key
        sync = as_sync or sync
        counts = self.wh.write_page(
            PageWrite(
                integration=integration,
                connection_id=connection_id,
                sync=sync,
                run_id=self.run_id,
                attempt_id=attempt_id,
                batches=batches,
                rejects=rejects,
                checkpoint=checkpoint.to_stored() if checkpoint else None,
                cursor=cursor,
                list_from=list_from,
            )
        )
        self.counts = self.counts + counts

    def mark_gone(self, target: TableTarget, ids: list[str], reason: str, *, observed_at: datetime | None = None) -> None:
        """Records the provider answered 404/410 for: soft-deleted with `reason`, never fetched again."""
        integration, connection_id, _ = self.key
        log.info("%s/%s: %d %s record(s) gone at the provider (%s)", integration, connection_id, len(ids),
                 target.table, reason)
        self.wh.mark_gone(target, integration=integration, connection_id=connection_id, ids=ids, reason=reason,
                          run_id=self.run_id, observed_at=observed_at)
        self.gone += len(ids)
