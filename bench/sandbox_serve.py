"""How fast the sandbox serves Checkr pages, and how much memory it holds at a million reports.

    .venv/bin/python bench/sandbox_serve.py --scale 125000 --records 100000

Starts `screensync sandbox` in its own process (rate limiting off), then pages one Checkr account's
candidates with `include=reports`, `per_page=100`, following `next_href` like a sync would, and
reports startup time, pages/second, the time for `--records` records and the sandbox's RSS.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sandbox_proc import sandbox_process, set_rate_limit


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=125_000, help="candidates per Checkr account")
    parser.add_argument("--records", type=int, default=100_000, help="candidates to download")
    args = parser.parse_args()
    t0 = time.perf_counter()
    with sandbox_process(scale=args.scale) as info:
        started = time.perf_counter() - t0
        pid = info["_pid"]
        set_rate_limit(info, "checkr", 0)
        section = info["checkr"]
        accounts = section["accounts"]
        total_reports = 0
        with httpx.Client(timeout=60) as client:
            for acc in [*accounts, *info["checkr_staging"]["accounts"]]:
                base = section["base_url"] if acc in accounts else info["checkr_staging"]["base_url"]
                r = client.get(f"{base}/v1/candidates", params={"per_page": 1}, auth=(acc["api_key"], ""))
                total_reports += r.json()["count"]  # candidates; reports are ~1.03x that
            rss_start = rss_mb(pid)
            url: str | None = f"{section['base_url']}/v1/candidates?per_page=100&include=reports"
            auth = (accounts[0]["api_key"], "")
            pages = records = reports = 0
            t1 = time.perf_counter()
            while url and records < args.records:
                body = client.get(url, auth=auth).raise_for_status().json()
                pages += 1
                records += len(body["data"])
                reports += sum(len(c["reports"]) for c in body["data"])
                url = body["next_href"]
            elapsed = time.perf_counter() - t1
        print(
            json.dumps(
                {
                    "scale": args.scale,
                    "checkr_candidates_total": total_reports,
                    "startup_s": round(started, 1),
                    "rss_mb_after_start": round(rss_start),
                    "rss_mb_after_download": round(rss_mb(pid)),
                    "pages": pages,
                    "candidates": records,
                    "embedded_reports": reports,
                    "download_s": round(elapsed, 1),
                    "pages_per_s": round(pages / elapsed, 1),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
