"""The webhook applier: every event recorded in the inbox reaches the warehouse, in batches.

The receiver answers 2xx once a delivery is durably in the inbox (connections/webhooks). This
composition root joins the inbox, the engine (which turns an event into validated records) and
the warehouse, and runs in every long-running process: `screensync serve-web` (woken by each
recorded delivery, plus a tick), `screensync serve`, and each sync flow run (at its start and end,
plus a tick while it runs), so an event lands within seconds of the warehouse being writable,
whichever of them run. No operator step.

One pass: the oldest pending events (up to BATCH) -> records per (integration, connection, table)
-> ONE warehouse transaction -> the events are marked `processed` after the commit. A crash in
between applies them again later, which changes nothing: a version never replaces a newer one
(warehouse/upsert.py) and an unchanged one is not rewritten. An event whose payload cannot be
used is marked `failed` with the real error and never holds up the others. A busy warehouse
leaves the batch `pending`, its detail naming who holds the warehouse, and the next tick tries
again. One process per host applies at a time (a lock file beside the warehouse); the others skip.
Events are claimed with a lease (`inbox.claim`), so appliers on several hosts sharing a PostgreSQL
store never apply one event twice, and a dead applier's events come back when the lease runs out.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from common import settings
from connections.store import ConnectionStore, open_store
from connections.webhooks import inbox
from connections.webhooks.routing import affected, facts_of, route
from flows.locks import LockTimeout, file_lock
from integrations.engine.views import view_parts
from integrations.engine.webhook_sink import event_records
from warehouse.access import WRITER_TURN_S
from warehouse.connection import WarehouseError, WarehouseLocked
from warehouse.loader import ObjectWrite, RecordBatch, TableTarget, Warehouse
from warehouse.rwlock import lock_dir

log = logging.getLogger("screensync.webhooks")

BATCH = 300  # events per warehouse transaction
TICK_S = 2.0  # a background applier looks at the inbox at least this often
# the longest one batch waits for the warehouse before trying again later: another process's writer
# keeps the file for a turn (WRITER_TURN_S), so a turn and a few seconds more
LOCK_TIMEOUT_S = WRITER_TURN_S + 4.0

Outcome = tuple[str, str, str, str | None]  # (integration, event id, status, detail)


@dataclass
class ApplyReport:
    """What one call did: events applied, failed, dropped or otherwise settled, and left pending."""

    applied: int = 0
    failed: int = 0
    settled: int = 0  # dropped (revoked), unmatched, ignored, or a lifecycle event routed again
    pending: int = 0  # left for later: the warehouse was busy
    busy: str | None = None  # why they were left
    skipped: bool = False  # another process was applying

    def add(self, other: ApplyReport) -> None:
        self.applied += other.applied
        self.failed += other.failed
        self.settled += other.settled
        self.pending = other.pending
        self.busy = other.busy


@dataclass
class _Batch:
    """One pass's events, turned into warehouse writes."""

    outcomes: list[Outcome] = field(default_factory=list)  # settled without a write
    events: list[dict[str, Any]] = field(default_factory=list)  # rows with something to write
    writes: dict[tuple[str, str], list[tuple[dict[str, Any], list[RecordBatch]]]] = field(
        default_factory=lambda: defaultdict(list)
    )


