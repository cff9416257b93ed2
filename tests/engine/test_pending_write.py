"""When staged pages are due to be written: enough records, enough bytes, or waited long enough."""

from __future__ import annotations

import time

import pyarrow as pa

from integrations.engine import pending_write
from integrations.engine.paginators import Page
from integrations.engine.pending_write import PendingWrite
from tests.warehouse.whelpers import REPORTS
from warehouse.loader import StagedBatch


def _page(n: int, *, blob: int = 10, checkpoint: dict[str, int] | None = None) -> tuple[list[StagedBatch], Page]:
    table = pa.table({"id": [f"r{i}" for i in range(n)], "_raw": ["x" * blob] * n})
    page = Page(number=1, url="", records=[{"id": f"r{i}"} for i in range(n)], total=None, checkpoint=checkpoint)
    return [StagedBatch(REPORTS, [table])], page


def test_pages_of_one_target_accumulate_until_enough_records() -> None:
    pending = PendingWrite()
    assert pending.empty and not pending.due
    for i in range(3):
        staged, page = _page(100, checkpoint={"page": i + 2})
        pending.add(staged, [], page)
    assert (pending.pages, pending.records, pending.due) == (3, 300, False)
    assert list(pending.batches) == [REPORTS] and pending.batches[REPORTS].num_rows == 300
    assert pending.tail is not None and pending.tail.checkpoint == {"page": 4}
    staged, page = _page(pending_write.MAX_RECORDS_PER_WRITE)
    pending.add(staged, [], page)
    assert pending.due


def test_wide_records_are_due_by_bytes_before_the_record_count() -> None:
    pending = PendingWrite()
    staged, page = _page(100, blob=pending_write.MAX_BYTES_PER_WRITE // 100 + 1)
    pending.add(staged, [], page)
    assert pending.records < pending_write.MAX_RECORDS_PER_WRITE and pending.due


def test_a_slow_provider_still_gets_written_after_the_delay() -> None:
    pending = PendingWrite()
    staged, page = _page(1)
    pending.add(staged, [], page)
    assert not pending.due
    time.sleep(pending_write.MAX_WRITE_DELAY_S + 0.05)
    assert pending.due
