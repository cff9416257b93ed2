"""Child process for bench/latency.py: every sync of one integration, side by side as
`screensync sync <integration>` runs them (each after the syncs it declares `after`), into a fresh
warehouse; prints one JSON line.

    _sync_all_once.py INFO_JSON PROVIDER INTEGRATION DB [sequential | one-by-one] [later]

`sequential` caps the credential's concurrency at 1 (the definition's ceiling otherwise) and runs
the syncs in definition order: the engine as it was before issue 17, through the same code path.
`one-by-one` keeps the concurrency but runs the syncs in turn. Run in its own process so its peak
RSS is ours alone. `later` first moves the warehouse two hours back (the re-poll is then due).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet


def main() -> None:
    info = json.loads(Path(sys.argv[1]).read_text())
    provider, integration, db = sys.argv[2], sys.argv[3], Path(sys.argv[4])
    sequential = "sequential" in sys.argv[5:]
    one_by_one = sequential or "one-by-one" in sys.argv[5:]  # the syncs in turn, as before issue 17's list
    if "later" in sys.argv[5:]:  # two hours after the run before: what it landed is due again
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.support.clock import hours_pass

        hours_pass(db, 2)
    tmp = Path(tempfile.mkdtemp())
    os.environ.setdefault("SCREENSYNC_CONNECTIONS", str(tmp / "connections.sqlite"))
    os.environ.setdefault("SCREENSYNC_SECRET_KEY", Fernet.generate_key().decode())

    from connections.models import Connection, ConnectionMetadata, Credentials
    from connections.store import open_store
    from integrations.engine import concurrency, http_client
    from integrations.engine.rate_limiter import credential_fingerprint
    from integrations.engine.registry import get_integration
    from integrations.engine.side_by_side import dependencies, reference_waits, run_side_by_side
    from integrations.engine.sync_runner import run_sync
    from warehouse.loader import Warehouse

    spans = _record_requests(http_client.ProviderClient)
    if sequential:
        def one_at_a_time(integ: str, fingerprint: str, ceiling: int, initial: int = 1) -> concurrency.AimdController:
            return concurrency.controller_for(integ, fingerprint, 1)

        http_client.controller_for = one_at_a_time  # type: ignore[assignment]

    section = info[provider]
    account = section["accounts"][0]
    token = account.get("api_key") or account.get("api_token")
    store = open_store()
    store.add(
        Connection(connection_id="bench", integration=integration, credential_kind="api_key",
                   metadata=ConnectionMetadata(base_url=section["base_url"], environment="sandbox")),
        Credentials(token=token),
    )
    definition = get_integration(integration).definition
    syncs = [s.name for s in definition.syncs]
    t0 = time.perf_counter()
    with Warehouse(db) as wh:
        if one_by_one:
            results = [run_sync(integration, "bench", name, warehouse=wh, store=store) for name in syncs]
        else:  # what `screensync sync` does: side by side, each after the syncs it reads
            results = run_side_by_side(
                syncs, dependencies(definition, syncs),
                lambda name, wait: run_sync(integration, "bench", name, warehouse=wh, store=store,
                                            references_wait=wait),
                references=reference_waits(definition, syncs))
    elapsed = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ceiling = get_integration(integration).definition.rate_limit.concurrency.max
    ctl = concurrency.controller_for(integration, credential_fingerprint(token), 1 if sequential else ceiling)
    print(json.dumps({
        "status": sorted({r.status.value for r in results}),
        "errors": [r.error for r in results if r.error],
        "seconds": elapsed, "peak_rss_mb": peak_mb,
        "requests": sum(r.requests for r in results), "rate_limited": sum(r.rate_limited for r in results),
        "retries": sum(r.retries for r in results), "rows": sum(r.added for r in results),
        "by_sync": {r.sync: [r.requests, r.duration_s] for r in results},
        "window_peak": ctl.peak, "window_cuts": ctl.cuts,
        **_in_flight(spans, t0, t0 + elapsed),
    }))


def _record_requests(client_class: Any) -> list[tuple[float, float]]:
    """(start, end) of every ProviderClient.request (pacing included), for `_in_flight`."""
    spans: list[tuple[float, float]] = []
    original = client_class.request

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spans.append((start, time.perf_counter()))

    client_class.request = timed
    return spans


def _in_flight(spans: list[tuple[float, float]], t0: float, t1: float) -> dict[str, Any]:
    """Seconds with no request waiting (for the limiter or the provider): what the budget lost to
    serial phases (warehouse set-up, writes, a sync's start and finish); the three longest gaps; and
    the mean number in flight."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    idle, gaps, depth, last, area = 0.0, [], 0, t0, 0.0
    for when, step in edges:
        if depth == 0 and when > last:
            idle += when - last
            gaps.append((round(when - last, 2), round(last - t0, 1)))
        area += depth * (when - last)
        depth += step
        last = when
    if t1 > last:
        idle += t1 - last
        gaps.append((round(t1 - last, 2), round(last - t0, 1)))
    return {"idle_s": idle, "idle_gaps": sorted(gaps, reverse=True)[:3], "in_flight_mean": area / max(t1 - t0, 1e-9)}


if __name__ == "__main__":
    main()
