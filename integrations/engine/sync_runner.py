"""One sync run for one (integration, connection, sync): fetch pages, validate, land them.

Plain Python (no Prefect): the CLI, the flows, the tests and the benchmarks all call
`run_sync`. Every page is written together with its checkpoint in one warehouse
transaction, so a run killed at any point resumes from its last committed page.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel

from integrations.engine.auth import build_auth, remember_secret
from integrations.engine.batches import build_batches, targets_for
from integrations.engine.cursor_hold import cursor_to_store, earlier, page_floor
from integrations.engine.definition import SyncConfig
from integrations.engine.due import due_arguments
from integrations.engine.errors import AuthFailed, EngineError, ProviderError
from integrations.engine.gc_tuning import fewer_collections
from integrations.engine.gone import gone_reason
from integrations.engine.http_client import ProviderClient
from integrations.engine.observed import date_header_time, provider_time, stamp
from integrations.engine.paginators import Page, iterate_pages
from integrations.engine.partial_records import merge_partial
from integrations.engine.pending_write import PendingWrite
from integrations.engine.prefetch import prefetch
from integrations.engine.rate_limiter import credential_fingerprint
from integrations.engine.references import Referenced, fetch_references
from integrations.engine.refetch import Refetched, refetch_owed
from integrations.engine.registry import Integration, get_integration, provider_urls
from integrations.engine.results import RunStatus, SyncResult
from integrations.engine.retries import RetryPolicy
from integrations.engine.run_failures import counts_against_position, discard_reason, failed_hint, failure_kind
from integrations.engine.views import view_parts
from warehouse.connection import WarehouseError, WarehouseLocked
from warehouse.loader import (
    PageWrite,
    RecordBatch,
    RejectedRecord,
    StagedBatch,
    TableTarget,
    Warehouse,
    WriteCounts,
)
from warehouse.state import RunRecord
from warehouse.views import register_view_part

log = logging.getLogger("screensync.sync")

Progress = Callable[[int, int | None], None]  # (records so far, total if known)

PREFETCH_PAGES = 16  # pages downloaded ahead of validation and writing (~0.8 MB each, parsed)


class ConnectionLike(Protocol):
    connection_id: str
    integration: str
    status: str

    @property
    def metadata(self) -> Any: ...


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


def register_view_parts() -> None:
    """Hand every integration's `unified` view SELECTs to the warehouse (idempotent)."""
    for part in view_parts():
        register_view_part(part.view, part.sql, part.requires)


def api_base_for(integ: Integration, connection: Any) -> str:
    meta = connection.metadata
    return provider_urls(
        integ.definition,
        environment=getattr(meta, "environment", None),
        base_url=getattr(meta, "base_url", None),
    )["api"]


def open_client(integ: Integration, connection: Any, token: str, *, retry: RetryPolicy | None = None) -> ProviderClient:
    d = integ.definition
    return ProviderClient(
        integration=d.name,
        connection_id=connection.connection_id,
        api_base=api_base_for(integ, connection),
        auth=build_auth(d.auth, token),
        rate_limit=d.rate_limit,
        credential_fingerprint=credential_fingerprint(token),
        errors=d.errors,
        retry=retry,
    )


def _cursor_param(value: Any, lookback: timedelta) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return (value - lookback).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _max_cursor(current: Any, rows: list[dict[str, Any]], field: str) -> Any:
    values = [r[field] for r in rows if r.get(field) is not None]
    if not values:
        return current
    best = max(values)
    if current is None:
        return best
    if isinstance(current, str) and isinstance(best, datetime):
        current = datetime.fromisoformat(current.replace("Z", "+00:00"))
    return max(current, best)


