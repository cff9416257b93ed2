"""Child process for bench/fanout.py: the fan-out's work without Prefect, the yardstick.

    SCREENSYNC_WAREHOUSE=... SCREENSYNC_CONNECTIONS=... python bench/_fanout_direct.py '{"checkr": ["c1", ...]}'

Every connection's syncs in their declared order, connections side by side on 4 threads (what one
shard does, minus Prefect), the time the warehouse
was being written (some write session open) measured. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from common.settings import warehouse_setting
    from connections.store import open_store
    from integrations.engine.registry import get_integration
    from integrations.engine.sync_runner import run_sync
    from warehouse.loader import Warehouse

    plan: dict[str, list[str]] = json.loads(sys.argv[1])
    # wall time during which some thread had a write session open (the union, not the sum: threads
    # queue for the process's one writer), and the sessions' count
    busy = {"s": 0.0, "open": 0, "since": 0.0, "sessions": 0}
    busy_lock = threading.Lock()
    original = Warehouse._session

    @contextmanager
    def timed(self: Any, **kw: Any) -> Iterator[Any]:
        with original(self, **kw) as conn:
            with busy_lock:
                busy["sessions"] += 1
                busy["open"] += 1
                if busy["open"] == 1:
                    busy["since"] = time.perf_counter()
            try:
                yield conn
            finally:
                with busy_lock:
                    busy["open"] -= 1
                    if busy["open"] == 0:
                        busy["s"] += time.perf_counter() - busy["since"]

    Warehouse._session = timed  # type: ignore[method-assign]
    warehouse = warehouse_setting()
    store = open_store()

    def one_connection(integration: str, cid: str) -> list[Any]:
        out = []
        for sync in [s.name for s in get_integration(integration).definition.syncs]:
            wh = Warehouse(warehouse, lock_timeout=120, purpose=f"bench {cid}/{sync}")
            out.append(run_sync(integration, cid, sync, warehouse=wh, store=store))
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=int(os.environ.get("SCREENSYNC_MAX_WORKERS", "4"))) as pool:
        futures = [pool.submit(one_connection, i, c) for i, cids in plan.items() for c in cids]
        results = [r for f in futures for r in f.result()]
    wall = time.perf_counter() - t0
    print(json.dumps({
        "wall_s": wall, "connections": sum(len(c) for c in plan.values()),
        "added": sum(r.added for r in results), "failed": sum(1 for r in results if not r.ok),
        "commit_s": busy["s"], "sessions": busy["sessions"], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
