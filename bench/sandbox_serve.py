"""How fast the sandbox serves Checkr pages, how much memory it holds at a million reports, and whether
it keeps serving concurrently at a given latency.

    .venv/bin/python bench/sandbox_serve.py --scale 125000 --records 100000
    .venv/bin/python bench/sandbox_serve.py --scale 20000 --records 20000 --latency-ms 150 --concurrency 16

Starts `screensync sandbox` in its own process (rate limiting off), then pages one Checkr account's
candidates with `include=reports`, `per_page=100`, and reports startup time, pages/second, the time
for `--records` records and the sandbox's RSS. With `--concurrency 1` (the default) it follows
`next_href` like a sequential sync; with more, that many threads fetch page numbers at once. With
`--latency-ms` every answer waits that long (plus `--jitter-ms`), and the run also reports the bound
that latency sets (`concurrency / latency` pages a second) and how close the sandbox came to it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sandbox_proc import sandbox_process, set_rate_limit


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sequential(client: httpx.Client, base: str, auth: tuple[str, str], limit: int) -> tuple[int, int, int]:
    """Follow `next_href` until `limit` candidates: (pages, candidates, embedded reports)."""
    url: str | None = f"{base}/v1/candidates?per_page=100&include=reports"
    pages = records = reports = 0
    while url and records < limit:
        body = client.get(url, auth=auth).raise_for_status().json()
        pages += 1
        records += len(body["data"])
        reports += sum(len(c["reports"]) for c in body["data"])
        url = body["next_href"]
    return pages, records, reports


def concurrent(base: str, auth: tuple[str, str], limit: int, threads: int) -> tuple[int, int, int]:
    """`threads` workers take page numbers 1, 2, ... until `limit` candidates are covered."""
    last_page = -(-limit // 100)
    numbers = itertools.count(1)
    lock = threading.Lock()
    totals = [0, 0, 0]

    def work() -> None:
        with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=1)) as client:
            while True:
                with lock:
                    page = next(numbers)
                if page > last_page:
                    return
                params: dict[str, Any] = {"per_page": 100, "page": page, "include": "reports"}
                body = client.get(f"{base}/v1/candidates", params=params, auth=auth).raise_for_status().json()
                with lock:
                    totals[0] += 1
                    totals[1] += len(body["data"])
                    totals[2] += sum(len(c["reports"]) for c in body["data"])

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return totals[0], totals[1], totals[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=125_000, help="candidates per Checkr account")
    parser.add_argument("--records", type=int, default=100_000, help="candidates to download")
    parser.add_argument("--latency-ms", type=int, default=0, help="latency the sandbox adds to every answer")
    parser.add_argument("--jitter-ms", type=int, default=0, help="plus a uniform draw in [0, this]")
    parser.add_argument("--concurrency", type=int, default=1, help="pages fetched at once (1: follow next_href)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    with sandbox_process(scale=args.scale) as info:
        started = time.perf_counter() - t0
        pid = info["_pid"]
        set_rate_limit(info, "checkr", 0)
        if args.latency_ms or args.jitter_ms:
            httpx.put(
                f"{info['control_url']}/latency/checkr", json={"ms": args.latency_ms, "jitter_ms": args.jitter_ms}
            ).raise_for_status()
        section = info["checkr"]
        accounts = section["accounts"]
        total_candidates = 0
        with httpx.Client(timeout=60) as client:
            for acc in [*accounts, *info["checkr_staging"]["accounts"]]:
                base = section["base_url"] if acc in accounts else info["checkr_staging"]["base_url"]
                r = client.get(f"{base}/v1/candidates", params={"per_page": 1}, auth=(acc["api_key"], ""))
                total_candidates += r.json()["count"]  # candidates; reports are ~1.03x that
            rss_start = rss_mb(pid)
            auth = (accounts[0]["api_key"], "")
            t1 = time.perf_counter()
            if args.concurrency > 1:
                pages, records, reports = concurrent(section["base_url"], auth, args.records, args.concurrency)
            else:
                pages, records, reports = sequential(client, section["base_url"], auth, args.records)
            elapsed = time.perf_counter() - t1
        peak = httpx.get(f"{info['control_url']}/faults/checkr").json()["stats"]["peak_waiting"]
        out: dict[str, Any] = {
            "scale": args.scale,
            "checkr_candidates_total": total_candidates,
            "startup_s": round(started, 1),
            "rss_mb_after_start": round(rss_start),
            "rss_mb_after_download": round(rss_mb(pid)),
            "concurrency": args.concurrency,
            "pages": pages,
            "candidates": records,
            "embedded_reports": reports,
            "download_s": round(elapsed, 1),
            "pages_per_s": round(pages / elapsed, 1),
        }
        if args.latency_ms or args.jitter_ms:
            mean_latency = (args.latency_ms + args.jitter_ms / 2) / 1000
            bound = args.concurrency / mean_latency
            out |= {
                "latency_ms": args.latency_ms,
                "jitter_ms": args.jitter_ms,
                "latency_bound_pages_per_s": round(bound, 1),
                "share_of_bound": round(pages / elapsed / bound, 2),
                "peak_requests_waiting_at_once": peak,
            }
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
