"""Sharded fan-out: a dispatcher flow spreads an integration's connections over a work pool's workers.

`sync-fanout` (the dispatcher) lists the active connections (or takes the ones named), cuts them
into shards of `shard_size` connections, and starts one flow run of the `sync-shard/shard` deployment
per shard on the process work pool: whichever worker (on whichever host) polls first runs it.
A shard is `sync-integration` for its connections — the same guards, threads and results
(flows/sync_flows.py), but one task per connection (`sync_connection`: its syncs side by side in
it), since submitting a task per (connection, sync) cost the flow's thread about a second per
connection here — plus a machine-readable results artifact the dispatcher reads back, so no
result storage has to be shared between hosts.

Why shards: a process worker starts a Python process per flow run and that process imports
Prefect, the engine and DuckDB (several seconds on this 2-core machine) before any work. With
`shard_size` connections x every sync per run, that cost is paid once per shard: at the default
of 20, a shard of the sandbox's rate-limited connections runs for minutes against a few seconds
of start-up. Smaller shards spread better over few connections; larger ones waste less.

A shard whose run ends Crashed (its worker died: Prefect automations in flows/zombies.py mark it
when its heartbeats stop or when it was taken and never started, or the worker saw its process
die) is started again, up to
`max_attempts` runs in all; its connections resume from the checkpoints their last pages
committed, and wait for the dead run's connection slots (flows/global_limits.py) to expire.
The dispatcher ends like `sync-integration`: per-(connection, sync) results, artifacts, Failed
naming each that did not succeed.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from flows.deployments import SHARD_DEPLOYMENT_NAME, SHARD_FLOW
from flows.sync_flows import MAX_WORKERS, failed_result, plan, report, run_fan_out, sync_connection
from integrations.engine.results import SyncResult

SHARD_DEPLOYMENT = f"{SHARD_FLOW}/{SHARD_DEPLOYMENT_NAME}"
DEFAULT_SHARD_SIZE = int(os.environ.get("SCREENSYNC_SHARD_SIZE", "20"))
DEFAULT_MAX_ATTEMPTS = 3
POLL_SECONDS = float(os.environ.get("SCREENSYNC_FANOUT_POLL", "3"))
RESULTS_DESCRIPTION = "screensync shard results (read by the sync-fanout dispatcher)"


def publish_shard_results(results: list[SyncResult]) -> None:
    """Every result in full, for the dispatcher: artifacts live in Prefect's database, which every
    host reaches (a flow's return value would need result storage shared by all of them)."""
    create_table_artifact(table=[r.model_dump(mode="json") for r in results], description=RESULTS_DESCRIPTION)


def read_shard_results(client: Any, flow_run_id: UUID) -> list[SyncResult] | None:
    """The shard's published results, or None when it ended before publishing them."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    for artifact in found:
        if artifact.description == RESULTS_DESCRIPTION:
            rows = artifact.data if isinstance(artifact.data, list) else json.loads(artifact.data)
            return [SyncResult.model_validate(row) for row in rows]
    return None


@flow(
    name=SHARD_FLOW,
    flow_run_name="shard-{integration}-{shard}",
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_WORKERS),
    retries=0,
)
def sync_shard(
    integration: str,
    connections: list[str],
    syncs: list[str] | None = None,
    full_refresh: bool = False,
    shard: str = "1",
    slot_wait: float | None = None,
) -> list[SyncResult]:
    """Sync these connections (a dispatcher's shard) as `sync-integration` would, and publish every result.
    `slot_wait`: seconds to wait for a connection another run is syncing (default SCREENSYNC_SLOT_WAIT)."""
    connection_ids, names = plan(integration, connections, syncs)
    get_run_logger().info("shard %s: %d %s connection(s) x syncs %s", shard, len(connection_ids), integration, names)

    def submit_connection(*args: Any) -> PrefectFuture[list[SyncResult]]:
        return sync_connection.submit(*args)

    # a task per connection, not per (connection, sync): Prefect's per-task cost, paid once per connection
    results = run_fan_out(integration, connection_ids, names, full_refresh=full_refresh,
                          submit_connection=submit_connection, slot_wait=slot_wait)
    publish_shard_results(results)
    return report(integration, results, artifact_kind="shard")


@dataclass
class Shard:
    """One shard's connections and the flow runs started for it (the last one counts)."""

    index: int
    connections: list[str]
    runs: list[UUID] = field(default_factory=list)
    results: list[SyncResult] | None = None


def shards_of(connection_ids: list[str], size: int) -> list[Shard]:
    if size < 1:
        raise ValueError(f"shard_size must be at least 1, not {size}")
    return [Shard(i // size + 1, connection_ids[i : i + size]) for i in range(0, len(connection_ids), size)]


def _start(shard: Shard, integration: str, params: dict[str, Any], deployment: str, parent: str) -> None:
    from prefect.deployments import run_deployment

    attempt = len(shard.runs) + 1
    run = run_deployment(
        deployment,
        parameters={**params, "integration": integration, "connections": shard.connections, "shard": str(shard.index)},
        timeout=0,  # start it, do not wait here: the dispatcher watches every shard at once
        as_subflow=True,
        idempotency_key=f"{parent}-shard-{shard.index}-attempt-{attempt}",  # a retried request starts no twin
        tags=["screensync", "shard", integration],
    )
    shard.runs.append(run.id)


def _unreported(shard: Shard, integration: str, syncs: list[str], error: str, hint: str) -> list[SyncResult]:
    run_id = str(shard.runs[-1])
    return [
        failed_result(integration, cid, sync, run_id=run_id, error=error, hint=hint)
        for cid in shard.connections
        for sync in syncs
    ]


def _settle(
    shard: Shard, run: Any, client: Any, integration: str, syncs: list[str], *, max_attempts: int
) -> bool:
    """Record a finished shard run's results; False when it crashed and was started again."""
    state = run.state
    if state.is_crashed() and len(shard.runs) < max_attempts:
        return False
    found = None if state.is_crashed() else read_shard_results(client, run.id)
    if found is None:
        found = []
    reported = {(r.connection_id, r.sync) for r in found}
    missing = [
        r
        for r in _unreported(
            shard,
            integration,
            syncs,
            error=f"shard {shard.index} run {run.name} ended {state.name}: {state.message or 'no message'}"
            + (f" ({len(shard.runs)} attempts)" if state.is_crashed() else ""),
            hint="Check the shard's flow run and its worker's log; the next run resumes from the checkpoints.",
        )
        if (r.connection_id, r.sync) not in reported
    ]
    shard.results = found + missing
    return True


def watch(
    shards: list[Shard],
    integration: str,
    syncs: list[str],
    *,
    params: dict[str, Any],
    deployment: str,
    parent: str,
    max_attempts: int,
) -> list[SyncResult]:
    """Poll every shard's run until all ended; start a crashed one again (bounded)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    logger = get_run_logger()
    last_note = time.monotonic()
    with get_client(sync_client=True) as client:
        while True:
            waiting = {s.runs[-1]: s for s in shards if s.results is None}
            if not waiting:
                break
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(waiting))))
            for run in runs:
                if run.state is None or not run.state.is_final():
                    continue
                shard = waiting[run.id]
                if not _settle(shard, run, client, integration, syncs, max_attempts=max_attempts):
                    logger.warning(
                        "shard %d run %s ended %s (%s): starting it again (attempt %d of %d); its connections "
                        "resume from their checkpoints", shard.index, run.name, run.state.name,
                        run.state.message, len(shard.runs) + 1, max_attempts,
                    )  # fmt: skip
                    _start(shard, integration, params, deployment, parent)
            if time.monotonic() - last_note > 60:
                done = sum(1 for s in shards if s.results is not None)
                logger.info("%d of %d shard(s) finished", done, len(shards))
                last_note = time.monotonic()
            time.sleep(POLL_SECONDS)
    return [r for s in sorted(shards, key=lambda s: s.index) for r in s.results or []]


@flow(name="sync-fanout", flow_run_name="fanout-{integration}", retries=0)
def sync_fanout(
    integration: str,
    connections: list[str] | None = None,
    syncs: list[str] | None = None,
    full_refresh: bool = False,
    shard_size: int = DEFAULT_SHARD_SIZE,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    shard_deployment: str = SHARD_DEPLOYMENT,
    slot_wait: float | None = None,
) -> list[SyncResult]:
    """Sync an integration's connections (default: every active one) as shards on the work pool's workers.

    Each shard is a `sync-shard` flow run of `shard_size` connections x the syncs; a shard whose
    worker died is run again (at most `max_attempts` runs) and resumes from its checkpoints. Ends
    Failed, naming each (connection, sync) that did not succeed, like `sync-integration`.
    `slot_wait` is passed to the shards (how long a sync waits for a connection another run holds).
    """
    from prefect.runtime import flow_run

    from flows.zombies import ensure_unstarted_automation, ensure_zombie_automation

    logger = get_run_logger()
    connection_ids, names = plan(integration, connections, syncs)
    if not connection_ids:
        logger.warning("no active %s connections: nothing to sync", integration)
        return []
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
    shards = shards_of(connection_ids, shard_size)
    ensure_zombie_automation()  # without it a dead worker's shard would stay Running for good
    ensure_unstarted_automation()  # ...or Pending, when the worker died before starting its process
    logger.info(
        "syncing %d %s connection(s) x syncs %s as %d shard(s) of <= %d on %s",
        len(connection_ids), integration, names, len(shards), shard_size, shard_deployment,
    )  # fmt: skip
    params = {"syncs": names, "full_refresh": full_refresh, "slot_wait": slot_wait}
    parent = str(flow_run.get_id() or "local")
    for shard in shards:
        _start(shard, integration, params, shard_deployment, parent)
    results = watch(
        shards, integration, names, params=params, deployment=shard_deployment, parent=parent, max_attempts=max_attempts
    )
    return report(integration, results, artifact_kind="fanout")
