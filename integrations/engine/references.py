"""Records named by other records, fetched by id when the warehouse does not hold them.

A sync declares `references:` — fields of its records that name a record of another table
(Checkr: an invitation's `report_id` once the candidate completes it, a report's
`candidate_id`). After each run, ids those fields name that the named table does not hold, owe
or know to be gone are fetched where the table's own sync fetches one record
(`IntegrationDefinition.fetcher_for`), validated as that sync lands them (a candidate brings its
reports along) and written under that sync's name, so a record that fails validation is owed
to it. This is how a report ordered on a candidate synced long ago arrives within one run of
the invitations sync, whatever its candidates cursor says. Rows written by any path (a sync,
a webhook) are checked, so a reference a webhook brought is resolved too. A 404 marks the id
gone (gone.py); at most `max_per_run` ids per reference are fetched in one run, the rest next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from integrations.engine.batches import Targets, by_id_batches, targets_for
from integrations.engine.definition import ReferenceConfig
from integrations.engine.errors import ProviderError
from integrations.engine.fetch_ahead import in_order
from integrations.engine.gone import gone_reason
from integrations.engine.http_client import ProviderClient
from integrations.engine.observed import date_header_time, stamp
from integrations.engine.refetch import BATCH, fetch_one
from integrations.engine.registry import Integration
from warehouse.loader import RejectedRecord, TableTarget, Warehouse

log = logging.getLogger("screensync.sync")


@dataclass
class Referenced:
    landed: int = 0  # named records that were missing, fetched by id and written
    gone: int = 0  # named records the provider answered 404/410 for
    failed: int = 0  # refused for another reason (left for the next run)


class RunLike(Protocol):
    integ: Integration
    sync: Any
    wh: Warehouse
    connection: Any
    targets: Targets

    def write(self, batches: list[Any], rejects: list[RejectedRecord], attempt_id: str, *,
              as_sync: str | None = None) -> None: ...
    def mark_gone(self, target: TableTarget, ids: list[str], reason: str, *,
                  observed_at: datetime | None = None) -> None: ...


def fetch_references(run: RunLike, client: ProviderClient, attempt_id: str) -> Referenced:
    """Fetch and write every record this sync's references name that the warehouse lacks."""
    done = Referenced()
    for ref in run.sync.references:
        _fetch(run, client, ref, attempt_id, done)
    return done


def _fetch(run: RunLike, client: ProviderClient, ref: ReferenceConfig, attempt_id: str, done: Referenced) -> None:
    integ, connection_id = run.integ, run.connection.connection_id
    fetcher = integ.definition.fetcher_for(ref.table)
    assert fetcher is not None  # the definition's validator refuses a reference nothing can fetch
    owner, how = fetcher
    owner_targets = targets_for(integ, owner)
    target = next(t for t in owner_targets.all() if t.table == ref.table)
    run.wh.ensure_tables(owner_targets.all())
    ids = run.wh.missing_references(run.targets.main, ref.field, target, integration=integ.name,
                                    connection_id=connection_id, limit=ref.max_per_run)
    if ids:
        log.info("%s/%s: %d %s named by %s.%s are not stored: fetching them by id", integ.name, connection_id,
                 len(ids), ref.table, run.sync.table, ref.field)
    fetched: list[Any] = []
    when: dict[str, datetime] = {}
    answers = in_order(client.concurrency, ids, lambda rid: fetch_one(client, integ, owner, how, rid),
                       keep=(ProviderError,))
    for i, (rid, answer) in enumerate(answers, 1):
        if isinstance(answer, ProviderError):
            reason = gone_reason(answer, how.endpoint)
            if reason is not None:
                run.mark_gone(target, [rid], reason, observed_at=date_header_time(answer.date))
                done.gone += 1
            else:
                log.warning("%s/%s: %s %s (named by %s.%s) could not be fetched: %s", integ.name, connection_id,
                            ref.table, rid, run.sync.table, ref.field, answer)
                done.failed += 1
        else:
            record, when[rid] = answer
            fetched.append(record)
        if fetched and (len(fetched) >= BATCH or i == len(ids)):
            batches, rejects, landed = by_id_batches(integ, owner, ref.table, fetched)
            stamp(batches, when, max(when.values()))
            run.write(batches, rejects, attempt_id, as_sync=owner.name)
            done.landed += len(landed)
            fetched, when = [], {}
