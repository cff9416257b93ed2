"""Run orchestration: one sync run for one (integration, connection, sync), start to result.

The jobs it hands out: client_factory (the provider client), list_sync / repoll_sync (the
reading), refetch / references (records owed or named), sync_run (state and landing),
run_failures (when a checkpoint is given up). This module picks the connection, runs those,
and maps whatever went wrong to a SyncResult.

Plain Python (no Prefect): the CLI, the flows, the tests and the benchmarks all call
`run_sync`. Every page is written together with its checkpoint in one warehouse
transaction, so a run killed at any point resumes from its last committed page.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Protocol, TypeVar, cast

from integrations.engine.auth import remember_secret
from integrations.engine.checkpoint import Checkpoint
from integrations.engine.client_factory import open_client
from integrations.engine.errors import AuthFailed, EngineError
from integrations.engine.gc_tuning import fewer_collections
from integrations.engine.http_client import ProviderClient
from integrations.engine.list_sync import run_list
from integrations.engine.references import Referenced, fetch_references
from integrations.engine.refetch import Refetched, refetch_owed
from integrations.engine.registry import get_integration
from integrations.engine.repoll_sync import run_repoll
from integrations.engine.results import RunStatus, SyncResult
from integrations.engine.retries import RetryPolicy
from integrations.engine.run_failures import counts_against_position, discard_reason, failed_hint, failure_kind
from integrations.engine.sync_run import Progress, SyncRun
from integrations.engine.views import view_parts
from warehouse.connection import WarehouseError, WarehouseLocked
from warehouse.loader import Warehouse, WriteCounts
from warehouse.state import RunRecord

log = logging.getLogger("screensync.sync")

__all__ = ["ConnectionNotUsable", "Progress", "StoreLike", "run_sync"]


class StoreLike(Protocol):
    """What a sync needs from the connection store (connections.store.ConnectionStore)."""

    def get(self, integration: str, connection_id: str) -> Any: ...
    def credentials(self, integration: str, connection_id: str) -> Any: ...
    def set_status(self, integration: str, connection_id: str, status: str, reason: str) -> None: ...


class ConnectionNotUsable(EngineError):
    """The connection is revoked, invalid or unreadable: nothing is sent to the provider."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


F = TypeVar("F", bound=Callable[..., SyncResult])


def _holding_warehouse(fn: F) -> F:
    """A run's ~10 warehouse sessions share one attach of the file (Warehouse.holding): that and
    its checkpoint were half of a small connection's sync time (bench/connection_overhead.py)."""
    @wraps(fn)
    def run(*args: Any, warehouse: Warehouse, **kw: Any) -> SyncResult:
        with warehouse.holding():
            return fn(*args, warehouse=warehouse, **kw)

    return cast(F, run)