class WebhookApplier:
    """Apply pending inbox events now (`apply_pending`) or in a background thread (`start`/`wake`/`stop`)."""

    def __init__(
        self,
        store: ConnectionStore | None = None,
        warehouse: str | Path | None = None,
        *,
        batch_size: int = BATCH,
        lock_timeout: float = LOCK_TIMEOUT_S,
        tick: float = TICK_S,
    ) -> None:
        self.store = store or open_store()
        # a file path or a DuckLake URL; `path` is where this host's applier lock lives
        self.target: str | Path = warehouse if warehouse is not None else settings.warehouse_setting()
        self.path = settings.local_lock_anchor(self.target)
        self.batch_size = batch_size
        self.lock_timeout = lock_timeout
        self.tick = tick
        self._warehouse: Warehouse | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: ApplyReport | None = None

    # -- one pass ------------------------------------------------------------------------------
    def apply_pending(self, *, limit: int | None = None) -> ApplyReport:
        """Apply pending events, a batch at a time, until none is left, the warehouse is busy, or
        `limit` events were looked at. Skips (report.skipped) while another process applies."""
        report = ApplyReport()
        try:
            with file_lock(lock_dir(self.path) / "webhook-applier.lock", timeout=0, what="the webhook applier"):
                seen = 0
                while limit is None or seen < limit:
                    # claimed, not just read: appliers on other hosts (a shared PostgreSQL store) each
                    # get other events; the host-local lock only keeps one applier per host
                    rows = inbox.claim(self.store, limit=self.batch_size if limit is None
                                       else min(self.batch_size, limit - seen))
                    if not rows:
                        break
                    seen += len(rows)
                    done = self._apply(rows)
                    report.add(done)
                    if done.busy:
                        break
        except LockTimeout:
            report.skipped = True
        self.last = report
        if report.applied or report.failed or report.busy:
            log.info("webhooks: %d applied, %d failed, %d settled%s", report.applied, report.failed, report.settled,
                     f", {report.pending} waiting: {report.busy}" if report.busy else "")
        return report

    def _apply(self, rows: list[dict[str, Any]]) -> ApplyReport:
        batch = self._prepare(rows)
        inbox.settle(self.store, batch.outcomes)
        report = ApplyReport(settled=sum(o[2] not in ("processed", "failed") for o in batch.outcomes),
                             failed=sum(o[2] == "failed" for o in batch.outcomes),
                             applied=sum(o[2] == "processed" for o in batch.outcomes))
        if not batch.events:
            return report
        try:
            self._write(batch.writes)
        except WarehouseLocked as exc:
            detail = f"waiting for the warehouse: {exc.detail}"
            inbox.requeue(self.store, batch.events, detail)
            report.pending, report.busy = len(batch.events), detail
            return report
        except (WarehouseError, ValueError) as exc:  # something in the batch: find it, one event at a time
            log.warning("webhooks: a batch of %d could not be written (%s); applying them one by one",
                        len(batch.events), exc)
            return self._one_by_one(batch, report)
        inbox.settle(self.store, [_applied(r) for r in batch.events])
        report.applied += len(batch.events)
        return report

    def _prepare(self, rows: list[dict[str, Any]]) -> _Batch:
        """Each event's records per connection it affects; events with nothing to write are settled here."""
        batch = _Batch()
        for row in rows:
            integration, event_id = row["integration"], row["event_id"]
            try:
                event = inbox.body(self.store, row)
                facts = facts_of(integration, event)
                if facts.kind != "object":
                    # a lifecycle event left pending by a crash mid-delivery: route it again (idempotent)
                    status, detail = route(self.store, integration, event, affected(self.store, integration, event))
                    batch.outcomes.append((integration, event_id, status, detail))
                    continue
                targets = affected(self.store, integration, event) or []
                live = [c for c in targets if c.status != "revoked"]  # a revoked connection is never written again
                if not targets:
                    batch.outcomes.append((integration, event_id, "unmatched",
                                           f"no connection with account {facts.account_id}"))
                    continue
                if not live:
                    batch.outcomes.append((integration, event_id, "dropped",
                                           f"{', '.join(c.connection_id for c in targets)} revoked"))
                    continue
                records, rejects = event_records(integration, event, default_time=_received(row))
            except Exception as exc:  # the payload (or the handler reading it) is at fault: this event only
                batch.outcomes.append((integration, event_id, "failed", f"{type(exc).__name__}: {exc}"))
                continue
            if rejects:
                errors = "; ".join(f"{r.model} {r.record_id or '(no id)'}: {r.error}" for r in rejects)
                batch.outcomes.append((integration, event_id, "failed", f"invalid object: {errors}"[:1000]))
                continue
            if not records:
                batch.outcomes.append((integration, event_id, "processed", "no object to write"))
                continue
            batch.events.append(row)
            for conn in live:
                batch.writes[(integration, conn.connection_id)].append((row, records))
        return batch

    def _write(self, writes: dict[tuple[str, str], list[tuple[dict[str, Any], list[RecordBatch]]]]) -> None:
        """Every connection's records in ONE transaction, one upsert per table per connection."""
        objects = [ObjectWrite(integration, connection_id, _merged(items), run_id="webhook",
                               received_at=max(_received(row) for row, _ in items), events=len(items))
                   for (integration, connection_id), items in writes.items()]
        self._wh().write_objects(objects)

    def _one_by_one(self, batch: _Batch, report: ApplyReport) -> ApplyReport:
        for row in batch.events:
            key = (row["integration"], row["event_id"])
            mine = {k: [i for i in items if (i[0]["integration"], i[0]["event_id"]) == key]
                    for k, items in batch.writes.items()}
            try:
                self._write({k: v for k, v in mine.items() if v})
            except WarehouseLocked as exc:
                inbox.requeue(self.store, [row], f"waiting for the warehouse: {exc.detail}")
                report.pending += 1
                report.busy = f"waiting for the warehouse: {exc.detail}"
                continue
            except Exception as exc:
                inbox.settle(self.store, [(*key, "failed", f"{type(exc).__name__}: {exc}"[:1000])])
                report.failed += 1
                continue
            inbox.settle(self.store, [_applied(row)])
            report.applied += 1
        return report

    def _wh(self) -> Warehouse:
        if self._warehouse is None:
            self._warehouse = Warehouse(self.target, lock_timeout=self.lock_timeout,
                                        purpose="webhook applier").use_view_parts(view_parts())
        return self._warehouse

    # -- in the background -----------------------------------------------------------------------
    def start(self) -> WebhookApplier:
        """Apply in a background thread: now, whenever `wake()` is called, and every `tick` seconds."""
        if self._thread is None:
            self._stop.clear()
            self._wake.set()
            self._thread = threading.Thread(target=self._run, name="webhook-applier", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """A delivery was recorded: look at the inbox now (cheap; safe from any thread)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the pass in progress and stop the thread."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.tick)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.apply_pending()
            except Exception:  # the store or the warehouse misbehaving: say so, try again next tick
                log.exception("webhooks: applying pending events failed; retrying in %.0fs", self.tick)

    def __enter__(self) -> WebhookApplier:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _applied(row: dict[str, Any]) -> Outcome:
    return (row["integration"], row["event_id"], "processed", "applied to the warehouse")


def _received(row: dict[str, Any]) -> datetime:
    """When we recorded the event (our clock): the object's time when the event carries none."""
    try:
        return datetime.fromisoformat(str(row["received_at"]))
    except ValueError:
        return datetime.now(UTC)


def _merged(items: list[tuple[dict[str, Any], list[RecordBatch]]]) -> list[RecordBatch]:
    """The batches of several events for one connection, as one batch per table: one upsert each.
    (Several versions of one record keep the latest observed, warehouse/staging.py.)"""
    merged: dict[TableTarget, RecordBatch] = {}
    for _, batches in items:
        for b in batches:
            m = merged.get(b.target)
            if m is None:
                m = merged[b.target] = RecordBatch(b.target, [], [], observed_at=[], run_ids=[])
            m.rows += b.rows
            m.raws += b.raws
            assert isinstance(m.observed_at, list) and m.run_ids is not None
            m.observed_at += b.observed_at if isinstance(b.observed_at, list) else [b.observed_at] * len(b.rows)
            m.run_ids += b.run_ids or ["webhook"] * len(b.rows)
    return list(merged.values())


@contextmanager
def applying_beside(warehouse: str | Path | None = None) -> Iterator[WebhookApplier | None]:
    """A background applier for the length of the block and one last pass at its end: what each sync
    flow run and `screensync serve` do. Never fails the block (no store, no key: no applier, said so)."""
    try:
        applier = WebhookApplier(warehouse=warehouse).start()
    except Exception as exc:
        log.warning("webhooks: not applying pending events in this process: %s", exc)
        applier = None
    try:
        yield applier
    finally:
        if applier is not None:
            applier.stop()
            try:
                applier.apply_pending()
            except Exception as exc:
                log.warning("webhooks: the last pass failed (%s); the next process that applies them will", exc)
