"""The full sync of two checkouts side by side, on the same machine in one run.

A figure recorded on another day (or another machine) is no yardstick for a regression: this runs
the same first sync of `candidates` from this checkout and from another one (say a `git worktree`
of an older commit), each against its own sandbox, alternating, and prints CPU seconds and peak RSS.

    git worktree add /tmp/base <commit>
    .venv/bin/python bench/sync_ab.py --base /tmp/base --records 100000 --runs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def one_run(checkout: Path, records: int) -> dict[str, Any]:
    """Start `checkout`'s own sandbox and sync from `checkout` (its own bench child), in a subprocess."""
    code = (
        "import json, sys, tempfile, subprocess, resource\n"
        "from pathlib import Path\n"
        f"sys.path[:0] = [{str(checkout)!r}, {str(checkout / 'bench')!r}]\n"
        "from _sandbox_proc import sandbox_process, set_rate_limit\n"
        f"with sandbox_process(scale={records}) as info, tempfile.TemporaryDirectory() as tmp:\n"
        "    set_rate_limit(info, 'checkr', 0)\n"
        "    ip = Path(tmp) / 'info.json'; ip.write_text(json.dumps(info))\n"
        "    b = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        f"    out = subprocess.run([sys.executable, {str(checkout / 'bench' / '_sync_once.py')!r}, str(ip), 'checkr',"
        " 'checkr', 'candidates', str(Path(tmp) / 'wh.duckdb')],"
        f" cwd={str(checkout)!r}, capture_output=True, text=True, check=True)\n"
        "    a = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "    d = json.loads(out.stdout.strip().splitlines()[-1])\n"
        "    import warehouse\n"
        "    d['code'] = str(Path(warehouse.__file__).parent.parent)\n"
        "    d['child_cpu_s'] = a.ru_utime - b.ru_utime + a.ru_stime - b.ru_stime\n"
        "    print(json.dumps(d))\n"
    )
    # the checkout's own code first: an editable install in the shared .venv would otherwise import this one
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=checkout, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="the other checkout (e.g. a git worktree of an older commit)")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    print(f"{'checkout':<40} {'candidates':>10} {'sync s':>7} {'CPU s':>6} {'peak RSS MB':>11} {'rows':>8}")
    for _ in range(args.runs):
        for checkout in (args.base.resolve(), ROOT):
            r = one_run(checkout, args.records)
            assert Path(r["code"]).resolve() == checkout, f"ran {r['code']}'s code, not {checkout}'s"
            print(f"{checkout!s:<40} {args.records:>10} {r['seconds']:>7.2f} {r['child_cpu_s']:>6.2f} "
                  f"{r['peak_rss_mb']:>11.0f} {r['added']:>8}", flush=True)


if __name__ == "__main__":
    main()
