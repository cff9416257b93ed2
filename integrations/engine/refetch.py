"""Fetch owed records again by id: a quarantined record is not lost once the cursor passes it.

A sync declares where one record is fetched (`refetch:` in its definition: Checkr's
`/candidates/{id}` with `include=reports`; an embedded table declares its own, `/reports/{id}`;
a re-poll sync uses its re-poll endpoint). After its list, every run fetches the records its
earlier runs quarantined and that have not landed since; `screensync rejects retry` fetches all
of them at once. A record that now validates lands (and is owed no more); one the provider
answers 404 or 410 for is gone (marked deleted, owed no more: gone.py); one that fails again
stays owed with the new error. A record without a declared endpoint waits for the sync's list to bring it back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

from integrations.engine.batches import by_id_batches
from integrations.engine.definition import RefetchConfig, SyncConfig
from integrations.engine.errors import ProviderError
from integrations.engine.fetch_ahead import in_order
from integrations.engine.gone import gone_reason
from integrations.engine.http_client import ProviderClient
from integrations.engine.observed import date_header_time, provider_time, stamp
from integrations.engine.paginators import extract_records
from integrations.engine.registry import Integration
from warehouse.loader import RejectedRecord, TableTarget, Warehouse

log = logging.getLogger("screensync.sync")

BATCH = 50  # records fetched by id per warehouse write


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

    @property
    def reads_whole_list(self) -> bool: ...
    def write(self, batches: list[Any], rejects: list[RejectedRecord], attempt_id: str) -> None: ...
    def target_of(self, table: str) -> TableTarget: ...
    def mark_gone(self, target: TableTarget, ids: list[str], reason: str, *,
                  observed_at: datetime | None = None) -> None: ...


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
    fetchable = [(o, how) for o in owed if (how := sync.refetch_for(o.table)) is not None]
    # without a fetch by id the list brings it back (a full sync), or the cursor waits for it
    answers = in_order(client.concurrency, fetchable,
                       lambda oh: fetch_one(client, run.integ, sync, oh[1], oh[0].record_id), keep=(ProviderError,))
    for (o, how), answer in answers:
        if isinstance(answer, ProviderError):
            exc = answer
            reason = gone_reason(exc, how.endpoint)
            if reason is not None:
                run.mark_gone(run.target_of(o.table), [o.record_id], reason,
                              observed_at=date_header_time(exc.date))
                done.gone += 1
            else:
                log.warning("%s/%s: owed %s %s could not be fetched: %s", integration, connection_id, o.table,
                            o.record_id, exc)
                done.still_owed += 1
            continue
        record, when = answer
        pending.setdefault(o.table, []).append((o.record_id, record, when))
        if len(pending[o.table]) >= BATCH:
            _land(run, o.table, pending.pop(o.table), attempt_id, done, seen=not all_owed)
    for table, fetched in pending.items():
        _land(run, table, fetched, attempt_id, done, seen=not all_owed)
    return done


def fetch_one(
    client: ProviderClient, integ: Integration, sync: SyncConfig, how: RefetchConfig, record_id: str
) -> tuple[Any, datetime]:
    """One record by id where the definition says, and when the provider served it (observed.py);
    a ProviderError (a 404: gone) is the caller's to judge."""
    body, response = client.get_json(how.endpoint.format(id=quote(record_id, safe="")), params=how.params or None)
    where = f"{integ.name} connection {client.connection_id!r}: {how.endpoint}"
    (record,) = extract_records(body, integ.definition.pagination_for(sync), single=True, where=where)
    return record, provider_time(response)


def _land(
    run: RunLike, table: str, fetched: list[tuple[str, Any, datetime]], attempt_id: str, done: Refetched, *, seen: bool
) -> None:
    batches, rejects, landed_ids = by_id_batches(run.integ, run.sync, table, [r for _, r, _ in fetched],
                                                 whole_list=seen and run.reads_whole_list)
    when = {rid: at for rid, _, at in fetched}
    stamp(batches, when, max(when.values()))
    run.write(batches, rejects, attempt_id)
    landed = sum(1 for rid, _, _ in fetched if rid in landed_ids)
    done.landed += landed
    done.still_owed += len(fetched) - landed
