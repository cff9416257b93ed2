"""A list sync: page through the provider's list, validate each page, land pages with their checkpoint.

Pages are fetched ahead (prefetch.py) and written a few at a time (pending_write.py); each write
carries the Checkpoint after its last page, so a killed run resumes there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from integrations.engine.checkpoint import Checkpoint
from integrations.engine.cursor import cursor_param, json_cursor, max_cursor
from integrations.engine.cursor_hold import cursor_to_store, earlier, page_floor
from integrations.engine.http_client import ProviderClient
from integrations.engine.paginators import Page, iterate_pages
from integrations.engine.pending_write import PendingWrite
from integrations.engine.prefetch import prefetch
from integrations.engine.sync_run import SyncRun

log = logging.getLogger("screensync.sync")

# pages downloaded ahead of validation and writing (~0.8 MB each, parsed): 16 cost ~10 MB more for no
# speed (bench/sync_ab.py, docs/benchmarks.md); pages fetched concurrently wait in fetch_ahead.py
PREFETCH_PAGES = 4


def run_list(run: SyncRun, client: ProviderClient, attempt_id: str, checkpoint: Checkpoint | None, cursor: Any) -> None:
    """Read the list from `checkpoint` (or the start, after `cursor`), landing pages as they are due."""
    sync = run.sync
    incremental = sync.mode == "incremental" and not run.full_refresh
    params: dict[str, Any] = dict(sync.params)
    highest = None
    resume_page = None
    run.cursor_start = cursor
    if checkpoint:
        params = checkpoint.params
        highest = checkpoint.max_cursor
        resume_page = checkpoint.page
        run.cursor_hold = checkpoint.hold
    elif incremental and cursor is not None and sync.cursor is not None:
        params[sync.cursor.param] = cursor_param(cursor, sync.cursor.lookback)
    if sync.cursor is not None and highest is None:
        highest = cursor
    reader: list[prefetch[Page]] = []  # the prefetch below, once built: the pages waiting for this loop
    pages: Iterator[Page] = iterate_pages(
        client,
        run.integ.definition.pagination_for(sync),
        sync.endpoint,
        params,
        single=sync.single,
        resume=resume_page,
        primary_key=sync.primary_key,
        reader_waiting=lambda: reader[0].starved if reader else True,
    )
    pending = PendingWrite()
    ahead = prefetch(pages, depth=PREFETCH_PAGES)
    reader.append(ahead)
    try:
        # the first page is on its way: a fresh warehouse's tables and views (~0.3 s) cost no latency
        run.wh.ensure_tables(run.targets.all())
        while True:
            wait = None if pending.empty else max(0.0, pending.deadline - time.monotonic())
            try:
                page = ahead.next_within(wait)
            except StopIteration:
                break
            except Exception:
                _save_before_failing(run, pending, attempt_id, params, highest)
                raise
            if page is not None:
                batches, rejects, rows = run.validate_page(page.records)
                for b in batches:
                    b.observed_at = run.observed(page.observed_at)
                if run.list_from is None:
                    run.list_from = page.observed_at
                pending.add([run.wh.stage(b, rejects) for b in batches], rejects, page)
                if sync.cursor is not None:
                    highest = max_cursor(highest, rows, sync.cursor.field)
                    if any(sync.refetch_for(r.model) is None for r in rejects):  # cannot be fetched by id
                        run.cursor_hold = earlier(run.cursor_hold, page_floor(page.records, sync.cursor.field))
            if pending.due:
                _write_pending(run, pending, attempt_id, params, highest)
                pending = PendingWrite()
        if not pending.empty:
            _write_pending(run, pending, attempt_id, params, highest)
    finally:
        ahead.close()


def _save_before_failing(run: SyncRun, pending: PendingWrite, attempt_id: str, params: dict[str, Any],
                         highest: Any) -> None:
    """The provider failed: keep the pages that arrived before, so the next run resumes after them."""
    if pending.empty:
        return
    try:
        _write_pending(run, pending, attempt_id, params, highest)
    except Exception as exc:  # the provider's error is the one to report
        log.warning("could not save the %d page(s) before the failure: %s", pending.pages, exc)


def _write_pending(run: SyncRun, pending: PendingWrite, attempt_id: str, params: dict[str, Any], highest: Any) -> None:
    """One transaction: the waiting pages' records and the checkpoint after the last of them."""
    tail = pending.tail
    assert tail is not None
    last = tail.checkpoint is None
    hold = json_cursor(run.cursor_hold)
    ckpt = None if last else Checkpoint(page=tail.checkpoint, params=params, max_cursor=json_cursor(highest),
                                        hold=hold)
    cursor = cursor_to_store(highest, run.cursor_hold, run.cursor_start)
    run.land(
        list(pending.batches.values()),
        pending.rejects,
        attempt_id,
        checkpoint=ckpt,
        cursor=json_cursor(cursor) if (last and run.sync.cursor is not None) else None,
        list_from=run.list_from,
    )
    run.pages += pending.pages
    run.records += pending.records
    if run.progress:
        run.progress(run.records, tail.total)
