"""Where a small connection's sync time goes: per-phase figures per sync, file and DuckLake.

    .venv/bin/python bench/connection_overhead.py [--connections 30] [--scale 300] [--threads 1]
                                                  [--ducklake] [--profile out.prof]

The fan-out's work without Prefect (bench/fanout.py's sandbox, store and connections: every sync of
every integration for N connections), run by `run_sync` in this process on `--threads` threads, with
the warehouse and engine calls timed (time.perf_counter around each, inclusive, outermost call per
thread only). Per backend it prints, per sync, the mean seconds in each phase:

- open: `Warehouse(...)` (the first session: attach / meta DDL checks);
- ddl: `ensure_tables` + `use_view_parts` (tables, views);
- state: reading the state and beginning the attempt;
- validate: validating pages and staging them as Arrow;
- write: `write_page` (records + checkpoint, one transaction each);
- finish: completing the attempt, counting owed records, recording the run;
- refs: refetching owed records and fetching referenced ones (reads + HTTP);
- fetch/other: the rest of the sync: waiting for the provider's pages (the rate budget), client set-up;

and the warehouse sessions opened (file: attaches, each ending in a checkpoint; lake: commits that
conflicted with another writer's and were run again). With several threads the phases include
waiting for the process's writer (the file's one, a lake session's turn). `--ducklake`
adds the same run on a DuckLake in a throwaway PostgreSQL (tests/support/postgres.py) started and
removed here. `--profile` writes a cProfile of each run (one thread: cProfile sees only the main one).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PHASES = ("open", "ddl", "state", "validate", "write", "finish", "refs")


class PhaseClock:
    """Inclusive seconds per phase, summed over threads; a call inside another timed call of the
    same thread is not counted again (write_page's staging is 'write', not 'validate')."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._local = threading.local()

    def wrap(self, owner: Any, name: str, phase: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kw: Any) -> Any:
            outer = phase in ("sync", "attach", "detach", "conflicts")  # around or inside the others: counted apart
            if not outer and getattr(self._local, "inside", False):
                return original(*args, **kw)
            if not outer:
                self._local.inside = True
            t0 = time.perf_counter()
            try:
                return original(*args, **kw)
            finally:
                spent = time.perf_counter() - t0
                if not outer:
                    self._local.inside = False
                with self._lock:
                    self.seconds[phase] += spent
                    self.calls[phase] += 1

        setattr(owner, name, timed)

    def wrap_session(self, owner: Any, name: str, phase: str) -> None:
        """A context-manager method: count it (sessions opened)."""
        original = getattr(owner, name)

        @contextmanager
        def counted(*args: Any, **kw: Any) -> Iterator[Any]:
            with self._lock:
                self.calls[phase] += 1
            with original(*args, **kw) as value:
                yield value

        setattr(owner, name, counted)


def instrument() -> PhaseClock:
    import integrations.engine.list_sync as list_sync
    import integrations.engine.sync_runner as runner
    from integrations.engine.sync_run import SyncRun
    from warehouse import retry
    from warehouse.access import FileWriter
    from warehouse.loader import Warehouse

    clock = PhaseClock()
    clock.wrap(Warehouse, "__init__", "open")
    for name in ("ensure_tables", "use_view_parts"):
        clock.wrap(Warehouse, name, "ddl")
    for name in ("get_state", "begin_attempt"):
        clock.wrap(Warehouse, name, "state")
    clock.wrap(SyncRun, "validate_page", "validate")
    clock.wrap(Warehouse, "stage", "validate")
    clock.wrap(Warehouse, "write_page", "write")
    for name in ("complete_attempt", "count_owed", "record_run"):
        clock.wrap(Warehouse, name, "finish")
    for name in ("refetch_owed", "fetch_references"):
        clock.wrap(runner, name, "refs")
    clock.wrap(runner, "run_sync", "sync")
    clock.wrap(retry, "backoff", "conflicts")  # called once per conflicted commit (DuckLake)
    clock.wrap(FileWriter, "_attach", "attach")
    clock.wrap(FileWriter, "_detach", "detach")
    clock.wrap_session(Warehouse, "_session", "sessions")
    del list_sync
    return clock


def run_all(warehouse: str, plan: dict[str, list[str]], threads: int, store_path: Path,
            profile: Path | None) -> tuple[float, int, int]:
    """Every sync of every connection of `plan`; (wall s, syncs, rows added)."""
    from connections.store import open_store
    from integrations.engine.registry import get_integration
    from integrations.engine.sync_runner import run_sync
    from warehouse.loader import Warehouse

    store = open_store(str(store_path))
    added = syncs = 0
    failed: list[str] = []
    lock = threading.Lock()

    def one(integration: str, cid: str) -> None:
        nonlocal added, syncs
        for sync in [s.name for s in get_integration(integration).definition.syncs]:
            wh = Warehouse(warehouse, lock_timeout=120, purpose=f"bench {cid}/{sync}")
            r = run_sync(integration, cid, sync, warehouse=wh, store=store)
            with lock:
                added += r.added
                syncs += 1
                if not r.ok:
                    failed.append(f"{cid}/{sync}: {r.error}")

    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    if threads == 1:  # in this thread: cProfile sees it
        for i, cids in plan.items():
            for c in cids:
                one(i, c)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for f in [pool.submit(one, i, c) for i, cids in plan.items() for c in cids]:
                f.result()
    if prof:
        prof.disable()
        prof.dump_stats(str(profile))
    wall = time.perf_counter() - t0
    if failed:
        print(f"  {len(failed)} sync(s) failed, e.g. {failed[0]}", flush=True)
    return wall, syncs, added


def report(backend: str, clock: PhaseClock, wall: float, syncs: int, added: int, threads: int) -> dict[str, Any]:
    per = {p: clock.seconds[p] / syncs for p in PHASES}
    total = clock.seconds["sync"] / syncs + per["open"]  # run_sync plus the Warehouse each sync opens
    per["fetch/other"] = max(0.0, total - sum(per.values()))
    row = {"backend": backend, "threads": threads, "syncs": syncs, "wall_s": round(wall, 1),
           "rows_s": round(added / wall, 1), "per_sync_s": round(total, 3),
           "sessions_per_sync": round(clock.calls["sessions"] / syncs, 1),
           "attaches_per_sync": round(clock.calls["attach"] / syncs, 1),
           "detach_s_per_sync": round(clock.seconds["detach"] / syncs, 3),
           "conflicts_per_sync": round(clock.calls["conflicts"] / syncs, 2),
           **{f"{k}_s": round(v, 3) for k, v in per.items()}}
    cells = "  ".join(f"{k} {v:.3f}" for k, v in per.items())
    print(f"{backend:<9} threads {threads}  {syncs} syncs  wall {wall:.1f}s  {added / wall:.0f} rows/s  "
          f"per sync {total:.3f}s: {cells}  | sessions/sync {row['sessions_per_sync']} attaches/sync "
          f"{row['attaches_per_sync']} (detach {row['detach_s_per_sync']:.3f}s) conflicts/sync "
          f"{row['conflicts_per_sync']}", flush=True)
    return row


@contextmanager
def throwaway_lake(tmp: Path) -> Iterator[str]:
    """A DuckLake URL on a PostgreSQL cluster made for this run (removed afterwards)."""
    from tests.support.postgres import ThrowawayPostgres

    with ThrowawayPostgres() as pg:
        db = pg.create_database("bench_lake")
        data = tmp / "lake-data"
        data.mkdir()
        os.chmod(tmp, 0o755)
        yield f"ducklake:postgres://{db.user}@{db.host}:{db.port}/{db.name}?data={data}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=30)
    ap.add_argument("--scale", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ducklake", action="store_true", help="also run on a DuckLake in a throwaway PostgreSQL")
    ap.add_argument("--only-ducklake", action="store_true")
    ap.add_argument("--profile", type=Path, help="cProfile of each run to PATH.<backend>.prof (one thread)")
    ap.add_argument("--json", type=Path, help="append the rows as JSON lines here")
    args = ap.parse_args()

    from cryptography.fernet import Fernet

    os.environ.setdefault("SCREENSYNC_SECRET_KEY", Fernet.generate_key().decode())
    os.environ.setdefault("SCREENSYNC_LOG_LEVEL", "WARNING")
    from fanout import INTEGRATIONS, audit, connections_for, fill_store, start_sandbox

    per = math.ceil(args.connections / len(INTEGRATIONS))
    print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmpdir:
        tmp = Path(tmpdir)
        sandbox, info, truth = start_sandbox(tmp, per, args.scale, [])
        try:
            runs: list[tuple[str, Callable[[], Any]]] = []
            if not args.only_ducklake:
                runs.append(("file", lambda: nullwh(str(tmp / "overhead.duckdb"))))
            if args.ducklake or args.only_ducklake:
                runs.append(("ducklake", lambda: throwaway_lake(tmp)))
            clock = instrument()
            for backend, target in runs:
                with target() as warehouse:
                    conns = connections_for(info, backend)
                    store = tmp / f"store-{backend}.sqlite"
                    fill_store(store, conns)
                    os.environ["SCREENSYNC_CONNECTIONS"] = str(store)
                    plan = {i: [c[0] for c in rows] for i, rows in conns.items()}
                    clock.seconds.clear()
                    clock.calls.clear()
                    wall, syncs, added = run_all(warehouse, plan, args.threads, store,
                                                 args.profile.with_suffix(f".{backend}.prof") if args.profile else None)
                    row = report(backend, clock, wall, syncs, added, args.threads)
                    _rows, lost, dup = audit(warehouse, conns, truth)
                    print(f"  lost {lost} duplicated {dup}  load average {os.getloadavg()[0]:.1f}", flush=True)
                    if args.json:
                        with args.json.open("a") as fh:
                            fh.write(json.dumps({**row, "lost": lost, "dup": dup,
                                                 "load": os.getloadavg()[0]}) + "\n")
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=30)


@contextmanager
def nullwh(path: str) -> Iterator[str]:
    yield path


if __name__ == "__main__":
    main()
