"""Incremental sync with no changes: at most one request per list sync plus one per open report.

    .venv/bin/python bench/sync_incremental.py [--records 20000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._sandbox_proc import ROOT, sandbox_process, set_rate_limit
from warehouse.read import query

SYNCS = ("account", "candidates", "reports", "packages", "invitations", "invoices")


def run(info_path: Path, db: Path, sync: str) -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "_sync_once.py"), str(info_path), "checkr", "checkr",
                          sync, str(db)], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20_000)
    args = ap.parse_args()
    with sandbox_process(scale=args.records) as info, tempfile.TemporaryDirectory() as tmp:
        set_rate_limit(info, "checkr", 0)
        info_path = Path(tmp) / "info.json"
        info_path.write_text(json.dumps(info))
        db = Path(tmp) / "wh.duckdb"
        first = {s: run(info_path, db, s) for s in SYNCS}
        ((open_reports,),) = query("SELECT count(*) FROM checkr.reports WHERE status NOT IN ('complete', 'canceled')",
                                   path=db)
        second = {s: run(info_path, db, s) for s in SYNCS}
    print(f"{'sync':>12} {'first requests':>15} {'again requests':>15} {'again changed':>14} {'allowed':>8}")
    for s in SYNCS:
        allowed = open_reports if s == "reports" else ("pages" if s in ("packages", "invitations", "invoices") else 1)
        changed = second[s]["added"] + second[s]["updated"]
        print(f"{s:>12} {first[s]['requests']:>15} {second[s]['requests']:>15} {changed:>14} {allowed!s:>8}")
    print(f"open reports after the first sync: {open_reports}")
    print("target: candidates 1 request (incremental), reports one per open report, nothing changed")


if __name__ == "__main__":
    main()
