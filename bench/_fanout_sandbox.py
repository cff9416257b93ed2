"""Child process for bench/fanout.py: sandbox providers with N accounts each, their truth on disk.

    python bench/_fanout_sandbox.py OUT_DIR --accounts checkr=17 checkr_staging=17 clearchecks=16 --scale 300

Serves each provider on a loopback port of its own (the sandbox's realistic per-account rate limits
unless `--rate provider=N` per minute), then writes `OUT_DIR/truth.json` (provider -> account id ->
table -> record ids, from the sandbox's ground truth) and last `OUT_DIR/info.json` (the providers'
info: base URL and each account's token), and serves until terminated.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _pairs(values: list[str]) -> dict[str, int]:
    return {k: int(v) for k, v in (item.split("=", 1) for item in values)}


def main() -> None:
    from common.asgi_thread import serve_in_thread as serve_asgi
    from sandbox.checkr import CheckrProvider
    from sandbox.clearchecks import ClearChecksProvider
    from sandbox.clock import SandboxClock, iso
    from sandbox.truth import normalize

    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--accounts", nargs="+", required=True, help="provider=N")
    ap.add_argument("--rate", nargs="*", default=[], help="provider=requests per minute (default: the sandbox's)")
    ap.add_argument("--scale", type=int, default=300)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    accounts, rates = _pairs(args.accounts), _pairs(args.rate)
    clock = SandboxClock()
    providers: dict[str, Any] = {}
    for key, n in accounts.items():
        if key == "clearchecks":
            providers[key] = ClearChecksProvider(seed=args.seed, scale=args.scale, clock=clock,
                                                 rate_limit=rates.get(key), accounts=n)
        else:
            providers[key] = CheckrProvider(seed=args.seed, scale=args.scale, clock=clock, rate_limit=rates.get(key),
                                            key=key, environment="staging" if "staging" in key else "production",
                                            accounts=n)  # fmt: skip
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ExitStack() as stack:
        urls = {key: stack.enter_context(serve_asgi(p.app)) for key, p in providers.items()}
        truth: dict[str, dict[str, dict[str, list[str]]]] = {}
        info: dict[str, Any] = {}
        at = iso(clock.now())
        for key, provider in providers.items():
            info[key] = provider.info(urls[key])
            truth[key] = {}
            for account_id in (a["id"] for a in info[key]["accounts"]):
                exported = provider.export(account_id)[account_id]
                removed = provider.removed(account_id)[account_id]
                t = normalize(key, account_id, at, exported, removed, provider.truth_tables)
                truth[key][account_id] = {table: sorted(t.ids(table)) for table in t.tables}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "truth.json").write_text(json.dumps(truth))
        (args.out / "info.json").write_text(json.dumps(info))
        stop.wait()


if __name__ == "__main__":
    main()
