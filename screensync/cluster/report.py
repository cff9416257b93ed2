"""The cluster run's summary: the dispatchers, shard runs per worker, retried shards, rows against the
sandbox's truth, analyst answers."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
from pydantic import BaseModel

from flows.zombies import ZOMBIE_MARK
from screensync.cluster.analyst import AnalystFigures
from screensync.cluster.config import PlannedConnection
from screensync.cluster.isolation import Isolation
from screensync.cluster.submit import STRATEGY, Dispatch, by_integration
from screensync.cluster.watch import ShardRun, WatchResult
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
    dispatchers: dict[str, str]  # integration -> its dispatcher run's final state name
    dispatcher_workers: dict[str, str | None]  # integration -> the worker that ran its dispatcher
    runs_per_worker: dict[str, int]  # shard runs
    run_states: dict[str, int]  # final state name -> shard runs
    jobs_completed: int  # shards with a Completed run
    jobs: int  # shards the dispatchers were to start
    killed: str | None
    killed_runs: list[str]  # the killed host's unfinished runs
    killed_runs_completed_elsewhere: dict[str, str | None]  # killed run -> the worker of its shard's completed run
    retried_runs: int  # shard runs the dispatchers started again
    crashed_by_heartbeat: int
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
            f"  dispatchers: {self.dispatchers} on {self.dispatcher_workers}",
            f"  shards completed: {self.jobs_completed}/{self.jobs} in {self.wall_s:.0f}s; "
            f"shard run states {dict(sorted(self.run_states.items()))}",
            f"  shard runs per worker: {dict(sorted(self.runs_per_worker.items()))}",
        ]
        if self.killed:
            moved = ", ".join(f"{run} -> {w or 'NOT COMPLETED'}" for run, w in self.killed_runs_completed_elsewhere.items())
            out.append(f"  killed host {self.killed} with {len(self.killed_runs)} run(s) in flight; completed on: {moved}")
        out += [
            f"  shard runs started again by the dispatchers: {self.retried_runs} (crashed by the heartbeat automation: "
            f"{self.crashed_by_heartbeat}, by their worker: {self.crashed_other}); "
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


def _events_expected(shard_runs: list[ShardRun]) -> int:
    """One event per sync per connection of each completed shard run."""
    from integrations.engine.registry import get_integration

    return sum(
        len(run.connections) * len(get_integration(run.integration).definition.syncs)
        for run in shard_runs
        if run.state == "Completed"
    )


def shards_planned(planned: list[PlannedConnection], per_run: int) -> int:
    """How many shards the dispatchers cut the connections into (flows/fanout.py's `shards_of`)."""
    return sum(-(-len(ids) // per_run) for ids in by_integration(planned).values())


def build_report(
    *,
    workers: list[str],
    planned: list[PlannedConnection],
    per_run: int,
    dispatches: list[Dispatch],
    watched: WatchResult,
    warehouse: str,
    sandbox: Any,
    analyst: AnalystFigures,
    api_url: str,
    isolation: list[Isolation],
) -> ClusterReport:
    runs = watched.shard_runs
    by_shard: dict[tuple[str, str], list[ShardRun]] = {}
    for run in runs:
        by_shard.setdefault((run.integration, run.shard), []).append(run)
    completed_on = {
        key: next((watched.worker_of.get(r.id) for r in reversed(attempts) if r.state == "Completed"), None)
        for key, attempts in by_shard.items()
    }
    shard_of = {run.id: (run.integration, run.shard) for run in runs}
    crashed = [run for run in runs if run.state == "Crashed"]
    return ClusterReport(
        workers=workers,
        isolation=isolation,
        connections=len(planned),
        strategy=STRATEGY,
        warehouse=warehouse,
        dispatchers={d.integration: watched.dispatcher_states.get(d.run_id, "unknown") for d in dispatches},
        dispatcher_workers={d.integration: watched.worker_of.get(d.run_id) for d in dispatches},
        runs_per_worker=dict(Counter(watched.worker_of[r.id] for r in runs if r.id in watched.worker_of)),
        run_states=dict(Counter(r.state for r in runs)),
        jobs_completed=sum(1 for attempts in by_shard.values() if any(r.state == "Completed" for r in attempts)),
        jobs=shards_planned(planned, per_run),
        killed=watched.killed,
        killed_runs=[str(r) for r in watched.in_flight_at_kill],
        killed_runs_completed_elsewhere={
            str(r): completed_on.get(shard_of[r]) if r in shard_of else None for r in watched.in_flight_at_kill
        },
        retried_runs=len(runs) - len(by_shard),
        crashed_by_heartbeat=sum(1 for r in crashed if ZOMBIE_MARK in r.message),
        crashed_other=sum(1 for r in crashed if ZOMBIE_MARK not in r.message),
        resumed_syncs=resumed_syncs(api_url, [str(r.id) for r in runs], _events_expected(runs)),
        truth=check_truth(warehouse, planned, sandbox),
        analyst=analyst,
        wall_s=watched.wall_s,
    )
