"""Process entry points for tests/warehouse/test_lake_same_key.py (spawned: importable, picklable arguments)."""

from __future__ import annotations

import threading
import time
from typing import Any


def write_one_report_meeting_inside(url: str, connection_id: str, status: str, start: Any, inside: Any,
                                    hold_s: float, results: Any) -> None:
    """Write report `r1` of `connection_id` in one page; after the page's statements and before its
    COMMIT, wait (at most `hold_s`) for the other writer to be inside its own transaction too.
    Puts (connection_id, status, met inside: bool, began, committed, error or None) on `results`."""
    from tests.warehouse.whelpers import REPORTS, batch, page, rec
    from warehouse.loader import Warehouse

    met: bool | None = None
    began = committed = 0.0
    error = None
    try:
        wh = Warehouse(url, purpose=f"test writer {connection_id}/{status}")
        wh.ensure_tables([REPORTS])
        original = Warehouse._write_page

        def rendezvous(self: Warehouse, con: Any, page_: Any) -> Any:
            nonlocal met, began
            began = time.time()
            counts = original(self, con, page_)
            try:
                inside.wait(timeout=hold_s)
                met = True
            except threading.BrokenBarrierError:  # the other writer never got in meanwhile
                met = False
            return counts

        Warehouse._write_page = rendezvous  # type: ignore[method-assign]
        start.wait(timeout=120)
        wh.write_page(page([batch([rec("r1", status)])], conn=connection_id, attempt=f"a-{status}",
                           checkpoint={"page": 1}))
        committed = time.time()
    except Exception as exc:  # reported to the test, which fails naming it
        error = f"{type(exc).__name__}: {exc}"
    results.put((connection_id, status, met, began, committed, error))

