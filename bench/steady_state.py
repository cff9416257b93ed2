"""Steady state over a simulated day: requests per hour against the rate budget, how late report
changes reach the warehouse, and a change-feed consumer's gaps and repeats; due-based refresh side
by side with today's behaviour (the re-poll asks for every open report every run).

    .venv/bin/python bench/steady_state.py                       # 20,000 candidates, 3,500 open, 24 h
    .venv/bin/python bench/steady_state.py --scale 0.1 --hours 6  # a quick look

Checkr: an account of `--candidates` with about `--open` open reports, once with its webhooks
delivered (to our receiver, landed by the applier) and once with none. ClearChecks (no webhooks):
`--cc-open` open reports at 60 requests/min. Each scenario runs in its own process whose clock
follows the sandbox's (bench/_steady_clock.py: libfaketime), so our due times, the provider's
estimates and the lag are all on one clock; the sandbox runs in another process, its rate limit off
(requests are counted against the declared budget instead). docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._sandbox_proc import ROOT
from bench._steady_clock import preload_env

CHECKR_LAG = {"table": "checkr.reports", "truth_id": "id", "state": "status", "done": ["complete"],
              "done_at": "completed_at", "estimate": "estimated_completion_time"}
CLEARCHECKS_LAG = {"table": "clearchecks.reports", "truth_id": "report_key", "state": "status_code",
                   "truth_state": "status", "done": ["C", "X"], "done_at": "completed_date"}
OPEN_SQL = {"checkr": "SELECT count(*) FROM checkr.reports WHERE status NOT IN ('complete', 'canceled')",
            "clearchecks": "SELECT count(*) FROM clearchecks.reports WHERE status_code NOT IN ('C', 'X')"}


def scenarios(args: argparse.Namespace) -> list[dict[str, Any]]:
    base = {"seed": args.seed, "hours": args.hours}
    checkr = {**base, "provider": "checkr", "integration": "checkr", "repoll": "reports", "lag": CHECKR_LAG,
              "scale": round(args.candidates * args.scale), "open": round(args.open * args.scale),
              "open_sql": OPEN_SQL["checkr"], "activity": {"eta_miss_rate": 0.2, "eta_slip_hours": args.eta_slip_hours,
                                                           "eta_miss_open": True, "seed": args.seed}}
    clear = {**base, "provider": "clearchecks", "integration": "clearchecks", "repoll": "report_status",
             "lag": CLEARCHECKS_LAG, "scale": round(args.cc_reports * args.scale),
             "open": round(args.cc_open * args.scale), "open_sql": OPEN_SQL["clearchecks"], "webhooks": False,
             "step": 1800}
    out = []
    for webhooks in (True, False):
        for due in (False, True):
            hours = min(args.webhook_hours or args.hours, args.hours) if webhooks else args.hours
            out.append({**checkr, "name": f"checkr {'webhooks' if webhooks else 'no webhooks'} "
                                          f"{'due' if due else 'today'}",
                        "webhooks": webhooks, "due": due, "step": args.webhook_step if webhooks else 900,
                        "hours": hours if due else min(hours, args.today_hours or hours)})
    for due in (False, True):
        out.append({**clear, "name": f"clearchecks {'due' if due else 'today'}", "due": due,
                    "hours": args.hours if due else min(args.hours, args.today_hours or args.hours)})
    return [s for s in out if not args.only or any(o in s["name"] for o in args.only)]


def start(sc: dict[str, Any], tmp: Path, i: int) -> subprocess.Popen[str]:
    """The scenario's own process, its clock following its own sandbox's (bench/_steady_clock.py)."""
    env = {**os.environ, **preload_env(tmp / f"offset-{i}")}
    return subprocess.Popen([sys.executable, str(ROOT / "bench" / "_steady_run.py"), json.dumps(sc)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(sc: dict[str, Any], proc: subprocess.Popen[str]) -> dict[str, Any] | None:
    """The scenario's figures (a SIGTERM to its process ends it early with the hours it did)."""
    out, err = proc.communicate()
    if proc.returncode:  # the other scenarios still say something
        print(f"{sc['name']} failed:\n{err[-4000:]}", file=sys.stderr, flush=True)
        return None
    return dict(json.loads(out.strip().splitlines()[-1]))


def budget_per_hour(integration: str) -> float:
    from integrations.engine.registry import get_integration

    rate = get_integration(integration).definition.rate_limit
    assert rate is not None
    return rate.requests / rate.per_seconds * 3600


