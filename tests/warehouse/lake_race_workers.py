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


def sync_rounds(url: str, integration: str, connection_id: str, syncs: list[str], rounds: int, barrier: Any,
                results: Any) -> None:
    """`rounds` times: wait for everyone at `barrier`, then run `syncs` of one connection into the
    lake, as a worker process would. Puts (connection_id, round, [(sync, status,
    error)]) on `results` after each round. The store comes from the environment."""
    from connections.store import open_store
    from integrations.engine.sync_runner import run_sync
    from warehouse.loader import Warehouse

    store = open_store()
    wh = Warehouse(url, purpose=f"test sync {connection_id}")
    for n in range(rounds):
        outcomes: list[tuple[str, str, str | None]] = []
        try:
            barrier.wait(timeout=120)
            for sync in syncs:
                result = run_sync(integration, connection_id, sync, warehouse=wh, store=store)
                outcomes.append((sync, result.status.value, result.error))
        except Exception as exc:  # reported to the test, which fails naming it
            outcomes.append(("-", "crashed", f"{type(exc).__name__}: {exc}"))
        results.put((connection_id, n, outcomes))
