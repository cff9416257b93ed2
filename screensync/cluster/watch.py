"""Wait for the dispatchers to finish; kill a worker host mid-run when asked; record every shard run.

The harness re-submits nothing: a killed host's shard runs stay Running until the zombie-run
automation (flows/zombies.py) sees their heartbeats stop and marks them Crashed, and their
dispatcher (flows/fanout.py) starts those shards again on a live host, where the syncs resume
from the checkpoints the dead runs committed. Which worker took a run is read from the workers'
logs ("Worker 'ssw1' submitting flow run '<id>'").

The victim is killed only while none of its runs is Pending (taken, its process still starting):
such a run never sent a heartbeat, so no automation would crash it and its dispatcher would wait
for it until the timeout (docs/scale-out.md, Limits).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from flows.processes import ChildProcess
from sandbox.netns import Host, SimulatedHosts
from screensync.cluster.config import ClusterConfig
from screensync.cluster.submit import Dispatch

SUBMITTED = re.compile(r"Worker '[^']+' submitting flow run '([0-9a-f-]{36})'")
ABORTED = re.compile(r"Aborted submission of flow run '([0-9a-f-]{36})'")  # another worker got it first
PAGE = 200  # the most flow runs the server returns a request


class ClusterTimeout(RuntimeError):
    """The dispatchers did not all finish in time; the message lists what was still open."""


@dataclass
class ShardRun:
    """One `sync-shard` flow run a dispatcher started (a shard's attempts share `integration` and `shard`:
    the harness starts one dispatcher per integration)."""

    id: UUID
    integration: str
    shard: str
    connections: list[str]
    state: str
    message: str
    created: datetime | None


@dataclass
class WatchResult:
    dispatcher_states: dict[UUID, str] = field(default_factory=dict)  # dispatcher run -> its final state name
    shard_runs: list[ShardRun] = field(default_factory=list)
    worker_of: dict[UUID, str] = field(default_factory=dict)  # run -> the worker that submitted it
    killed: str | None = None  # the host killed mid-run
    killed_at: float | None = None
    in_flight_at_kill: list[UUID] = field(default_factory=list)  # the killed host's unfinished shard runs
    wall_s: float = 0.0


def runs_by_worker(workers: dict[str, ChildProcess]) -> dict[UUID, str]:
    out: dict[UUID, str] = {}
    for name, process in workers.items():
        try:
            text = process.log_path.read_text(errors="replace")
        except OSError:
            continue
        for run_id in set(SUBMITTED.findall(text)) - set(ABORTED.findall(text)):
            out[UUID(run_id)] = name
    return out


def _state(run: Any) -> str:
    return run.state.name if run is not None and run.state is not None else "unknown"


class Watcher:
    def __init__(
        self,
        client: Any,
        dispatches: list[Dispatch],
        hosts: SimulatedHosts,
        workers: dict[str, ChildProcess],
        config: ClusterConfig,
        warehouse: str,
        say: Any = print,
    ) -> None:
        self.client, self.dispatches, self.warehouse = client, dispatches, warehouse
        self.hosts, self.workers, self.config, self.say = hosts, workers, config, say
        self.result = WatchResult()
        self.victim: Host | None = hosts.hosts[0] if config.kill_one else None

    def _read(self) -> tuple[dict[UUID, Any], list[Any]]:
        """The dispatcher runs by id, and every shard run they started."""
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

        ids = [d.run_id for d in self.dispatches]
        dispatchers = self.client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
        children = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=ids))
        shards: list[Any] = []
        while True:
            page = self.client.read_flow_runs(flow_run_filter=children, limit=PAGE, offset=len(shards))
            shards += page
            if len(page) < PAGE:
                return {run.id: run for run in dispatchers}, shards

    def run(self) -> WatchResult:
        started = time.monotonic()
        deadline = started + self.config.timeout_s
        while True:
            dispatchers, shards = self._read()
            self.result.worker_of.update(runs_by_worker(self.workers))
            if all(run.state is not None and run.state.is_final() for run in dispatchers.values()) and dispatchers:
                break
            if self.victim is not None and self.result.killed is None:
                self._maybe_kill(shards)
            if time.monotonic() > deadline:
                open_runs = [f"{r.name} ({_state(r)})" for r in [*dispatchers.values(), *shards]
                             if r.state is None or not r.state.is_final()]  # fmt: skip
                raise ClusterTimeout(f"after {self.config.timeout_s:.0f}s these runs had not finished: {open_runs}")
            time.sleep(0.3 if self.victim is not None and self.result.killed is None else 1)
        self.result.wall_s = time.monotonic() - started
        self.result.worker_of.update(runs_by_worker(self.workers))
        self.result.dispatcher_states = {run_id: _state(run) for run_id, run in dispatchers.items()}
        self.result.shard_runs = [
            ShardRun(
                id=run.id,
                integration=str(run.parameters.get("integration")),
                shard=str(run.parameters.get("shard")),
                connections=list(run.parameters.get("connections") or []),
                state=_state(run),
                message=(run.state.message if run.state is not None else None) or "",
                created=run.created,
            )
            for run in sorted(shards, key=lambda r: r.created or datetime.min.replace(tzinfo=UTC))
        ]
        return self.result

    def _maybe_kill(self, shards: list[Any]) -> None:
        """Kill the victim host mid-sync: once one of its running runs has committed a page of a list
        (a checkpoint is saved), or has been Running for `kill_after_s` without one; never while one
        of its runs is Pending (see the module's docstring)."""
        assert self.victim is not None
        now = datetime.now(UTC)
        mine = [r for r in shards if self.result.worker_of.get(r.id) == self.victim.name]
        running = [r for r in mine if r.state is not None and r.state.is_running()]
        if not running or any(r.state is not None and r.state.is_pending() for r in mine):
            return
        connections = [c for r in running for c in r.parameters.get("connections") or []]
        overdue = any((now - r.state.timestamp).total_seconds() >= self.config.kill_after_s for r in running)
        if not overdue and not checkpointed(self.warehouse, connections):
            return
        self.hosts.kill(self.victim)
        self.result.killed, self.result.killed_at = self.victim.name, time.time()
        self.result.in_flight_at_kill = [r.id for r in mine if r.state is not None and not r.state.is_final()]
        self.say(f"  killed host {self.victim.name} (every process in it) with {len(self.result.in_flight_at_kill)} "
                 f"shard run(s) in flight{'' if overdue else ', mid-list (a checkpoint was saved)'}")


def checkpointed(warehouse: str, connections: list[str]) -> bool:
    """Whether any of these connections has a list sync part-way (a saved checkpoint) right now."""
    from warehouse.connection import WarehouseError
    from warehouse.query import run_query

    if not connections:
        return False
    ids = ", ".join("'" + c.replace("'", "''") + "'" for c in connections)
    sql = f"SELECT count(*) FROM _screensync.sync_state WHERE connection_id IN ({ids}) AND checkpoint IS NOT NULL"
    try:
        return bool(run_query(warehouse, sql, limit=1, timeout=5)[1][0][0])
    except WarehouseError:  # no warehouse or state table yet
        return False
