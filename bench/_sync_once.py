"""Child process for the benchmarks: run one sync into a fresh warehouse, print a JSON line.

Run in its own process so its peak RSS is ours alone (not the sandbox's, not the parent's).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet


def main() -> None:
    info = json.loads(Path(sys.argv[1]).read_text())
    provider, integration, sync_name, db = sys.argv[2], sys.argv[3], sys.argv[4], Path(sys.argv[5])
    full_refresh = "full" in sys.argv[6:]
    tmp = Path(tempfile.mkdtemp())
    os.environ.setdefault("SCREENSYNC_CONNECTIONS", str(tmp / "connections.sqlite"))
    os.environ.setdefault("SCREENSYNC_SECRET_KEY", Fernet.generate_key().decode())

    from connections.models import Connection, ConnectionMetadata, Credentials
    from connections.store import open_store
    from integrations.engine.sync_runner import run_sync
    from warehouse.loader import Warehouse

    section = info[provider]
    account = section["accounts"][0]
    token = account.get("api_key") or account.get("api_token")
    store = open_store()
    try:
        store.get(integration, "bench")
    except Exception:
        store.add(
            Connection(connection_id="bench", integration=integration, credential_kind="api_key",
                       metadata=ConnectionMetadata(base_url=section["base_url"], environment="sandbox")),
            Credentials(token=token),
        )
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    with Warehouse(db) as wh:
        result = run_sync(integration, "bench", sync_name, warehouse=wh, store=store, full_refresh=full_refresh)
    elapsed = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss / 1024
    cpu_s = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime  # this process's CPU in the sync
    print(json.dumps({"status": result.status.value, "error": result.error, "seconds": elapsed, "cpu_s": cpu_s,
                      "file_mb": db.stat().st_size / 1e6, "peak_rss_mb": peak_mb, "added": result.added, "updated": result.updated,
                      "unchanged": result.unchanged, "requests": result.requests, "retries": result.retries,
                      "rate_limited": result.rate_limited,
                      "pages": result.pages}))


if __name__ == "__main__":
    main()