@_holding_warehouse
def run_sync(
    integration: str,
    connection_id: str,
    sync_name: str,
    *,
    warehouse: Warehouse,
    store: StoreLike,
    full_refresh: bool = False,
    owed_only: bool = False,
    retry: RetryPolicy | None = None,
    progress: Progress | None = None,
    references_wait: Callable[[], None] | None = None,
) -> SyncResult:
    """Run one sync; never raises for provider or warehouse trouble — the result says what happened.

    `owed_only` fetches only the records earlier runs quarantined (`screensync rejects retry`):
    no list, no checkpoint, no deletes. `references_wait` blocks until the syncs landing what its
    references name have finished (side_by_side.py): called before they are resolved."""
    started = datetime.now(UTC)
    t0 = time.monotonic()
    integ = get_integration(integration)
    sync = integ.definition.sync(sync_name)
    mode = "refetch" if owed_only else "full" if (full_refresh and sync.mode == "incremental") else sync.mode
    run: SyncRun | None = None
    status, error, hint = RunStatus.SUCCESS, None, None
    requests = retries = rate_limited = 0
    resumed = False
    deleted = owed = 0
    discarded: str | None = None
    refetched = Refetched()
    referenced = Referenced()
    recorded: SyncResult | None = None  # the result whose row the completing transaction wrote

    def outcome() -> SyncResult:
        """The result as things stand (read when the run's row is written)."""
        counts = run.counts if run else WriteCounts()
        return SyncResult(
            run_id=run.run_id if run else uuid.uuid4().hex,
            integration=integration,
            connection_id=connection_id,
            sync=sync_name,
            model=sync.model,
            mode=mode,
            status=status,
            added=counts.added,
            updated=counts.updated,
            unchanged=counts.unchanged,
            rejected=counts.rejected,
            owed=owed,
            refetched=refetched.landed,
            gone=run.gone if run else 0,
            referenced=referenced.landed,
            deleted=deleted,
            requests=requests,
            retries=retries,
            rate_limited=rate_limited,
            pages=run.pages if run else 0,
            resumed=resumed,
            started_at=started,
            finished_at=datetime.now(UTC),
            duration_s=round(time.monotonic() - t0, 3),
            error=error,
            hint=hint,
            checkpoint_discarded=discarded,
        )

    try:
        connection, token = _usable_connection(store, integration, connection_id)
        remember_secret(token)  # whatever the provider echoes back, it never reaches a message
        run = SyncRun(integ, sync, connection, token, warehouse, full_refresh=full_refresh, retry=retry,
                      progress=progress)
        warehouse.use_view_parts(view_parts())
        if owed_only or sync.mode == "repoll":  # a list creates its tables while its first page is in flight
            warehouse.ensure_tables(run.targets.all())
        if owed_only:
            with fewer_collections(), open_client(integ, connection, token, retry=retry) as client:
                try:
                    refetched = refetch_owed(run, client, f"refetch-{run.run_id}", all_owed=True)
                finally:
                    requests, retries, rate_limited = _activity(client)
        else:
            stored = warehouse.get_state(integration, connection_id, sync_name)
            discarded = discard_reason(stored, full_refresh=full_refresh)
            if discarded:
                log.warning("sync %s/%s/%s: %s", integration, connection_id, sync_name, discarded)
            state = warehouse.begin_attempt(integration, connection_id, sync_name, fresh=discarded is not None,
                                            stored=stored, defer=True)
            resumed = bool(state.checkpoint)
            log.info("sync %s/%s/%s starting (%s%s)", integration, connection_id, sync_name, mode,
                     ", resuming" if resumed else "")
            with fewer_collections(), open_client(integ, connection, token, retry=retry) as client:
                try:
                    if sync.mode == "repoll":
                        run_repoll(run, client, state.attempt_id)
                    else:
                        run_list(run, client, state.attempt_id, Checkpoint.from_stored(state.checkpoint),
                                 None if full_refresh else state.cursor)
                    refetched = refetch_owed(run, client, state.attempt_id or "", all_owed=False)
                    if references_wait is not None and sync.references:
                        references_wait()
                    referenced = fetch_references(run, client, state.attempt_id or "")
                finally:
                    requests, retries, rate_limited = _activity(client)
            # completing settles nothing owed: counted first, so the run's row goes in the same transaction
            owed = warehouse.count_owed(integration, connection_id, sync_name)
            status, hint = _owing(run.counts.rejected, owed, integration, connection_id)
            deletes = run.targets.tracked(sync) if mode == "full" else []
            ending: list[SyncResult] = []

            def run_row(deleted_now: int) -> RunRecord:
                nonlocal deleted
                deleted = deleted_now
                ending[:] = [outcome()]
                return RunRecord.from_result(ending[0])

            warehouse.complete_attempt(integration, connection_id, sync_name, state.attempt_id, deletes=deletes,
                                       run_id=run.run_id, observed_at=run.observed_max, run_row=run_row)
            recorded = ending[0]
        if owed_only:
            owed = warehouse.count_owed(integration, connection_id, sync_name)
            status, hint = _owing(run.counts.rejected, owed, integration, connection_id)
    except AuthFailed as exc:
        status, error = RunStatus.FAILED, str(exc)
        hint = "Reconnect this account (or check the API key), then run `screensync connections test`."
        store.set_status(integration, connection_id, "invalid", f"provider answered {exc.status_code}")
    except ConnectionNotUsable as exc:
        status, error = RunStatus.FAILED, str(exc)
        hint = exc.hint
    except WarehouseLocked as exc:
        status, error = RunStatus.INTERRUPTED, str(exc)
        hint = "Another process holds the warehouse file; the next run resumes from the last saved page."
    except WarehouseError as exc:
        status, error = RunStatus.FAILED, str(exc)
        hint = "Nothing of the failed write was kept and the checkpoint is intact: re-run to resume."
    except EngineError as exc:
        status, error = RunStatus.FAILED, str(exc)
        hint = "The checkpoint is kept: re-run the sync to resume from the last saved page."
        if counts_against_position(exc) and not owed_only:
            hint = failed_hint(_note_failure(warehouse, integration, connection_id, sync_name, exc))
    except KeyboardInterrupt:
        status, error = RunStatus.INTERRUPTED, "interrupted by the operator"
        hint = "Re-run the sync to resume from the last saved page."
    result = recorded if recorded is not None else outcome()
    if recorded is None:  # else the completing transaction wrote the run's row
        try:
            warehouse.record_run(RunRecord.from_result(result))
        except WarehouseLocked:
            log.warning("could not record run %s: warehouse locked", result.run_id)
    if result.ok:
        log.info("sync %s/%s/%s %s: +%d ~%d -%d =%d !%d (owed %d) in %.1fs", integration, connection_id, sync_name,
                 status.value, result.added, result.updated, result.deleted, result.unchanged, result.rejected,
                 result.owed, result.duration_s)
    else:
        log.warning("sync %s/%s/%s %s: %s", integration, connection_id, sync_name, status.value, error)
    return result


