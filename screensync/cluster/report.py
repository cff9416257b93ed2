"""The cluster run's summary: runs per worker, retried runs, rows against the sandbox's truth, analyst answers."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
from pydantic import BaseModel

from screensync.cluster.analyst import AnalystFigures
from screensync.cluster.config import PlannedConnection
from screensync.cluster.isolation import Isolation
from screensync.cluster.submit import STRATEGY, Job
from screensync.cluster.watch import WatchResult
from tests.soak.compare import KINDS, Comparison, compare


class TruthFigures(BaseModel):
    records_expected: int
    rows_landed: int
    mismatches: dict[str, int]  # kind (missing, duplicated, stale, ...) -> count
    examples: list[str]

    @property
    def exact(self) -> bool:
        return not any(self.mismatches.values())


class ClusterReport(BaseModel):
    workers: list[str]
    isolation: list[Isolation]
    connections: int
    strategy: str
    warehouse: str
    runs_per_worker: dict[str, int]
    run_states: dict[str, int]  # final state name -> runs
    jobs_completed: int
    jobs: int
    killed: str | None
    killed_runs: list[str]  # the killed host's unfinished runs
    killed_runs_completed_elsewhere: dict[str, str | None]  # killed run -> the worker of its job's completed run
    retried_runs: int
    crashed_by_heartbeat: int
    crashed_pending: int
    crashed_other: int
    resumed_syncs: int  # syncs that resumed from a checkpoint (events `screensync.sync.*` with resumed=true)
    truth: TruthFigures
    analyst: AnalystFigures
    wall_s: float

    def lines(self) -> list[str]:
        t, a = self.truth, self.analyst
        out = [
            f"cluster: {len(self.workers)} worker host(s) {self.workers}, {self.connections} connection(s), "
            f"warehouse {self.warehouse}",
            f"  submission: {self.strategy}",
            f"  jobs completed: {self.jobs_completed}/{self.jobs} in {self.wall_s:.0f}s; "
            f"run states {dict(sorted(self.run_states.items()))}",
            f"  runs per worker: {dict(sorted(self.runs_per_worker.items()))}",
        ]
        if self.killed:
            moved = ", ".join(f"{run} -> {w or 'NOT COMPLETED'}" for run, w in self.killed_runs_completed_elsewhere.items())
            out.append(f"  killed host {self.killed} with {len(self.killed_runs)} run(s) in flight; completed on: {moved}")
        out += [
            f"  retried runs: {self.retried_runs} (crashed by the heartbeat automation: {self.crashed_by_heartbeat}, "
            f"taken but never started: {self.crashed_pending}, by their worker: {self.crashed_other}); "
            f"syncs resumed from a checkpoint: {self.resumed_syncs}",
            f"  rows: {t.rows_landed} landed, {t.records_expected} in the sandbox's truth; mismatches "
            f"{t.mismatches} -> {'EXACT' if t.exact else 'NOT EXACT'}",
            *[f"    {e}" for e in t.examples[:10]],
            f"  analyst: {a.answered} queries answered (p50 {_s(a.p50_s)}, max {_s(a.max_s)}), {a.not_yet} before the "
            f"first tables, {a.failed} failed" + (f" (first: {a.first_failure})" if a.first_failure else ""),
        ]
        return out


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _single_keyed_as_stored(warehouse: str, schema: str, connection_id: str, truth: Any, singles: set[str]) -> Any:
    """A single-object sync (an account) stores its one record under the id its mapping gives it, which
    need not be the key the truth uses (ClearChecks: `account` vs the account id): compare the one
    record with the one row, whatever its id. Zero or two rows still show as missing or duplicated."""
    from warehouse.query import run_query

    tables = dict(truth.tables)
    for table in singles & set(tables):
        sql = f"SELECT CAST(id AS VARCHAR) FROM {schema}.{table} WHERE connection_id = '{connection_id}'"
        stored = run_query(warehouse, sql, limit=2, timeout=60)[1]
        if len(stored) == 1 and len(tables[table]) == 1:
            tables[table] = {stored[0][0]: next(iter(tables[table].values()))}
    return truth.model_copy(update={"tables": tables})


def check_truth(warehouse: str, planned: list[PlannedConnection], sandbox: Any) -> TruthFigures:
    """Every connection's tables against its sandbox account's truth (tests/soak/compare.py's rules)."""
    from integrations.engine.registry import get_integration
    from warehouse.query import run_query

    comparison = Comparison()
    landed = 0
    truths: dict[tuple[str, str], Any] = {}
    for c in planned:
        truth = truths.setdefault((c.provider, c.account_id), sandbox.truth(c.provider, c.account_id))
        definition = get_integration(c.integration).definition
        schema = definition.schema_name
        singles = {s.table for s in definition.syncs if s.single}
        truth = _single_keyed_as_stored(warehouse, schema, c.connection_id, truth, singles)
        compare(warehouse, c.integration, c.connection_id, truth, comparison)  # type: ignore[arg-type]
        for table in truth.tables:
            sql = f"SELECT count(*) FROM {schema}.{table} WHERE connection_id = '{c.connection_id}' AND _deleted_at IS NULL"
            landed += int(run_query(warehouse, sql, limit=1, timeout=60)[1][0][0])
    return TruthFigures(
        records_expected=sum(comparison.compared.values()),
        rows_landed=landed,
        mismatches={kind: comparison.by_kind()[kind] for kind in KINDS},
        examples=comparison.examples,
    )


def sync_events(api_url: str, run_ids: list[str]) -> list[dict[str, Any]]:
    """Every `screensync.sync.*` event related to these flow runs (one per finished sync)."""
    body: dict[str, Any] = {
        "filter": {
            "event": {"prefix": ["screensync.sync."]},
            "related": {"id": [f"prefect.flow-run.{r}" for r in run_ids]},
        },
        "limit": 50,  # the most the server returns a page
    }
    events: list[dict[str, Any]] = []
    response = httpx.post(f"{api_url}/events/filter", json=body, timeout=30)
    while True:
        response.raise_for_status()
        page = response.json()
        events += page["events"]
        if not page.get("next_page"):
            return events
        response = httpx.get(page["next_page"], timeout=30)


def resumed_syncs(api_url: str, run_ids: list[str], expected_events: int, timeout: float = 60) -> int:
    """Syncs of these runs whose event says they resumed from a checkpoint. Events reach the server
    a little after the run ends, so this waits (up to `timeout`) for all `expected_events` of them."""
    deadline = time.monotonic() + timeout
    while True:
        events = sync_events(api_url, run_ids)
        if len(events) >= expected_events or time.monotonic() > deadline:
            return sum(1 for e in events if (e.get("payload") or {}).get("resumed"))
        time.sleep(1)


def _events_expected(jobs: list[Job], watched: WatchResult) -> int:
    """One event per sync per connection of each completed run."""
    from integrations.engine.registry import get_integration

    return sum(
        len(job.connection_ids) * len(get_integration(job.integration).definition.syncs)
        for job in jobs
        for run in job.runs
        if watched.states.get(run) == "Completed"
    )


def build_report(
    *,
    workers: list[str],
    planned: list[PlannedConnection],
    jobs: list[Job],
    watched: WatchResult,
    warehouse: str,
    sandbox: Any,
    analyst: AnalystFigures,
    api_url: str,
    isolation: list[Isolation],
) -> ClusterReport:
    completed_worker: dict[int, str | None] = {}
    for i, job in enumerate(jobs):
        done = [r for r in job.runs if watched.states.get(r) == "Completed"]
        completed_worker[i] = watched.worker_of.get(done[-1]) if done else None
    job_of = {run: i for i, job in enumerate(jobs) for run in job.runs}
    all_runs = [r for job in jobs for r in job.runs]
    return ClusterReport(
        workers=workers,
        isolation=isolation,
        connections=len(planned),
        strategy=STRATEGY,
        warehouse=warehouse,
        runs_per_worker=dict(Counter(watched.worker_of[r] for r in all_runs if r in watched.worker_of)),
        run_states=dict(Counter(watched.states.get(r, "unknown") for r in all_runs)),
        jobs_completed=sum(1 for job in jobs if any(watched.states.get(r) == "Completed" for r in job.runs)),
        jobs=len(jobs),
        killed=watched.killed,
        killed_runs=[str(r) for r in watched.in_flight_at_kill],
        killed_runs_completed_elsewhere={str(r): completed_worker[job_of[r]] for r in watched.in_flight_at_kill},
        retried_runs=sum(len(job.runs) - 1 for job in jobs),
        crashed_by_heartbeat=watched.crashed_by_heartbeat,
        crashed_pending=watched.crashed_pending,
        crashed_other=watched.crashed_other,
        resumed_syncs=resumed_syncs(api_url, [str(r) for r in all_runs], _events_expected(jobs, watched)),
        truth=check_truth(warehouse, planned, sandbox),
        analyst=analyst,
        wall_s=watched.wall_s,
    )
