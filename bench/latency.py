"""Latency benchmark (issue 17): at a real provider's latency the rate budget, not the round trip,
should bound a sync. Sequential and concurrent fetching side by side, in one run.

    .venv/bin/python bench/latency.py [--scale 3000] [--large] [--latency-ms 150] [--jitter-ms 0] [--fetching ...]
                                      [--one-by-one] [--only checkr|fast|clearchecks ...]

Each way of fetching gets two rows, each a `screensync sync <integration>` of sandbox account 0 in
a child process (bench/_sync_all_once.py) whose peak RSS is reported: "first", into a fresh DuckDB
file (the lists), and "2 h on", the same command into that file with its clock moved two hours
back, when the open reports the first run landed are due for their re-poll (by-id fetches; a first
run re-polls nothing since re-polls are due-based). "concurrent" is the engine as shipped: the
connection's syncs side by side (each after the ones it declares `after`), the definition's
concurrency ceiling (Checkr 8, ClearChecks 4). "one-by-one" (with --one-by-one) fetches
concurrently but runs the syncs in turn. "sequential" caps the credential's concurrency at 1 and
runs the syncs in turn: every sync before issue 17. Each run starts in a fresh minute window at
the sandbox (which counts requests per credential in fixed minute windows).

The bound is the rate budget's: requests / (limit per second); "x bound" is wall time over it.
"x paced" is wall time over what the limiter allows itself (the definition's `target_share`, 95%:
the headroom kept for the connection's actions and other users of the credential), so 1.00 there
means fetching added nothing to pacing. "nothing in flight" is the time no request of the run was
waiting for the limiter or the provider: the budget left idle.

1. Checkr at `--latency-ms` and 1,200 requests/min, `--scale` candidates (and 20,000 with --large).
2. Checkr at 2 ms with rate limiting off ("fast"): concurrency must cost nothing when latency is not
   the bound.
3. ClearChecks at `--latency-ms` and its 60 requests/min (the same sandbox: `--scale` reports, 100 a page).

Targets: Checkr within 1.15x the bound with 0 x 429 and peak RSS within 10% of sequential;
ClearChecks within 1.05x.
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
from integrations.engine.registry import get_integration

INTEGRATION = {"checkr": "checkr", "clearchecks": "clearchecks"}


def set_latency(info: dict[str, Any], provider: str, ms: int, jitter_ms: int) -> None:
    httpx.put(f"{info['control_url']}/latency/{provider}", json={"ms": ms, "jitter_ms": jitter_ms}).raise_for_status()


HOW = {"concurrent": [], "one-by-one": ["one-by-one"], "sequential": ["sequential"]}


def sync_all(info: dict[str, Any], provider: str, *, how: str, db: Path, later: bool) -> dict[str, Any]:
    """One `screensync sync <integration>` in a child process (its own peak RSS). `later`: two hours
    on (the warehouse's clock moved back, tests/support/clock.py), when the open reports the first
    run landed are due for their re-poll."""
    info_path = db.parent / "info.json"
    info_path.write_text(json.dumps(info))
    args = [sys.executable, str(ROOT / "bench" / "_sync_all_once.py"), str(info_path), provider,
            INTEGRATION[provider], str(db), *HOW[how], *(["later"] if later else [])]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def scenario(info: dict[str, Any], label: str, provider: str, *, ms: int, jitter_ms: int,
             per_minute: int, hows: tuple[str, ...] = ("concurrent", "sequential")) -> list[dict[str, Any]]:
    """Each way of fetching: a first sync of everything, then the same command two hours later (the
    due re-poll: by-id fetches). Each run starts in a fresh minute window at the sandbox (it counts
    requests per credential in fixed minute windows), so no run inherits another's used budget."""
    set_latency(info, provider, ms, jitter_ms)
    set_rate_limit(info, provider, per_minute)
    rows = []
    share = get_integration(INTEGRATION[provider]).definition.rate_limit.target_share
    for how in hows:
        with tempfile.TemporaryDirectory() as tmp:
            for later in (False, True):
                if per_minute:
                    time.sleep(60.5 - time.time() % 60)
                r = sync_all(info, provider, how=how, db=Path(tmp) / "wh.duckdb", later=later)
                r.update(label=f"{label} {'2 h on' if later else 'first'}", how=how,
                         bound=r["requests"] / (per_minute / 60) if per_minute else None,
                         paced=r["requests"] / (share * per_minute / 60) if per_minute else None)
                rows.append(r)
                print(_line(r), flush=True)
                print("    by sync (requests, s): "
                      + ", ".join(f"{name} {n} {s:.1f}" for name, (n, s) in r["by_sync"].items()), flush=True)
                print(f"    nothing in flight {r['idle_s']:.1f} s (longest gaps s @ s: {r['idle_gaps']}); "
                      f"mean in flight {r['in_flight_mean']:.1f}", flush=True)
    set_latency(info, provider, 0, 0)
    return rows


HEADER = (f"{'scenario':<44} {'fetching':<10} {'requests':>8} {'429s':>5} {'wall s':>8} {'bound s':>8} "
          f"{'x bound':>7} {'x paced':>7} {'peak RSS MB':>11} {'window':>6} {'cuts':>4} status")


def _line(r: dict[str, Any]) -> str:
    bound = f"{r['bound']:>8.1f}" if r["bound"] else f"{'-':>8}"
    ratio = f"{r['seconds'] / r['bound']:>7.2f}" if r["bound"] else f"{'-':>7}"
    paced = f"{r['seconds'] / r['paced']:>7.2f}" if r["paced"] else f"{'-':>7}"
    return (f"{r['label']:<44} {r['how']:<10} {r['requests']:>8} {r['rate_limited']:>5} {r['seconds']:>8.1f} {bound} "
            f"{ratio} {paced} {r['peak_rss_mb']:>11.0f} {r['window_peak']:>6} {r['window_cuts']:>4} "
            f"{','.join(r['status'])}{' ' + '; '.join(r['errors']) if r['errors'] else ''}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=3000, help="sandbox candidates per account (account 0 holds ~92%%)")
    ap.add_argument("--large", action="store_true", help="also 20,000 candidates at latency (about 35 minutes more)")
    ap.add_argument("--latency-ms", type=int, default=150)
    ap.add_argument("--jitter-ms", type=int, default=0)
    ap.add_argument("--one-by-one", action="store_true",
                    help="also Checkr with concurrent fetching but its syncs in turn (what side by side adds)")
    ap.add_argument("--fetching", choices=list(HOW), action="append",
                    help="only these ways of fetching for Checkr at latency (repeatable; default concurrent and "
                         "sequential, with --one-by-one all three)")
    ap.add_argument("--only", choices=["checkr", "fast", "clearchecks"], action="append",
                    help="run only these scenarios (repeatable; default all)")
    args = ap.parse_args()
    lat = f"{args.latency_ms} ms" + (f" +0..{args.jitter_ms}" if args.jitter_ms else "")
    print(HEADER, flush=True)
    scales = [args.scale] + ([20_000] if args.large else [])
    only = set(args.only or ["checkr", "fast", "clearchecks"])
    for scale in scales:
        # a third of the candidates have a report still open, as in the accounts (6,800 of 20,000)
        with sandbox_process(scale=scale, open_reports={"checkr": scale // 3}) as info:
            if "checkr" in only:
                scenario(info, f"checkr {scale}, {lat}, 1200/min", "checkr", ms=args.latency_ms,
                         jitter_ms=args.jitter_ms, per_minute=1200,
                         hows=tuple(args.fetching) if args.fetching
                         else ("concurrent", "one-by-one", "sequential") if args.one_by_one
                         else ("concurrent", "sequential"))
            if scale == args.scale and "fast" in only:
                scenario(info, f"checkr {scale}, 2 ms, no limit", "checkr", ms=2, jitter_ms=0, per_minute=0)
            if scale == args.scale and "clearchecks" in only:
                scenario(info, f"clearchecks {scale}, {lat}, 60/min", "clearchecks", ms=args.latency_ms,
                         jitter_ms=args.jitter_ms, per_minute=60)
    print("targets: checkr concurrent <= 1.15x bound, 0 x 429, peak RSS within 10% of sequential; "
          "clearchecks concurrent <= 1.05x bound")


if __name__ == "__main__":
    main()
