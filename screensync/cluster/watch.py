"""Wait for every job's flow runs to finish; kill a worker host mid-run when asked; re-submit crashed runs.

A worker host that dies leaves its flow runs Running on the server. Prefect learns of it only from
missing heartbeats: the zombie-run automation (prefect_setup.py) marks such a run Crashed, and the
harness re-submits the job (submit.py) so another worker runs it; the syncs resume from the
checkpoints the dead run committed. A run the dead worker had taken but not started (Pending) never
sent a heartbeat, so no automation sees it: the harness marks it Crashed itself once the worker that
took it has stopped heartbeating to the work pool for `zombie_after_s` (a slow process start on a
busy machine is not a dead worker). Which worker took a run is read from the workers' logs ("Worker
'ssw1' submitting flow run '<id>'").
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from flows.processes import ChildProcess
from flows.zombies import ZOMBIE_MARK
from sandbox.netns import Host, SimulatedHosts
from screensync.cluster.config import ClusterConfig
from screensync.cluster.prefect_setup import POOL
from screensync.cluster.submit import MAX_ATTEMPTS, RESUBMIT_CRASHED, Job, submit

SUBMITTED = re.compile(r"Worker '[^']+' submitting flow run '([0-9a-f-]{36})'")
ABORTED = re.compile(r"Aborted submission of flow run '([0-9a-f-]{36})'")  # another worker got it first
PENDING_MESSAGE = "its worker took it, never started it and stopped heartbeating: marked Crashed by the cluster harness"


class ClusterTimeout(RuntimeError):
    """The runs did not all finish in time; the message lists the unfinished ones."""


@dataclass
class WatchResult:
    states: dict[UUID, str] = field(default_factory=dict)  # every run -> its final state name
    worker_of: dict[UUID, str] = field(default_factory=dict)  # run -> the worker that submitted it
    killed: str | None = None  # the host killed mid-run
    killed_at: float | None = None
    in_flight_at_kill: list[UUID] = field(default_factory=list)  # the killed host's unfinished runs
    crashed_by_heartbeat: int = 0
    crashed_pending: int = 0
    crashed_other: int = 0  # reported Crashed by its worker (its process died under a live worker)
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


class Watcher:
    def __init__(
        self,
        client: Any,
        deployments: dict[str, UUID],
        jobs: list[Job],
        hosts: SimulatedHosts,
        workers: dict[str, ChildProcess],
        config: ClusterConfig,
        warehouse: str,
        say: Any = print,
    ) -> None:
        self.warehouse = warehouse
        self.client, self.deployments, self.jobs = client, deployments, jobs
        self.hosts, self.workers, self.config, self.say = hosts, workers, config, say
        self.result = WatchResult()
        self.victim: Host | None = hosts.hosts[0] if config.kill_one else None
        self._given_up: set[UUID] = set()
        self._heartbeats: dict[str, datetime | None] = {}

    def _read(self) -> dict[UUID, Any]:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        ids = [job.runs[-1] for job in self.jobs]
        runs = self.client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids))
        return {run.id: run for run in runs}

    def run(self) -> WatchResult:
        started = time.monotonic()
        deadline = started + self.config.timeout_s
        while True:
            runs = self._read()
            self.result.worker_of.update(runs_by_worker(self.workers))
            self._heartbeats = {w.name: w.last_heartbeat_time for w in self.client.read_workers_for_work_pool(POOL)}
            open_jobs = [job for job in self.jobs if not self._settled(job, runs.get(job.runs[-1]))]
            if not open_jobs:
                break
            if self.victim is not None and self.result.killed is None:
                self._maybe_kill(runs)
            if time.monotonic() > deadline:
                waiting = ", ".join(f"{j.name} ({self._state(runs.get(j.runs[-1]))})" for j in open_jobs)
                raise ClusterTimeout(f"after {self.config.timeout_s:.0f}s these runs had not finished: {waiting}")
            time.sleep(0.3 if self.victim is not None and self.result.killed is None else 1)
        self.result.wall_s = time.monotonic() - started
        self.result.worker_of.update(runs_by_worker(self.workers))
        return self.result

    @staticmethod
    def _state(run: Any) -> str:
        return run.state.name if run is not None and run.state is not None else "unknown"

    def _settled(self, job: Job, run: Any) -> bool:
        """Whether the job is finished; re-submits it when its current run crashed."""
        if run is None or run.state is None:
            return False
        state = run.state
        self.result.states[run.id] = state.name
        if state.is_completed() or state.is_failed() or state.is_cancelled() or run.id in self._given_up:
            return True
        if state.is_pending() and self._worker_gone(run.id):
            self._crash(run.id, PENDING_MESSAGE)
            self.result.crashed_pending += 1
            self.result.states[run.id] = "Crashed"
        elif state.is_crashed():  # by the zombie-run automation, or by its worker (the process died)
            if ZOMBIE_MARK in (state.message or ""):
                self.result.crashed_by_heartbeat += 1
            else:
                self.result.crashed_other += 1
        else:
            return False
        if not RESUBMIT_CRASHED or len(job.runs) >= MAX_ATTEMPTS:
            self._given_up.add(run.id)
            return True
        new = submit(self.client, self.deployments, job)
        self.say(f"  {job.name}: run {run.id} crashed on {self.result.worker_of.get(run.id, '?')}; re-submitted as {new}")
        return False

    def _worker_gone(self, run_id: UUID) -> bool:
        """Whether the worker that took this run has not heartbeated to the pool for `zombie_after_s`."""
        beat = self._heartbeats.get(self.result.worker_of.get(run_id, ""))
        return beat is not None and (datetime.now(UTC) - beat).total_seconds() > self.config.zombie_after_s

    def _crash(self, run_id: UUID, message: str) -> None:
        from prefect.states import Crashed

        self.client.set_flow_run_state(run_id, Crashed(message=message), force=True)

    def _maybe_kill(self, runs: dict[UUID, Any]) -> None:
        """Kill the victim host mid-sync: once one of its running runs has committed a page of a list
        (a checkpoint is saved), or has been Running for `kill_after_s` without one."""
        assert self.victim is not None
        now = datetime.now(UTC)
        mine = [r for r in runs.values() if self.result.worker_of.get(r.id) == self.victim.name]
        running = [r for r in mine if r.state is not None and r.state.is_running()]
        if not running:
            return
        connections = [c for r in running for c in r.parameters.get("connections") or []]
        overdue = any((now - r.state.timestamp).total_seconds() >= self.config.kill_after_s for r in running)
        if not overdue and not checkpointed(self.warehouse, connections):
            return
        self.hosts.kill(self.victim)
        self.result.killed, self.result.killed_at = self.victim.name, time.time()
        self.result.in_flight_at_kill = [r.id for r in mine if r.state is not None and not r.state.is_final()]
        self.say(f"  killed host {self.victim.name} (every process in it) with {len(self.result.in_flight_at_kill)} "
                 f"run(s) in flight{'' if overdue else ', mid-list (a checkpoint was saved)'}")


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
