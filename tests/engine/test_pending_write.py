"""When staged pages are due to be written: a row group per table, a cap, or waited long enough."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from integrations.engine import pending_write, slow_provider
from integrations.engine.paginators import Page
from integrations.engine.pending_write import PendingWrite
from tests.warehouse.whelpers import REPORTS, Report
from warehouse.loader import ROW_GROUP_SIZE, StagedBatch, TableTarget

CANDIDATES = TableTarget("checkr", "candidates", Report)


def _staged(target: TableTarget, n: int, *, blob: int = 10) -> StagedBatch:
    table = pa.table({"id": [f"r{i}" for i in range(n)], "_raw": ["x" * blob] * n})
    return StagedBatch(target, [table])


def _page(n: int, checkpoint: dict[str, int] | None = None) -> Page:
    return Page(number=1, url="", records=[{"id": f"r{i}"} for i in range(n)], total=None, checkpoint=checkpoint)


def test_pages_of_one_target_accumulate_until_a_whole_row_group() -> None:
    pending = PendingWrite()
    assert pending.empty and not pending.due
    for i in range(3):
        pending.add([_staged(REPORTS, 100)], [], _page(100, {"page": i + 2}))
    assert (pending.pages, pending.records, pending.due) == (3, 300, False)
    assert list(pending.batches) == [REPORTS] and pending.batches[REPORTS].num_rows == 300
    assert pending.tail is not None and pending.tail.checkpoint == {"page": 4}
    pending.add([_staged(REPORTS, ROW_GROUP_SIZE - 300)], [], _page(ROW_GROUP_SIZE - 300))
    assert pending.due


def test_a_write_waits_until_every_table_it_touches_has_a_row_group() -> None:
    """Parents and their embedded children land in one transaction: both must skip the WAL."""
    pending = PendingWrite()
    pending.add([_staged(CANDIDATES, ROW_GROUP_SIZE), _staged(REPORTS, ROW_GROUP_SIZE - 1)], [], _page(ROW_GROUP_SIZE))
    assert not pending.due
    pending.add([_staged(CANDIDATES, 10), _staged(REPORTS, 1)], [], _page(10))
    assert pending.due


def test_a_sparse_child_table_does_not_hold_the_write_back_forever() -> None:
    pending = PendingWrite()
    per_page = 1000
    pending.add([_staged(CANDIDATES, per_page), _staged(REPORTS, 1)], [], _page(per_page))
    while pending.batches[CANDIDATES].num_rows < pending_write.MAX_ROWS_PER_TABLE - per_page:
        pending.add([_staged(CANDIDATES, per_page), _staged(REPORTS, 1)], [], _page(per_page))
        assert not pending.due
    pending.add([_staged(CANDIDATES, per_page), _staged(REPORTS, 1)], [], _page(per_page))
    assert pending.due


def test_wide_records_are_due_by_bytes_before_a_row_group() -> None:
    pending = PendingWrite()
    pending.add([_staged(REPORTS, 100, blob=pending_write.MAX_BYTES_PER_WRITE // 100 + 1)], [], _page(100))
    assert pending.records < ROW_GROUP_SIZE and pending.due


def test_a_slow_provider_still_gets_written_after_the_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pending_write, "MAX_WRITE_DELAY_S", 0.2)
    pending = PendingWrite()
    pending.add([_staged(REPORTS, 1)], [], _page(1))
    assert not pending.due
    time.sleep(0.25)
    assert pending.due


def test_at_a_slow_provider_a_write_is_due_at_a_few_megabytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fetching several pages at a time gathers 4x a one-page-at-a-time write in the delay; DuckDB's
    memory at commit grows with it, and a writer waiting on the network loses nothing by writing sooner."""
    blob = pending_write.MAX_BYTES_SLOW_PROVIDER // 100 + 1
    pending = PendingWrite()
    pending.add([_staged(REPORTS, 100, blob=blob)], [], _page(100))
    assert not pending.due  # a fast provider: the writer gathers whole row groups
    monkeypatch.setattr(slow_provider, "_detected", True)
    assert pending.due
