"""Rate-limited sync benchmark: with the sandbox limited to 600 requests a minute, a 300-page
sync should see zero 429s and run within 10% of the limit's pace.

    .venv/bin/python bench/sync_rate_limited.py [--pages 300] [--per-minute 600]
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--per-minute", type=int, default=600)
    args = ap.parse_args()
    # the candidates sync pages 100 at a time; account 0 holds ~92% of `scale` candidates
    with sandbox_process(scale=args.pages * 110) as info, tempfile.TemporaryDirectory() as tmp:
        set_rate_limit(info, "checkr", args.per_minute)
        info_path = Path(tmp) / "info.json"
        info_path.write_text(json.dumps(info))
        out = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "_sync_once.py"), str(info_path), "checkr", "checkr", "candidates",
             str(Path(tmp) / "wh.duckdb")],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
    pace = r["requests"] / r["seconds"] * 60
    ideal = r["requests"] / args.per_minute * 60
    print(f"{'limit/min':>9} {'pages':>6} {'requests':>8} {'429s':>5} {'seconds':>8} {'ideal s':>8} {'pace/min':>9} {'of limit':>8} status")
    print(f"{args.per_minute:>9} {r['pages']:>6} {r['requests']:>8} {r['rate_limited']:>5} {r['seconds']:>8.1f} {ideal:>8.1f} "
          f"{pace:>9.0f} {pace / args.per_minute:>8.1%} {r['status']}")
    print("target: zero 429s; pace within 10% of the limit (>= 90%)")


if __name__ == "__main__":
    main()
