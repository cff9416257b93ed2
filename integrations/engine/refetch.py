"""Fetch owed records again by id: a quarantined record is not lost once the cursor passes it.

A sync declares where one record is fetched (`refetch:` in its definition: Checkr's
`/candidates/{id}` with `include=reports`; an embedded table declares its own, `/reports/{id}`;
a re-poll sync uses its re-poll endpoint). After its list, every run fetches the records its
earlier runs quarantined and that have not landed since; `screensync rejects retry` fetches all
of them at once. A record that now validates lands (and is owed no more); one the provider
answers 404 or 410 for is gone, and owed no more; one that fails again stays owed with the new
error. A record without a declared endpoint waits for the sync's list to bring it back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

from integrations.engine.errors import ProviderError
from integrations.engine.http_client import ProviderClient
from integrations.engine.observed import provider_time, stamp
from integrations.engine.paginators import extract_records
from integrations.engine.registry import Integration
from integrations.engine.validation import validate_records
from warehouse.loader import RecordBatch, RejectedRecord, TableTarget, Warehouse

log = logging.getLogger("screensync.sync")

BATCH = 50  # records fetched by id per warehouse write
GONE = (404, 410)


@dataclass
class Refetched:
    landed: int = 0  # owed records that validated and were written
    gone: int = 0  # owed records the provider no longer has
    still_owed: int = 0  # fetched and quarantined again, or the fetch was refused


class RunLike(Protocol):
    integ: Integration
    sync: Any
    wh: Warehouse
    connection: Any
    run_id: str

    def validate_page(self, records: list[Any]) -> tuple[list[RecordBatch], list[RejectedRecord], list[Any]]: ...
    def write(self, batches: list[Any], rejects: list[RejectedRecord], attempt_id: str) -> None: ...


def refetch_owed(run: RunLike, client: ProviderClient, attempt_id: str, *, all_owed: bool) -> Refetched:
    """Fetch this sync's owed records by id (those of earlier runs, or `all_owed`) and write them.

    Within a run (not `all_owed`) what lands counts as seen by the run's attempt, like a listed record."""
    integration, connection_id, sync = run.integ.name, run.connection.connection_id, run.sync
    done = Refetched()
    owed = [
        o for o in run.wh.owed_records(integration=integration, connection_id=connection_id, sync=sync.name)
        if all_owed or o.last_run_id != run.run_id
    ]
    pending: dict[str, list[tuple[str, Any, datetime]]] = {}  # table -> (owed id, fetched record, when)
    for o in owed:
        how = sync.refetch_for(o.table)
        if how is None:
            continue  # the list brings it back (a full sync), or the cursor waits for it
        try:
            body, response = client.get_json(how.endpoint.format(id=quote(o.record_id, safe="")),
                                             params=how.params or None)
        except ProviderError as exc:
            if exc.status_code in GONE:
                log.info("%s/%s: owed %s %s is gone at the provider (%d)", integration, connection_id, o.table,
                         o.record_id, exc.status_code)
                run.wh.settle_gone(integration, connection_id, o.table, o.record_id)
                done.gone += 1
            else:
                log.warning("%s/%s: owed %s %s could not be fetched: %s", integration, connection_id, o.table,
                            o.record_id, exc)
                done.still_owed += 1
            continue
        where = f"{integration} connection {connection_id!r}: {how.endpoint}"
        (record,) = extract_records(body, run.integ.definition.pagination_for(sync), single=True, where=where)
        pending.setdefault(o.table, []).append((o.record_id, record, provider_time(response)))
        if len(pending[o.table]) >= BATCH:
            _land(run, o.table, pending.pop(o.table), attempt_id, done, seen=not all_owed)
    for table, fetched in pending.items():
        _land(run, table, fetched, attempt_id, done, seen=not all_owed)
    return done


def _land(
    run: RunLike, table: str, fetched: list[tuple[str, Any, datetime]], attempt_id: str, done: Refetched, *, seen: bool
) -> None:
    records = [r for _, r, _ in fetched]
    if table == run.sync.table:
        batches, rejects, _ = run.validate_page(records)
        landed_ids = {str(row.get(run.sync.primary_key)) for row in batches[0].rows}
        for b in batches:
            b.track_seen = b.track_seen and seen
    else:
        embedded = next(e for e in run.sync.embedded if e.table == table)
        target = TableTarget(run.integ.definition.schema_name, table, run.integ.model(embedded.model),
                             embedded.primary_key)
        checked = validate_records(target.model, records, primary_key=target.primary_key)
        batches = [RecordBatch(target, checked.rows, checked.raws)]
        rejects = [RejectedRecord(table, rid, err, raw) for rid, err, raw in checked.rejects]
        landed_ids = set(checked.ids)
    when = {rid: at for rid, _, at in fetched}
    stamp(batches, when, max(when.values()))
    run.write(batches, rejects, attempt_id)
    landed = sum(1 for rid, _, _ in fetched if rid in landed_ids)
    done.landed += landed
    done.still_owed += len(fetched) - landed
