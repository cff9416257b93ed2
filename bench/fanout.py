"""Fan-out benchmark: N connections x every sync of every integration, through Prefect, 1/2/4 workers.

    .venv/bin/python bench/fanout.py [--connections 50] [--workers 1 2 4] [--scale 300] [--shard-size 10]
                                     [--ducklake | --warehouse ducklake:postgres://...]   # adds DuckLake runs

The connections are split over checkr, checkr-partner-staging and clearchecks, each its own sandbox
account (rate limits are per account, as a provider's are per credential: the sandbox's realistic
defaults, 1,200/min for Checkr and 60/min for ClearChecks, unless `--rate provider=N`). One `prefect
server start` (SQLite) runs throughout; for each worker count a fresh warehouse and store, W `prefect
worker start --limit L` processes (`--worker-limit`, default 1), one `sync-fanout` dispatcher per integration (run from this
process, as a user calling the flow would). Printed per run:

- wall time, connections/min, rows/s (rows landed: records added);
- Prefect's per-run overhead: for each shard run, the time from the worker taking it (Pending) to
  its first sync starting, plus from its last sync ending to the run's end (process start, imports,
  pull step, flow setup, artifacts): mean per shard run, and as a share of the wall time x workers;
- peak RSS per worker (the worker process plus the flow-run processes it started, sampled);
- lost / duplicated rows against the sandbox's truth (must be 0 / 0);
- an analyst's queries during the run (`python -m screensync.cluster.analyst`, one every
  `--analyst-every` s, each through `screensync query`'s path): how many, median and slowest answer
  (the target: within 1 s at any time), and any that failed.

Side by side, the yardstick: the same work in one process without Prefect (bench/_fanout_direct.py:
`run_sync` on 4 threads into the embedded file), which also times every warehouse transaction:
the warehouse commit's share of the work. With `--warehouse URL` the direct run and the W runs are
repeated on DuckLake (fresh connection ids per run, so one catalog serves every run); `--ducklake`
starts a throwaway PostgreSQL for its catalog (tests/support/postgres.py: Debian's `postgresql`
package) with the data files in the run's temp directory, and removes it at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent
INTEGRATIONS = {"checkr": "checkr", "checkr-partner-staging": "checkr_staging", "clearchecks": "clearchecks"}
POOL = "bench-fanout"
# what the analyst asks (docs/warehouse.md's example): every provider's checks by status, via the unified view
ANALYST_SQL = "SELECT provider, status, count(*) AS n FROM unified.background_checks GROUP BY ALL"


def start_sandbox(tmp: Path, per_integration: int, scale: int, rates: list[str]) -> tuple[subprocess.Popen[bytes], Any, Any]:
    out = tmp / "sandbox"
    cmd = [sys.executable, str(ROOT / "bench" / "_fanout_sandbox.py"), str(out), "--scale", str(scale),
           "--accounts", *[f"{p}={per_integration}" for p in INTEGRATIONS.values()]]
    if rates:
        cmd += ["--rate", *rates]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp / "sandbox.log", "wb"))  # noqa: SIM115
    deadline = time.monotonic() + 600
    while not (out / "info.json").exists():
        if proc.poll() is not None:
            raise RuntimeError(f"sandbox exited: {(tmp / 'sandbox.log').read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("sandbox did not start within 600 s")
        time.sleep(0.5)
    time.sleep(0.2)
    return proc, json.loads((out / "info.json").read_text()), json.loads((out / "truth.json").read_text())


def connections_for(info: dict[str, Any], tag: str) -> dict[str, list[tuple[str, str, str, str]]]:
    """integration -> [(connection id, account id, token, base url)], one connection per account."""
    out: dict[str, list[tuple[str, str, str, str]]] = {}
    for integration, key in INTEGRATIONS.items():
        section = info[key]
        out[integration] = [
            (f"{tag}-{i:04d}", a["id"], a.get("api_key") or a.get("api_token"), section["base_url"])
            for i, a in enumerate(section["accounts"])
        ]
    return out


def fill_store(path: Path, conns: dict[str, list[tuple[str, str, str, str]]]) -> None:
    from connections.models import Connection, ConnectionMetadata, Credentials
    from connections.store import open_store

    store = open_store(str(path))
    for integration, rows in conns.items():
        for cid, account_id, token, base_url in rows:
            store.add(
                Connection(connection_id=cid, integration=integration, credential_kind="api_key",
                           metadata=ConnectionMetadata(base_url=base_url, environment="sandbox",
                                                       provider_account_id=account_id if "checkr" in integration else None)),
                Credentials(token=token),
            )  # fmt: skip


def audit(warehouse: str, conns: dict[str, list[tuple[str, str, str, str]]], truth: dict[str, Any]) -> tuple[int, int, int]:
    """(rows, lost, duplicated) over every table the truth names, per connection: each table read
    once for all of this run's connections, in one read session (a query per connection and table
    took 4-8 minutes after a 1,000-connection run)."""
    from warehouse.read import read_session

    rows = lost = duplicated = 0
    with read_session(**_target(warehouse), timeout=120) as con:
        for integration, entries in conns.items():
            schema = integration.replace("-", "_")
            key = INTEGRATIONS[integration]
            ids_by_cid = [c[0] for c in entries]
            tables = {t for _, account_id, _, _ in entries for t in truth[key][account_id]}
            found: dict[str, dict[str, dict[str, int]]] = {}  # table -> connection -> id -> count
            for table in tables:
                got = con.execute(
                    f"SELECT connection_id, id, count(*) FROM {schema}.{table} WHERE connection_id IN "
                    "(SELECT unnest($cids)) AND _deleted_at IS NULL GROUP BY ALL", {"cids": ids_by_cid}
                ).fetchall()
                per: dict[str, dict[str, int]] = found.setdefault(table, {})
                for cid, i, n in got:
                    per.setdefault(cid, {})[str(i)] = n
            for cid, account_id, _, _ in entries:
                for table, ids in truth[key][account_id].items():
                    have = found[table].get(cid, {})
                    rows += sum(have.values())
                    duplicated += sum(n - 1 for n in have.values())
                    if table == "accounts":  # keyed by the account; one row per connection
                        lost += 0 if have else 1
                        duplicated += max(0, len(have) - 1)
                    else:
                        lost += len(set(ids) - set(have))
                        duplicated += len(set(have) - set(ids))  # rows the provider does not have
    return rows, lost, duplicated


def _target(warehouse: str) -> dict[str, Any]:
    from common.settings import local_warehouse_file

    local = local_warehouse_file(warehouse)
    return {"path": local} if local is not None else {"path": warehouse}


class ProcessSampler(threading.Thread):
    """Peak RSS of each worker's process tree (the worker and its flow-run processes), and the CPU
    seconds of each process tree it is given (workers, the sandbox, Prefect's server, this process:
    the last reading of every process seen, so flow-run processes that ended still count), sampled;
    with the machine's share of busy CPU, where the CPU goes when the run is not I/O-bound."""

    def __init__(self, pids: dict[str, int], others: dict[str, int] | None = None, alone: tuple[str, ...] = ()) -> None:
        super().__init__(daemon=True)
        self.pids, self.peak = pids, dict.fromkeys(pids, 0)
        self.others, self.alone = others or {}, alone  # `alone`: without their children
        self.cpu: dict[str, dict[int, float]] = {name: {} for name in [*pids, *self.others]}
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        self._busy0 = psutil.cpu_times()
        while not self.stop.wait(0.5):
            self._sample(psutil)
        self._sample(psutil)
        self._busy1 = psutil.cpu_times()

    def _sample(self, psutil: Any) -> None:
        for name, pid in [*self.pids.items(), *self.others.items()]:
            try:
                root = psutil.Process(pid)
                tree = [root] if name in self.alone else [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            total = 0
            for proc in tree:
                try:
                    total += proc.memory_info().rss
                    t = proc.cpu_times()
                    self.cpu[name][proc.pid] = t.user + t.system  # (children_*: counted as their own pids)
                except psutil.Error:
                    continue
            if name in self.peak:
                self.peak[name] = max(self.peak[name], total)

    @property
    def cpu_text(self) -> str:
        """CPU seconds per process tree, and the machine's busy share (all cores) during the run."""
        groups: dict[str, float] = {}
        for name, by_pid in self.cpu.items():
            key = "workers" if name in self.pids else name
            groups[key] = groups.get(key, 0.0) + sum(by_pid.values())
        a, b = self._busy0, self._busy1
        idle = (b.idle + getattr(b, "iowait", 0)) - (a.idle + getattr(a, "iowait", 0))
        total = sum(b) - sum(a)
        busy = 1 - idle / total if total else float("nan")
        return ", ".join(f"{k} {v:.0f}" for k, v in groups.items()) + f"; machine busy {busy:.0%}"


class LoadSampler(threading.Thread):
    """The machine's 1-minute load average, sampled every 5 s during a run (its mean and peak):
    the machine is shared, and the figures mean little without it."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples = [os.getloadavg()[0]]
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(5):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.samples.append(os.getloadavg()[0])

    @property
    def text(self) -> str:
        return f"{sum(self.samples) / len(self.samples):.1f}/{max(self.samples):.1f}"


def prefect_overhead(client: Any, shard_runs: list[Any], results: list[Any]) -> list[float]:
    """Per shard run: Pending -> first sync start, plus last sync end -> run end (seconds)."""
    by_run: dict[str, list[Any]] = {}
    for r in results:
        by_run.setdefault(r["_shard"], []).append(r)
    out = []
    for run in shard_runs:
        states = client.read_flow_run_states(run.id)
        pending = min((s.timestamp for s in states if s.type.value == "PENDING"), default=None)
        mine = by_run.get(str(run.id))
        if pending is None or not mine or run.end_time is None:
            continue
        first = min(r["started_at"] for r in mine)
        last = max(r["finished_at"] for r in mine)
        out.append(max(0.0, (first - pending).total_seconds()) + max(0.0, (run.end_time - last).total_seconds()))
    return out


def run_prefect(args: argparse.Namespace, server: Any, tmp: Path, info: dict[str, Any], truth: dict[str, Any],
                workers: int, warehouse: str, tag: str) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.fanout import read_shard_results, sync_fanout
    from flows.prefect_server import worker_process
    from screensync.cluster.analyst import read_outcomes

    conns = connections_for(info, tag)
    store = tmp / f"connections-{tag}.sqlite"
    fill_store(store, conns)
    env = {**server.env, "SCREENSYNC_WAREHOUSE": warehouse, "SCREENSYNC_CONNECTIONS": str(store),
           "SCREENSYNC_SECRET_KEY": os.environ["SCREENSYNC_SECRET_KEY"], "PWD": str(ROOT),
           "SCREENSYNC_LOG_LEVEL": "WARNING"}
    os.environ.update({k: env[k] for k in ("SCREENSYNC_WAREHOUSE", "SCREENSYNC_CONNECTIONS")})
    procs = {f"w{i}": worker_process(POOL, env=env, cwd=ROOT, log_path=tmp / f"{tag}-w{i}.log", query_seconds=2,
                                     name=f"{tag}-w{i}", limit=args.worker_limit).start() for i in range(workers)}  # fmt: skip
    others = {"sandbox": args.sandbox_pid, "prefect server": server.process.pid, "dispatch": os.getpid()}
    if args.postgres_pid:  # the server's PostgreSQL (its own process tree: pg_ctl daemonizes it)
        others["postgres"] = args.postgres_pid
    analyst_out = tmp / f"analyst-{tag}.jsonl"
    analyst = subprocess.Popen(  # a query every few seconds throughout, as `screensync query` runs one
        [sys.executable, "-m", "screensync.cluster.analyst", "--warehouse", warehouse, "--sql",
         ANALYST_SQL, "--out", str(analyst_out), "--every", str(args.analyst_every)],
        cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "SCREENSYNC_SECRET_KEY"},  # it holds no key
        stdout=subprocess.DEVNULL, stderr=open(tmp / f"analyst-{tag}.log", "wb"))  # noqa: SIM115
    others["analyst"] = analyst.pid
    sampler = ProcessSampler({n: p.pid for n, p in procs.items()}, others, alone=("dispatch",))
    sampler.start()
    states: dict[str, Any] = {}

    def dispatch(integration: str) -> None:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            states[integration] = sync_fanout(integration=integration, shard_size=args.shard_size, return_state=True)

    t0 = time.perf_counter()
    t_start = datetime.now(UTC)
    threads = [threading.Thread(target=dispatch, args=(i,)) for i in conns]
    with LoadSampler() as load:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    wall = time.perf_counter() - t0
    analyst.terminate()
    analyst.wait(timeout=30)
    sampler.stop.set()
    sampler.join()
    for p in procs.values():
        p.stop()

    results: list[dict[str, Any]] = []
    overheads: list[float] = []
    shards: list[str] = []
    with temporary_settings({PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        for state in states.values():
            flt = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[state.state_details.flow_run_id]))
            shard_runs = client.read_flow_runs(flow_run_filter=flt)
            mine = []
            for run in shard_runs:
                for r in read_shard_results(client, run.id) or []:
                    mine.append({**r.model_dump(), "_shard": str(run.id)})
            results += mine
            overheads += prefect_overhead(client, shard_runs, mine)
            shards += shard_spans(shard_runs, mine, t_start)
    rows, lost, duplicated = audit(warehouse, conns, truth)
    n = sum(len(v) for v in conns.values())
    return {
        "run": f"prefect, {workers} worker(s)", "wall_s": wall, "connections": n,
        "failed": sum(1 for r in results if r["status"] not in ("success", "partial")),
        "added": sum(r["added"] for r in results), "rows": rows, "lost": lost, "duplicated": duplicated,
        "shard_runs": len(overheads), "overhead_s": sum(overheads) / len(overheads) if overheads else float("nan"),
        "overhead_share": sum(overheads) / (wall * workers) if wall else float("nan"),
        "peak_rss_mb": max(sampler.peak.values()) / 1e6, "commit_s": None, "load": load.text,
        "shards": sorted(shards), "cpu": sampler.cpu_text, "analyst": read_outcomes(analyst_out),
        "warnings": warehouse_warnings(tmp.glob(f"{tag}-w*.log")),
    }


def warehouse_warnings(logs: Iterable[Path]) -> str:
    """The workers' warnings from the warehouse: vacuums short of memory, skipped or dropped, and
    checkpoints that failed (warehouse/vacuum_copy.py, warehouse/connection.py, warehouse/access.py)."""
    marks = ("ran out of", "no vacuum this time", "vacuum dropped", "closing after a write failed")
    found: Counter[str] = Counter()
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            hit = next((m for m in marks if m in line), None)
            if hit and "WARNING" in line:
                found[hit] += 1
    return ", ".join(f"{n} x '{what}'" for what, n in found.most_common()) or "none"


def shard_spans(shard_runs: list[Any], results: list[dict[str, Any]], t_start: datetime) -> list[str]:
    """Per shard run, where its time went: `name start+first sync..last sync..end` (s after the
    dispatch began), so a run's wall time can be read as shards queued, started and worked, and the
    429s its syncs met, if any."""
    out = []
    for run in shard_runs:
        mine = [r for r in results if r["_shard"] == str(run.id)]
        if not mine or run.start_time is None or run.end_time is None:
            continue
        first, last = min(r["started_at"] for r in mine), max(r["finished_at"] for r in mine)
        at = [(t - t_start).total_seconds() for t in (run.start_time, first, last, run.end_time)]
        limited = sum(r.get("rate_limited") or 0 for r in mine)  # 429s its syncs met
        out.append(f"{run.name} {at[0]:.0f}+{at[1] - at[0]:.0f}..{at[2]:.0f}..{at[3]:.0f}"
                   + (f" ({limited} x 429)" if limited else ""))
    return out


def run_direct(tmp: Path, info: dict[str, Any], truth: dict[str, Any], warehouse: str, tag: str) -> dict[str, Any]:
    conns = connections_for(info, tag)
    store = tmp / f"connections-{tag}.sqlite"
    fill_store(store, conns)
    env = {**os.environ, "SCREENSYNC_WAREHOUSE": warehouse, "SCREENSYNC_CONNECTIONS": str(store)}
    plan = {i: [c[0] for c in rows] for i, rows in conns.items()}
    with LoadSampler() as load:
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "_fanout_direct.py"), json.dumps(plan)],
                             cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"direct run failed:\n{out.stderr[-3000:]}")
    got = json.loads(out.stdout.strip().splitlines()[-1])
    rows, lost, duplicated = audit(warehouse, conns, truth)
    return {**got, "run": "direct (no Prefect), 1 process", "rows": rows, "lost": lost, "duplicated": duplicated,
            "shard_runs": 0, "overhead_s": 0.0, "overhead_share": 0.0, "load": load.text}


def show(backend: str, r: dict[str, Any]) -> None:
    commit = f"{r['commit_s']:.1f}s ({r['commit_s'] / r['wall_s']:.0%})" if r.get("commit_s") is not None else "-"
    print(f"{backend:<9} {r['run']:<30} {r['wall_s']:>7.1f} {r['connections'] / r['wall_s'] * 60:>8.1f} "
          f"{r['added'] / r['wall_s']:>7.1f} {r['overhead_s']:>8.1f} {r['overhead_share']:>6.0%} {commit:>13} "
          f"{r['peak_rss_mb']:>8.0f} {r['lost']:>5} {r['duplicated']:>5} {r['failed']:>6} {r['load']:>9}", flush=True)
    if r.get("shards"):  # start+to first sync..last sync ends..run ends, s after the dispatch
        print(f"    shard runs: {'; '.join(r['shards'])}", flush=True)
    if r.get("cpu"):  # CPU seconds per process tree over the run
        print(f"    CPU s: {r['cpu']}", flush=True)
    if r.get("warnings"):
        print(f"    warehouse warnings in the workers' logs: {r['warnings']}", flush=True)
    if r.get("analyst"):  # the analyst's queries during the run (target: each answered within 1 s)
        a = r["analyst"]
        took = (f"p50 {a.p50_s:.2f} s, max {a.max_s:.2f} s, of which opening at most {a.max_open_s or 0:.2f} s;"
                f" {a.over_1s} over 1 s"
                if a.answered else "none answered")
        print(f"    analyst: {a.answered} queries answered ({took}), {a.not_yet} before the tables existed, "
              f"{a.failed} failed" + (f" (first: {a.first_failure})" if a.first_failure else ""), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=50, help="in all, split over the 3 integrations")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--scale", type=int, default=300, help="sandbox records per account")
    ap.add_argument("--shard-size", type=int, default=10)
    ap.add_argument("--worker-limit", type=int, default=1,
                    help="shards a worker runs at once: above 1 the next shard's process starts while one works")
    ap.add_argument("--rate", nargs="*", default=[], help="provider=requests per minute, e.g. clearchecks=60")
    ap.add_argument("--warehouse", help="a DuckLake URL (ducklake:postgres://...): also run everything on it")
    ap.add_argument("--ducklake", action="store_true",
                    help="also run everything on a DuckLake in a throwaway PostgreSQL started here")
    ap.add_argument("--only-ducklake", action="store_true", help="with --ducklake: skip the file runs")
    ap.add_argument("--no-direct", action="store_true", help="skip the yardstick")
    ap.add_argument("--analyst-every", type=float, default=5.0,
                    help="seconds between the analyst's queries during each Prefect run")
    ap.add_argument("--server-db", choices=["sqlite", "postgres"], default="sqlite",
                    help="the Prefect server's database: its default SQLite file, or a throwaway PostgreSQL "
                         "(the scale-out topology's, docs/scale-out.md)")
    args = ap.parse_args()

    from cryptography.fernet import Fernet

    os.environ.setdefault("SCREENSYNC_SECRET_KEY", Fernet.generate_key().decode())
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    import flows  # noqa: F401  (Prefect defaults before Prefect loads)
    from flows.deploy import ensure_process_pool
    from flows.prefect_server import PrefectServer
    from flows.serve import runner_deployments
    from flows.zombies import ensure_zombie_automation
    from screensync.cluster.services import use_postgres

    per = math.ceil(args.connections / len(INTEGRATIONS))
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmpdir, ExitStack() as stack:
        tmp = Path(tmpdir)
        if args.ducklake:
            from connection_overhead import throwaway_lake

            args.warehouse = stack.enter_context(throwaway_lake(tmp))
        print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        sandbox, info, truth = start_sandbox(tmp, per, args.scale, args.rate)
        args.sandbox_pid, args.postgres_pid = sandbox.pid, None
        try:
            server = PrefectServer(tmp / "prefect-home")
            if args.server_db == "postgres":
                from tests.support.postgres import ThrowawayPostgres

                pg = stack.enter_context(ThrowawayPostgres())
                use_postgres(server, pg.create_database("prefect"))
                args.postgres_pid = pg.postmaster_pid
            with server:
                from prefect.settings import PREFECT_API_URL, temporary_settings

                with temporary_settings({PREFECT_API_URL: server.api_url}):
                    ensure_process_pool(POOL)
                    for d in runner_deployments(["shard"], work_pool=POOL, checkout=ROOT):
                        d.apply()
                    ensure_zombie_automation()
                print(f"{per * len(INTEGRATIONS)} connections ({per} per integration) x every sync, sandbox scale "
                      f"{args.scale}, shard size {args.shard_size}, workers --limit {args.worker_limit}, "
                      f"Prefect server on {args.server_db}", flush=True)
                print(f"{'backend':<9} {'run':<30} {'wall s':>7} {'conn/min':>8} {'rows/s':>7} {'ovh s':>8} "
                      f"{'ovh %':>6} {'commit':>13} {'RSS MB':>8} {'lost':>5} {'dup':>5} {'failed':>6} {'load':>9}", flush=True)
                backends = [] if args.only_ducklake else [("file", None)]
                backends += [("ducklake", args.warehouse)] if args.warehouse else []
                for backend, url in backends:
                    if not args.no_direct:
                        wh = url or str(tmp / "direct.duckdb")
                        show(backend, run_direct(tmp, info, truth, wh, f"{backend}-direct"))
                    for w in args.workers:
                        wh = url or str(tmp / f"w{w}.duckdb")
                        show(backend, run_prefect(args, server, tmp, info, truth, w, wh, f"{backend}-w{w}"))
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=30)


if __name__ == "__main__":
    main()
