"""Full-sync benchmark: our sync against the bare download of the same pages, side by side.

    .venv/bin/python bench/sync_full.py [--records 100000] [--small 20000]

1. Yardstick: page through every candidate (with embedded reports) of one sandbox Checkr
   account with plain httpx, per_page=100, discarding the bodies.
2. Ours: `run_sync` of the `candidates` sync (candidates + embedded reports) into a fresh
   DuckDB file, in a child process whose peak RSS and CPU seconds are measured (CPU time is the
   steadier figure on a shared machine: it does not count waiting for the sandbox or for a core).
3. The same sync at a smaller size, to show peak RSS does not grow with the record count.
The sandbox runs in its own process with rate limiting off.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._sandbox_proc import ROOT, sandbox_process, set_rate_limit


def download_only(info: dict[str, Any]) -> tuple[float, int, int]:
    section = info["checkr"]
    key = section["accounts"][0]["api_key"]
    url: str | None = f"{section['base_url']}/v1/candidates?include=reports&per_page=100"
    pages = nbytes = 0
    t0 = time.perf_counter()
    with httpx.Client(auth=(key, ""), timeout=60) as client:
        while url:
            r = client.get(url)
            r.raise_for_status()
            nbytes += len(r.content)
            pages += 1
            url = r.json()["next_href"]
    return time.perf_counter() - t0, pages, nbytes


def our_sync(info_path: Path, db: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "_sync_once.py"), str(info_path), "checkr", "checkr", "candidates", str(db)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(records: int) -> dict[str, Any]:
    with sandbox_process(scale=records) as info, tempfile.TemporaryDirectory() as tmp:
        set_rate_limit(info, "checkr", 0)
        info_path = Path(tmp) / "info.json"
        info_path.write_text(json.dumps(info))
        dl_s, pages, nbytes = download_only(info)
        ours = our_sync(info_path, Path(tmp) / "wh.duckdb")
        return {"records": records, "download_s": dl_s, "pages": pages, "mb": nbytes / 1e6, **ours}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--small", type=int, default=20_000)
    args = ap.parse_args()
    rows = [measure(args.small), measure(args.records)]
    print(f"{'candidates':>10} {'pages':>6} {'MB':>7} {'download s':>11} {'sync s':>8} {'ratio':>6} {'CPU s':>6} "
          f"{'peak RSS MB':>12} {'file MB':>8} status")
    for r in rows:
        ratio = r["seconds"] / r["download_s"]
        print(f"{r['records']:>10} {r['pages']:>6} {r['mb']:>7.1f} {r['download_s']:>11.2f} {r['seconds']:>8.2f} "
              f"{ratio:>6.2f} {r['cpu_s']:>6.2f} {r['peak_rss_mb']:>12.0f} {r['file_mb']:>8.1f} {r['status']} "
              f"(+{r['added']} rows)")
    print("target: ratio <= 1.5; peak RSS < 300 MB and flat between sizes")


if __name__ == "__main__":
    main()
