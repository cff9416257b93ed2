"""DuckLake commit behaviour with several writer processes, beside one DuckDB file as the yardstick.

Each writer is one connection's sync committing page transactions built from the warehouse's own
functions (tests/warehouse/ducklake_shapes.py): the upsert of a page of records into the shared
model table, its superseded versions and seen keys, and the checkpoint.

- first-load: new records (INSERT only) + an appended checkpoint row, never retried: every
  failure is counted.
- resync: the same records changed on every page (UPDATE path) + the checkpoint by `save_position`,
  each page retried whole on a transaction conflict. (Until issue 15 `save_position` UPDATEd a
  shared `sync_state` row; it now appends to `sync_positions`, so this is resync-append-state with
  the warehouse's own checkpoint code; the figures in docs/scale-out-notes.md are from before.)
- resync-append-state: the same, with the checkpoint appended to the spike's own table.
- resync-append-only: the same changes written as appended versions (`spike.checks_versions`, the
  current row of a key being its newest version) + an appended checkpoint, never retried.

Needs PostgreSQL's server binaries (`apt-get install postgresql`); starts a throwaway cluster.
`scan ms`: one aggregate over the model table afterwards (what the files written cost a reader).

Run: .venv/bin/python bench/ducklake_commits.py [--procs 1 2 4] [--pages 40] [--rows 25] [--rounds 1] [--inline N]
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from tests.support.postgres import ThrowawayPostgres  # noqa: E402
from tests.warehouse import ducklake_shapes as shapes  # noqa: E402
from warehouse import ducklake  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _spawn(target: Any, url: str, cids: list[str], *args: Any) -> tuple[list[dict[str, Any]], float]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(cids) + 1), ctx.Queue()
    procs = [ctx.Process(target=target, args=(url, cid, *args, barrier, results)) for cid in cids]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)  # every writer has attached: time the writes only
    started = time.perf_counter()
    out = [results.get(timeout=1800) for _ in procs]
    wall = time.perf_counter() - started
    for p in procs:
        p.join()
    return out, wall


def _normalise(message: str) -> str:
    """The line that says what failed (DuckLake's second line; the rest can be the whole commit SQL)."""
    lines = message.splitlines()
    return re.sub(r"\d+", "N", lines[1] if len(lines) > 1 else message)[:140]


def run_scenario(
    pg: ThrowawayPostgres, scenario: str, procs: int, pages: int, rows: int, inline: int | None
) -> dict[str, Any]:
    db = pg.create_database()
    data = tempfile.mkdtemp(prefix="lake-")
    url = f"ducklake:postgres://{db.user}@{db.host}:{db.port}/{db.name}?data={data}"
    if inline is not None:
        url += f"&inline={inline}"
    con = ducklake.connect(url)
    shapes.setup(con)
    cids = [f"conn-{i}" for i in range(procs)]
    if scenario in ("first-load", "resync-append-only"):
        if scenario == "first-load":
            results, wall = _spawn(shapes.first_load_worker, url, cids, pages, rows)
        else:
            shapes.seed(con, cids, rows)
            results, wall = _spawn(shapes.append_only_worker, url, cids, pages, rows)
        failures = [e for r in results for e in r["errors"]]
        attempts = procs * pages
        conflicts = failures
    else:
        shapes.seed(con, cids, rows)
        results, wall = _spawn(shapes.resync_worker, url, cids, pages, rows, scenario == "resync-append-state")
        conflicts = [m for r in results for m in r["conflicts"]]
        attempts = sum(sum(r["attempts"]) for r in results)
        failures = []
    latencies = [x for r in results for x in r["latencies"]]
    files = sum(1 for p in Path(data).rglob("*") if p.is_file())
    started = time.perf_counter()
    scanned = shapes.CURRENT if scenario == "resync-append-only" else "spike.checks"
    con.execute(f"SELECT count(*), count(DISTINCT id), max(_hash) FROM {scanned}").fetchall()
    scan = time.perf_counter() - started
    con.close()
    pg.drop_database(db.name)
    return {
        "scenario": scenario,
        "procs": procs,
        "pages": procs * pages,
        "attempts": attempts,
        "conflicts": len(conflicts),
        "failed": len(failures),
        "max_attempts": max((max(r.get("attempts", [1])) for r in results), default=1),
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * _pct(latencies, 0.95),
        "wall_s": wall,
        "pages_per_s": procs * pages / wall,
        "files": files,
        "scan_ms": 1000 * scan,
        "kinds": collections.Counter(_normalise(m) for m in conflicts),
        "examples": {_normalise(m): m for m in conflicts},
    }


def yardstick(pages: int, rows: int) -> dict[str, Any]:
    """The same page transactions on one local DuckDB file, one writer (all it allows)."""
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "wh.duckdb"))
        shapes.setup(con, versions=False)
        first, resync = [], []
        for p in range(pages):
            started = time.perf_counter()
            shapes.page_transaction(con, shapes.stage(range(p * rows, (p + 1) * rows), 0), connection_id="c",
                                    run_id="r", attempt_id="a", checkpoint={"page": p}, append_only_state=True)
            first.append(time.perf_counter() - started)
        for p in range(pages):
            started = time.perf_counter()
            shapes.page_transaction(con, shapes.stage(range(rows), p + 1), connection_id="c", run_id="r",
                                    attempt_id="a", checkpoint={"page": p}, append_only_state=False)
            resync.append(time.perf_counter() - started)
        con.close()
    return {"first-load": first, "resync": resync}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=1, help="repeat each scenario (rare failures need several)")
    parser.add_argument("--scenarios", nargs="+",
                        default=["first-load", "resync", "resync-append-state", "resync-append-only"])
    parser.add_argument("--inline", type=int, default=None,
                        help="DuckLake's data-inlining row limit (default: DuckLake's, 10 rows)")
    args = parser.parse_args()

    print(f"duckdb {duckdb.__version__}; {args.pages} pages of {args.rows} records per writer; "
          f"inlining limit {args.inline if args.inline is not None else 'default (10)'}")
    base = yardstick(args.pages, args.rows)
    for name, lat in base.items():
        print(f"yardstick (one DuckDB file, 1 writer) {name:<20} p50 {1000 * statistics.median(lat):6.1f} ms  "
              f"p95 {1000 * _pct(lat, 0.95):6.1f} ms")
    header = (f"{'scenario':<20} {'procs':>5} {'pages':>5} {'attempts':>8} {'conflicts':>9} {'failed':>6} "
              f"{'rate':>6} {'max try':>7} {'p50 ms':>7} {'p95 ms':>7} {'wall s':>7} {'pages/s':>7} {'files':>6} "
              f"{'scan ms':>7}")
    kinds: collections.Counter[str] = collections.Counter()
    examples: dict[str, str] = {}
    with ThrowawayPostgres() as pg:
        print(f"PostgreSQL catalog: {pg.bin}")
        print(header)
        for scenario in args.scenarios:
            for procs in args.procs:
                for _ in range(args.rounds):
                    r = run_scenario(pg, scenario, procs, args.pages, args.rows, args.inline)
                    kinds.update(r["kinds"])
                    examples.update(r["examples"])
                    rate = r["conflicts"] / r["attempts"] if r["attempts"] else 0.0
                    print(f"{r['scenario']:<20} {r['procs']:>5} {r['pages']:>5} {r['attempts']:>8} "
                          f"{r['conflicts']:>9} {r['failed']:>6} {rate:>6.1%} {r['max_attempts']:>7} "
                          f"{r['p50_ms']:>7.1f} {r['p95_ms']:>7.1f} {r['wall_s']:>7.1f} {r['pages_per_s']:>7.1f} "
                          f"{r['files']:>6} {r['scan_ms']:>7.1f}", flush=True)
    if kinds:
        print("errors met (digits replaced by N):")
        for kind, n in kinds.most_common():
            print(f"  {n:>5}  {kind}")
        print("one of each (first 3 lines; DuckLake's can go on with the commit's SQL and row values):")
        for text in examples.values():
            print("  " + "\n  ".join(text.splitlines()[:3]))


if __name__ == "__main__":
    main()
