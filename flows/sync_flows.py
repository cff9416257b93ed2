"""The sync flow: one integration's connections x syncs, one Prefect task per (connection, sync)
(a shard of the fan-out: one task per connection, flows/fanout.py).

Concurrency, in layers:
- tasks run on a bounded thread pool; HTTP fetching overlaps, and each warehouse write is a short
  transaction of its own (warehouse/access.py): the file is held for a write, never for the flow,
  so other flows, webhooks and analysts take their turns between any two writes;
- with a Prefect API the flow holds each connection's global concurrency slot from its first sync
  to its last (flows/global_limits.py: leased, one process per connection across every worker),
  and with a warehouse file each (connection, sync) also takes its lock file, so the same pair
  never runs twice at once (another schedule firing, a shard on another worker, a `screensync
  sync` from a shell);
- the webhook applier runs beside the tasks (at the start, every few seconds, and at the end):
  events recorded while nobody else could apply them land within seconds.
A connection's syncs run side by side, each after the syncs it declares `after` (reports re-poll
after candidates land), all drawing from the credential's one limiter and AIMD window; different
connections run side by side too, and one connection's failure never stops another's.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.states import Failed, State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import allow_failure

from common.settings import local_warehouse_file, warehouse_setting
from flows.artifacts import publish_sync_artifacts
from flows.events import emit_sync_events
from flows.global_limits import SLOT_WAIT_SECONDS, ConnectionSlots, sync_guard
from flows.locks import LockTimeout
from integrations.engine.results import RunStatus, SyncResult

MAX_WORKERS = int(os.environ.get("SCREENSYNC_MAX_WORKERS", "4"))
# the longest one write transaction waits for the warehouse (a process outside screensync holding it)
WAREHOUSE_LOCK_TIMEOUT = float(os.environ.get("SCREENSYNC_WAREHOUSE_LOCK_TIMEOUT", "120"))
SYNC_LOCK_TIMEOUT = float(os.environ.get("SCREENSYNC_SYNC_LOCK_TIMEOUT", "60"))
HELD_HINT = "Another run holds the lock; this one will run on the next schedule."


class SyncTaskFailed(RuntimeError):
    """A task's sync(s) finished, not all successfully; carries every result for the flow's summary
    (one for `sync_one`, a connection's for `sync_connection`)."""

    def __init__(self, results: list[SyncResult]) -> None:
        super().__init__("; ".join(f"{r.integration}/{r.connection_id}/{r.sync} {r.status.value}: {r.error}"
                                   for r in results if not r.ok))
        self.results = results


class SyncRunsFailed(RuntimeError):
    """Raised by the flow so its run ends Failed; the message names every failed (connection, sync)."""


def _coarse_failure_only(task: Any, task_run: Any, state: State) -> bool:
    """Retry crashes and interruptions (resumable from the checkpoint); a provider-reported failure
    was already retried by the engine's HTTP layer and would just fail again."""
    try:
        state.result()
    except SyncTaskFailed as exc:
        return any(r.status == RunStatus.INTERRUPTED for r in exc.results)
    except Exception:
        return True
    return False


@task(
    cache_policy=NO_CACHE,
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=_coarse_failure_only,
    task_run_name="{integration}/{connection_id}/{sync}",
)
def sync_one(integration: str, connection_id: str, sync: str, full_refresh: bool, warehouse_path: str) -> SyncResult:
    """One (connection, sync): the engine does the work; this adds the lock file and the task state.
    `warehouse_path` is the setting as given (a file path or a URL), passed through unchanged."""
    result = guarded_sync(integration, connection_id, sync, full_refresh, warehouse_path)
    if not result.ok:
        raise SyncTaskFailed([result])
    return result


@task(
    cache_policy=NO_CACHE,
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=_coarse_failure_only,  # the whole connection again, each sync from its checkpoint
    task_run_name="{integration}/{connection_id}",
)
def sync_connection(integration: str, connection_id: str, syncs: list[str], full_refresh: bool,
                    warehouse_path: str) -> list[SyncResult]:
    """Every sync of one connection in one task, side by side as `screensync sync` runs them (each
    after the syncs it declares `after`): what a shard runs. Submitting a task per (connection, sync)
    held the flow's thread ~1 s per connection on this 2-core machine (its 20th connection started
    ~22 s late, docs/benchmarks.md); one task per connection pays that once."""
    from integrations.engine.registry import get_integration
    from integrations.engine.side_by_side import dependencies, reference_waits, run_side_by_side

    definition = get_integration(integration).definition
    # each sync's thread runs in a copy of this task's context: its run logger and Prefect settings
    contexts = {sync: contextvars.copy_context() for sync in syncs}
    results = run_side_by_side(
        syncs, dependencies(definition, syncs),
        lambda sync, wait: contexts[sync].run(
            guarded_sync, integration, connection_id, sync, full_refresh, warehouse_path, references_wait=wait),
        references=reference_waits(definition, syncs))
    if any(not r.ok for r in results):
        raise SyncTaskFailed(results)
    return results


def guarded_sync(integration: str, connection_id: str, sync: str, full_refresh: bool, warehouse_path: str,
                 references_wait: Callable[[], None] | None = None) -> SyncResult:
    """run_sync under the (connection, sync)'s lock, logged to the task run (`references_wait`:
    run_sync's, from a connection's syncs side by side)."""
    from connections.store import open_store
    from integrations.engine.sync_runner import run_sync
    from warehouse.loader import Warehouse

    logger = get_run_logger()
    what = f"sync {integration}/{connection_id}/{sync}"
    with sync_guard(integration, connection_id, sync, warehouse_path, timeout=SYNC_LOCK_TIMEOUT):
        logger.info(
            "connection=%s sync=%s: sync starting%s", connection_id, sync, " (full refresh)" if full_refresh else ""
        )
        warehouse = Warehouse(warehouse_path, lock_timeout=WAREHOUSE_LOCK_TIMEOUT, purpose=what)
        result = run_sync(
            integration, connection_id, sync, warehouse=warehouse, store=open_store(), full_refresh=full_refresh,
            references_wait=references_wait,
        )
    if not result.ok:
        logger.error(
            "connection=%s sync=%s: %s — %s (hint: %s)",
            connection_id,
            sync,
            result.status.value,
            result.error,
            result.hint,
        )
        return result
    if result.status == RunStatus.PARTIAL:
        logger.warning("connection=%s sync=%s: partial — %s", connection_id, sync, result.hint)
    logger.info(
        "connection=%s sync=%s: %d page(s), +%d ~%d -%d =%d rejected %d in %.1fs",
        connection_id,
        sync,
        result.pages,
        result.added,
        result.updated,
        result.deleted,
        result.unchanged,
        result.rejected,
        result.duration_s,
    )
    return result


def plan(integration: str, connections: list[str] | None, wanted: list[str] | None) -> tuple[list[str], list[str]]:
    """(connection ids, sync names) to run; unknown names fail here, before anything runs."""
    from connections.store import open_store
    from integrations.engine.registry import get_integration

    definition = get_integration(integration).definition
    syncs = [s.name for s in definition.syncs]
    if wanted:
        unknown = [m for m in wanted if m not in syncs]
        if unknown:
            raise ValueError(f"{integration} has no sync(s) {unknown}; it has {syncs}")
        syncs = [s for s in syncs if s in wanted]  # keep the declared order
    if connections:
        return list(dict.fromkeys(connections)), syncs
    stored = open_store().list(integration=integration)
    skipped = [f"{c.connection_id} ({c.status})" for c in stored if c.status != "active"]
    if skipped:
        # ended on purpose or refused by the provider: reported, not retried every schedule
        get_run_logger().warning("skipping %s connection(s) until reconnected: %s", integration, ", ".join(skipped))
    return [c.connection_id for c in stored if c.status == "active"], syncs


def _outcome(future: PrefectFuture[Any], integration: str, connection_id: str, syncs: list[str]) -> list[SyncResult]:
    """The results of a task for `syncs` (`sync_one`: one, `sync_connection`: a connection's), or one
    per sync built from the exception when the task crashed outright."""
    try:
        result = future.result()
        return result if isinstance(result, list) else [result]
    except SyncTaskFailed as exc:
        return exc.results
    except Exception as exc:
        hint = (
            HELD_HINT
            if isinstance(exc, LockTimeout)
            else "Unexpected error: check the task's logs, then re-run the deployment for this connection."
        )
        return [failed_result(integration, connection_id, s, run_id=str(future.task_run_id),
                              error=f"{type(exc).__name__}: {exc}", hint=hint) for s in syncs]


def failed_result(integration: str, connection_id: str, sync: str, *, run_id: str, error: str, hint: str) -> SyncResult:
    """A result for a (connection, sync) whose run never reported one (it crashed, or never ran)."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return SyncResult(
        run_id=run_id,
        integration=integration,
        connection_id=connection_id,
        sync=sync,
        model="?",
        mode="?",
        status=RunStatus.FAILED,
        started_at=now,
        finished_at=now,
        duration_s=0.0,
        error=error,
        hint=hint,
    )


def run_fan_out(
    integration: str,
    connection_ids: list[str],
    syncs: list[str],
    *,
    full_refresh: bool,
    submit: Callable[..., PrefectFuture[SyncResult]] | None = None,
    submit_connection: Callable[..., PrefectFuture[list[SyncResult]]] | None = None,
    slot_wait: float | None = None,
) -> list[SyncResult]:
    """Submit every (connection, sync), with the webhook applier running beside them, and wait for all:
    a task per (connection, sync) through `submit`, or per connection through `submit_connection`.

    With a Prefect API each connection's global slot is taken before its first sync and given back
    after its last (flows/global_limits.py); a connection another run keeps for longer than
    `slot_wait` seconds (default SCREENSYNC_SLOT_WAIT) is reported failed, the others run meanwhile.
    """
    from flows.webhook_applier import applying_beside

    warehouse = warehouse_setting()
    local = local_warehouse_file(warehouse)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
    wait = SLOT_WAIT_SECONDS if slot_wait is None else slot_wait
    slots = ConnectionSlots(integration)
    # per connection: each task's future and the syncs it runs
    futures: dict[str, list[tuple[PrefectFuture[Any], list[str]]]] = {}

    from integrations.engine.registry import get_integration
    from integrations.engine.side_by_side import dependencies

    after = dependencies(get_integration(integration).definition, syncs)

    def chain(cid: str) -> None:
        """A connection's syncs side by side, each after the ones it declares `after`; its slot is
        given back once the last of them finished."""
        submitted: dict[str, PrefectFuture[Any]] = {}
        if submit_connection is not None:
            submitted[""] = submit_connection(integration, cid, syncs, full_refresh, warehouse)
            futures[cid] = [(submitted[""], syncs)]
        else:
            assert submit is not None
            for sync in syncs:  # declared order honours `after`
                wait_for = [allow_failure(submitted[d]) for d in after[sync]] or None
                submitted[sync] = submit(integration, cid, sync, full_refresh, warehouse, wait_for=wait_for)
            futures[cid] = [(submitted[sync], [sync]) for sync in syncs]
        left = [len(submitted)]
        lock = threading.Lock()

        def one_done(_: object) -> None:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                slots.release_soon(cid)  # not on this task runner thread

        for future in submitted.values():
            future.add_done_callback(one_done)

    with applying_beside(warehouse):
        try:
            refused = take_slots(slots, connection_ids, wait, start=chain)
            results = []
            for cid in connection_ids:
                if cid in refused:
                    error = f"LockTimeout: {slots.refused(cid, wait)}"
                    results += [failed_result(integration, cid, s, run_id="-", error=error, hint=HELD_HINT) for s in syncs]
                else:
                    results += [r for f, names in futures.get(cid, []) for r in _outcome(f, integration, cid, names)]
            return results
        finally:
            slots.close()


def take_slots(slots: ConnectionSlots, connection_ids: list[str], wait: float, *, start: Callable[[str], None]) -> set[str]:
    """Take each connection's slot and `start` it; one held elsewhere is asked for again every
    second (the others run meanwhile) until `wait` seconds have passed. Returns the refused."""
    import time

    deadline = time.monotonic() + wait
    pending = list(connection_ids)
    while True:
        still = []
        for cid in pending:
            if slots.try_take(cid):
                start(cid)
            else:
                still.append(cid)
        if not still or time.monotonic() >= deadline:
            return set(still)
        pending = still
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


@flow(
    name="sync-integration",
    flow_run_name="sync-{integration}",
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_WORKERS),
    retries=0,
)
def sync_integration(
    integration: str,
    connections: list[str] | None = None,
    syncs: list[str] | None = None,
    full_refresh: bool = False,
    models: list[str] | None = None,
) -> list[SyncResult]:
    """Sync an integration's connections (default: every active one) for the given syncs (default: all).

    Ends Failed, naming each failed (connection, sync), when any of them failed; the others
    still land. `full_refresh` re-reads everything instead of resuming from the cursor.
    `models` is the old name of `syncs`, kept for deployments created before the rename.
    """
    logger = get_run_logger()
    if models and not syncs:
        logger.warning("the `models` parameter is deprecated: name the syncs in `syncs`")
        syncs = models
    connection_ids, names = plan(integration, connections, syncs)
    if not connection_ids:
        logger.warning("no active %s connections: nothing to sync", integration)
        return []
    logger.info("syncing %d %s connection(s) x syncs %s", len(connection_ids), integration, names)

    def submit(*args: Any, wait_for: Any = None) -> PrefectFuture[SyncResult]:
        return sync_one.submit(*args, wait_for=wait_for)

    results = run_fan_out(integration, connection_ids, names, full_refresh=full_refresh, submit=submit)
    return report(integration, results)


def report(integration: str, results: list[SyncResult], *, artifact_kind: str = "sync") -> list[SyncResult]:
    """Artifacts, events and the run's end state for a flow's results: Failed, naming each
    (connection, sync) that did not succeed, when any did not; the others still landed."""
    logger = get_run_logger()
    publish_sync_artifacts(integration, results, kind=artifact_kind)
    if artifact_kind != "fanout":  # a dispatcher's shards emitted their syncs' events already
        emit_sync_events(results)  # screensync.sync.completed / .failed, for automations
    failed = [r for r in results if not r.ok]
    if failed:
        names = ", ".join(f"{r.connection_id}/{r.sync} ({r.status.value})" for r in failed)
        message = f"{len(failed)} of {len(results)} {integration} sync(s) did not succeed: {names}"
        logger.error(message)
        # a Failed state, not an exception: the run ends Failed with this message and no traceback noise
        return Failed(message=message, data=SyncRunsFailed(message))  # type: ignore[return-value]
    return results