def _json_cursor(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class SyncRun:
    """State of one run; `run_sync` is the public entry point."""

    def __init__(
        self,
        integ: Integration,
        sync: SyncConfig,
        connection: Any,
        token: str,
        warehouse: Warehouse,
        *,
        full_refresh: bool,
        retry: RetryPolicy | None,
        progress: Progress | None,
    ) -> None:
        self.integ = integ
        self.sync = sync
        self.connection = connection
        self.token = token
        self.wh = warehouse
        self.full_refresh = full_refresh
        self.retry = retry
        self.progress = progress
        self.targets = targets_for(integ, sync)
        self.model_of: dict[str, type[BaseModel]] = {t.table: t.model for t in self.targets.all()}
        self.transform = integ.resolve(sync.transform) if sync.transform else None
        self.run_id = uuid.uuid4().hex
        self.counts = WriteCounts()
        self.pages = 0
        self.records = 0
        self.cursor_start: Any = None  # the cursor this attempt reads after
        self.cursor_hold: Any = None  # the cursor may not pass this (cursor_hold.py)
        self.gone = 0  # records the provider answered 404/410 for (gone.py)
        self.observed_max: datetime | None = None  # latest provider time this run heard (observed.py)

    def observed(self, when: datetime | None) -> datetime | None:
        """Note a provider time this run heard; returns it."""
        if when is not None and (self.observed_max is None or when > self.observed_max):
            self.observed_max = when
        return when

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.integ.name, self.connection.connection_id, self.sync.name)

    def validate_page(self, records: list[Any]) -> tuple[list[RecordBatch], list[RejectedRecord], list[dict[str, Any]]]:
        return build_batches(self.sync, self.targets, records, self.transform, whole_list=self.reads_whole_list)

    @property
    def reads_whole_list(self) -> bool:
        """A full sync, or an incremental one's sweep / full refresh: what it did not see is gone."""
        return self.sync.mode == "full" or (self.sync.mode == "incremental" and self.full_refresh)

    def target_of(self, table: str) -> TableTarget:
        """This sync's target for `table`: its own, or an embedded child's."""
        return next(t for t in self.targets.all() if t.table == table)

    def write(self, batches: list[RecordBatch], rejects: list[RejectedRecord], attempt_id: str, *,
              as_sync: str | None = None) -> None:
        """Records without a checkpoint (fetched by id); `as_sync`: written for another sync of the
        integration (a referenced record), whose state is left alone and to which its rejects are owed."""
        self._write(batches, rejects, attempt_id, checkpoint=None, as_sync=as_sync)

    def _write(self, batches: list[RecordBatch] | list[StagedBatch], rejects: list[RejectedRecord], attempt_id: str, *,
               checkpoint: dict[str, Any] | None, cursor: Any = None, as_sync: str | None = None) -> None:
        integration, connection_id, sync = self.key
        sync = as_sync or sync
        counts = self.wh.write_page(
            PageWrite(
                integration=integration,
                connection_id=connection_id,
                sync=sync,
                run_id=self.run_id,
                attempt_id=attempt_id,
                batches=batches,
                rejects=rejects,
                checkpoint=checkpoint,
                cursor=cursor,
            )
        )
        self.counts = self.counts + counts

    def run_list(self, client: ProviderClient, attempt_id: str, checkpoint: dict[str, Any] | None,
                 cursor: Any) -> None:
        sync = self.sync
        incremental = sync.mode == "incremental" and not self.full_refresh
        params: dict[str, Any] = dict(sync.params)
        max_cursor = None
        resume_page = None
        self.cursor_start = cursor
        if checkpoint:
            params = checkpoint.get("params", params)
            max_cursor = checkpoint.get("max_cursor")
            resume_page = checkpoint.get("page")
            self.cursor_hold = checkpoint.get("hold")
        elif incremental and cursor is not None and sync.cursor is not None:
            params[sync.cursor.param] = _cursor_param(cursor, sync.cursor.lookback)
        if sync.cursor is not None and max_cursor is None:
            max_cursor = cursor
        pages: Iterator[Page] = iterate_pages(
            client,
            self.integ.definition.pagination_for(sync),
            sync.endpoint,
            params,
            single=sync.single,
            resume=resume_page,
            primary_key=sync.primary_key,
        )
        pending = PendingWrite()
        ahead = prefetch(pages, depth=PREFETCH_PAGES)
        try:
            while True:
                wait = None if pending.empty else max(0.0, pending.deadline - time.monotonic())
                try:
                    page = ahead.next_within(wait)
                except StopIteration:
                    break
                except Exception:
                    self._save_before_failing(pending, attempt_id, params, max_cursor)
                    raise
                if page is not None:
                    batches, rejects, rows = self.validate_page(page.records)
                    for b in batches:
                        b.observed_at = self.observed(page.observed_at)
                    pending.add([self.wh.stage(b, rejects) for b in batches], rejects, page)
                    if sync.cursor is not None:
                        max_cursor = _max_cursor(max_cursor, rows, sync.cursor.field)
                        if any(sync.refetch_for(r.model) is None for r in rejects):  # cannot be fetched by id
                            self.cursor_hold = earlier(self.cursor_hold, page_floor(page.records, sync.cursor.field))
                if pending.due:
                    self._write_pending(pending, attempt_id, params, max_cursor)
                    pending = PendingWrite()
            if not pending.empty:
                self._write_pending(pending, attempt_id, params, max_cursor)
        finally:
            ahead.close()

    def _save_before_failing(self, pending: PendingWrite, attempt_id: str, params: dict[str, Any],
                             max_cursor: Any) -> None:
        """The provider failed: keep the pages that arrived before, so the next run resumes after them."""
        if pending.empty:
            return
        try:
            self._write_pending(pending, attempt_id, params, max_cursor)
        except Exception as exc:  # the provider's error is the one to report
            log.warning("could not save the %d page(s) before the failure: %s", pending.pages, exc)

    def _write_pending(self, pending: PendingWrite, attempt_id: str, params: dict[str, Any], max_cursor: Any) -> None:
        """One transaction: the waiting pages' records and the checkpoint after the last of them."""
        tail = pending.tail
        assert tail is not None
        last = tail.checkpoint is None
        hold = _json_cursor(self.cursor_hold)
        ckpt = None if last else {"page": tail.checkpoint, "params": params, "max_cursor": _json_cursor(max_cursor),
                                  "hold": hold}
        cursor = cursor_to_store(max_cursor, self.cursor_hold, self.cursor_start)
        self._write(
            list(pending.batches.values()),
            pending.rejects,
            attempt_id,
            checkpoint=ckpt,
            cursor=_json_cursor(cursor) if (last and self.sync.cursor is not None) else None,
        )
        self.pages += pending.pages
        self.records += pending.records
        if self.progress:
            self.progress(self.records, tail.total)

    def run_repoll(self, client: ProviderClient, attempt_id: str) -> None:
        rp = self.sync.repoll
        assert rp is not None
        table = TableTarget(self.integ.definition.schema_name, rp.table, self.targets.main.model,
                            self.sync.primary_key)
        if rp.due is None:
            ids = self.wh.open_record_ids(table, self.connection.connection_id, rp.state_field, rp.terminal_states)
        else:  # only what is due, most overdue first, within the declared share of the rate budget
            ids = self.wh.due_record_ids(
                table, integration=self.integ.name, connection_id=self.connection.connection_id,
                state_field=rp.state_field, terminal=rp.terminal_states,
                **due_arguments(rp.due, self.sync, self.integ.definition.rate_limit))  # type: ignore[arg-type]
        stored = self.wh.stored_raws(table, self.connection.connection_id, ids) if rp.merge else None
        batch: list[Any] = []
        fetched_at: dict[str, datetime] = {}
        for i, rid in enumerate(ids, 1):
            try:
                body, response = client.get_json(rp.endpoint.format(id=rid))
                batch.append(body if stored is None else merge_partial(stored.get(rid), body))
                fetched_at[rid] = self.observed(provider_time(response)) or datetime.now(UTC)
            except ProviderError as exc:  # a 404 is about this record, not the run
                reason = gone_reason(exc, rp.endpoint)
                if reason is None:
                    raise
                self.mark_gone(table, [rid], reason, observed_at=self.observed(date_header_time(exc.date)))
            if len(batch) >= 50 or (i == len(ids) and batch):
                batches, rejects, _ = self.validate_page(batch)
                stamp(batches, fetched_at, max(fetched_at.values()))
                fetched_at = {}
                self._write(batches, rejects, attempt_id, checkpoint=None)
                self.records += len(batch)
                self.pages += 1
                batch = []
                if self.progress:
                    self.progress(self.records, len(ids))
        if rp.due is not None:  # every id asked for, gone ones too (they are no longer open)
            self.wh.note_checked(table, integration=self.integ.name, connection_id=self.connection.connection_id,
                                 ids=ids)

    def mark_gone(self, target: TableTarget, ids: list[str], reason: str, *, observed_at: datetime | None = None) -> None:
        """Records the provider answered 404/410 for: soft-deleted with `reason`, never fetched again."""
        integration, connection_id, _ = self.key
        log.info("%s/%s: %d %s record(s) gone at the provider (%s)", integration, connection_id, len(ids),
                 target.table, reason)
        self.wh.mark_gone(target, integration=integration, connection_id=connection_id, ids=ids, reason=reason,
                          run_id=self.run_id, observed_at=observed_at)
        self.gone += len(ids)


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
) -> SyncResult:
    """Run one sync; never raises for provider or warehouse trouble — the result says what happened.

    `owed_only` fetches only the records earlier runs quarantined (`screensync rejects retry`):
    no list, no checkpoint, no deletes."""
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
    try:
        connection, token = _usable_connection(store, integration, connection_id)
        remember_secret(token)  # whatever the provider echoes back, it never reaches a message
        run = SyncRun(integ, sync, connection, token, warehouse, full_refresh=full_refresh, retry=retry,
                      progress=progress)
        register_view_parts()
        warehouse.ensure_tables(run.targets.all())
        if owed_only:
            with fewer_collections(), open_client(integ, connection, token, retry=retry) as client:
                try:
                    refetched = refetch_owed(run, client, f"refetch-{run.run_id}", all_owed=True)
                finally:
                    requests, retries, rate_limited = _activity(client)
        else:
            discarded = discard_reason(warehouse.get_state(integration, connection_id, sync_name),
                                       full_refresh=full_refresh)
            if discarded:
                log.warning("sync %s/%s/%s: %s", integration, connection_id, sync_name, discarded)
            state = warehouse.begin_attempt(integration, connection_id, sync_name, fresh=discarded is not None)
            resumed = bool(state.checkpoint)
            log.info("sync %s/%s/%s starting (%s%s)", integration, connection_id, sync_name, mode,
                     ", resuming" if resumed else "")
            with fewer_collections(), open_client(integ, connection, token, retry=retry) as client:
                try:
                    if sync.mode == "repoll":
                        run.run_repoll(client, state.attempt_id)
                    else:
                        run.run_list(client, state.attempt_id, state.checkpoint,
                                     None if full_refresh else state.cursor)
                    refetched = refetch_owed(run, client, state.attempt_id or "", all_owed=False)
                    referenced = fetch_references(run, client, state.attempt_id or "")
                finally:
                    requests, retries, rate_limited = _activity(client)
            deletes = run.targets.tracked(sync) if mode == "full" else []
            deleted = warehouse.complete_attempt(integration, connection_id, sync_name, state.attempt_id,
                                                 deletes=deletes, run_id=run.run_id, observed_at=run.observed_max)
        owed = warehouse.count_owed(integration, connection_id, sync_name)
        if run.counts.rejected or owed:
            status = RunStatus.PARTIAL
            hint = (f"{run.counts.rejected} record(s) quarantined by this run, {owed} still owed: "
                    f"`screensync rejects list {integration} -c {connection_id}` shows them; they are fetched "
                    "again on every run until they land (`screensync rejects retry` does it now)")
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
    finished = datetime.now(UTC)
    counts = run.counts if run else WriteCounts()
    result = SyncResult(
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
        finished_at=finished,
        duration_s=round(time.monotonic() - t0, 3),
        error=error,
        hint=hint,
        checkpoint_discarded=discarded,
    )
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