def _owing(rejected: int, owed: int, integration: str, connection_id: str) -> tuple[RunStatus, str | None]:
    """A finished run's status and hint: partial while records are quarantined or owed."""
    if not (rejected or owed):
        return RunStatus.SUCCESS, None
    return RunStatus.PARTIAL, (
        f"{rejected} record(s) quarantined by this run, {owed} still owed: "
        f"`screensync rejects list {integration} -c {connection_id}` shows them; they are fetched "
        "again on every run until they land (`screensync rejects retry` does it now)")


def _usable_connection(store: StoreLike, integration: str, connection_id: str) -> tuple[Any, str]:
    """The connection and its token, or ConnectionNotUsable saying why not (nothing is sent)."""
    try:
        connection = store.get(integration, connection_id)
        if connection.status != "active":
            raise ConnectionNotUsable(
                f"{integration} connection {connection_id!r} is {connection.status}"
                f" ({getattr(connection, 'status_reason', '') or 'no reason recorded'}); nothing was sent",
                "Reconnect the account; revoked or invalid connections are skipped until then.",
            )
        return connection, store.credentials(integration, connection_id).token.get_secret_value()
    except ConnectionNotUsable:
        raise
    except Exception as exc:  # the store's own errors (unknown id, wrong key) name what is wrong
        raise ConnectionNotUsable(
            f"{integration} connection {connection_id!r}: {exc}; nothing was sent",
            "Check the connection id (`screensync connections list`) and the store's key "
            "(SCREENSYNC_SECRET_KEY or SCREENSYNC_SECRET_KEY_FILE).",
        ) from exc


def _activity(client: ProviderClient) -> tuple[int, int, int]:
    return client.stats.requests, client.stats.retries, client.stats.rate_limited


def _note_failure(warehouse: Warehouse, integration: str, connection_id: str, sync: str, exc: EngineError) -> int:
    """Count the failure against the stored checkpoint (0 when the warehouse cannot say)."""
    try:
        return warehouse.note_failure(integration, connection_id, sync, failure_kind(exc))
    except WarehouseError as err:
        log.warning("could not count the failure of %s/%s/%s: %s", integration, connection_id, sync, err)
        return 0