def _lag(f: dict[str, Any]) -> str:
    if not f.get("n"):
        return f"{'-':>22}"
    return f"{f['p50_s']:>6} {f['p99_s']:>7} {f['max_s']:>7}"


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"{'scenario':<26} {'hours':>5} {'open':>5} {'req/h':>7} {'budget':>7} {'re-poll/h':>9} "
          f"{'lag s: p50':>10} {'p99':>7} {'max':>7} {'n':>5} {'unseen':>6} {'late p99':>8} {'n':>4} "
          f"{'found':>5} {'max':>7} {'feed':>7} {'gaps':>4} {'rep':>4} {'wall s':>7}")
    for r in results:
        integration = r["name"].split()[0]
        per_hour = sum(r["requests"].values()) / r["hours"]
        share = 100 * per_hour / budget_per_hour(integration)
        every, late, feed = r["lag"]["all"], r["lag"]["late"], r["feed"]
        found = r["lag"].get("found_done", {})
        print(f"{r['name']:<26} {r['hours']:>5g} {r['open_at_start']:>5} {per_hour:>7.0f} {share:>6.1f}% "
              f"{r['repoll_requests'] / r['hours']:>9.0f} {_lag(every):>26} {every.get('n', 0):>5} "
              f"{every.get('unseen', 0):>6} {late.get('p99_s', '-'):>8} {late.get('n', 0):>4} "
              f"{found.get('n', 0):>5} {found.get('max_s', '-'):>7} "
              f"{feed['changes']:>7} {feed['gaps']:>4} {feed['repeats']:>4} {r['loop_s']:>7.0f}")
    print("req/h: every scheduled sync over the simulated hours (first sync excluded); budget: of the declared "
          "rate limit (Checkr 1,200/min, ClearChecks 60/min)")
    print("lag: provider finish time -> warehouse, reports finished in the window; late: held open by us and "
          "finished after the first estimate stored for them; unseen: not landed by the end (counted up to it)")
    print("found: reports first stored already finished (new reports on old candidates: the daily sweep or a "
          "webhook finds them), their count and largest lag (discovery, not refresh)")
    print("targets: Checkr <= 5% with webhooks, <= 20% without; lag p99 <= 60 s with webhooks, <= 3600 s without "
          "(late reports); feed gaps = repeats = 0")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candidates", type=int, default=20_000, help="Checkr candidates in the account")
    ap.add_argument("--open", type=int, default=3_500, help="extra Checkr reports open at the start")
    ap.add_argument("--cc-reports", type=int, default=5_000, help="ClearChecks reports in the account")
    ap.add_argument("--cc-open", type=int, default=1_000, help="extra ClearChecks reports open at the start")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every count above (0.1: a quick run)")
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours")
    ap.add_argument("--webhook-step", type=int, default=30, help="seconds of sandbox time per step with webhooks")
    ap.add_argument("--webhook-hours", type=float, help="simulated hours with webhooks (each step costs real time)")
    ap.add_argument("--today-hours", type=float, help="simulated hours of today's behaviour (its every run is alike)")
    ap.add_argument("--eta-slip-hours", type=float, default=3.0, help="a report that misses its first ETA "
                    "finishes this long after it (Checkr re-estimates then); short enough to finish within the run")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--only", nargs="*", help="only scenarios whose name contains one of these")
    ap.add_argument("--parallel", action="store_true", help="run the scenarios at once (the figures are in "
                    "simulated time; only the real seconds a step takes, which the clock counts, grow)")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args()
    if any((h * 3600) % 1800 for h in (args.hours, args.webhook_hours or 0, args.today_hours or 0)):
        ap.error("hours must be multiples of 0.5 (the schedules' steps)")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        todo = scenarios(args)
        if args.parallel:  # each scenario has its own sandbox and clock: only the machine is shared
            procs = [start(sc, Path(tmp), i) for i, sc in enumerate(todo)]
            results = [finish(sc, p) for sc, p in zip(todo, procs, strict=True)]
        else:
            for i, sc in enumerate(todo):
                print(f"running {sc['name']} ...", file=sys.stderr, flush=True)
                results.append(finish(sc, start(sc, Path(tmp), i)))
    results = [r for r in results if r is not None]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print_table(results)


if __name__ == "__main__":
    main()
