"""A re-poll sync: records stored earlier are fetched again one by one until they reach a terminal
state (ClearChecks orders); one the provider no longer has is marked gone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from integrations.engine.errors import ProviderError
from integrations.engine.gone import gone_reason
from integrations.engine.http_client import ProviderClient
from integrations.engine.observed import date_header_time, provider_time, stamp
from integrations.engine.sync_run import SyncRun
from warehouse.loader import TableTarget


def run_repoll(run: SyncRun, client: ProviderClient, attempt_id: str) -> None:
    """Fetch each stored record not yet in a terminal state by id, and land the batches."""
    rp = run.sync.repoll
    assert rp is not None
    table = TableTarget(run.integ.definition.schema_name, rp.table, run.targets.main.model,
                        run.sync.primary_key)
    ids = run.wh.open_record_ids(table, run.connection.connection_id, rp.state_field, rp.terminal_states)
    batch: list[Any] = []
    fetched_at: dict[str, datetime] = {}
    for i, rid in enumerate(ids, 1):
        try:
            body, response = client.get_json(rp.endpoint.format(id=rid))
            batch.append(body)
            fetched_at[rid] = run.observed(provider_time(response)) or datetime.now(UTC)
        except ProviderError as exc:  # a 404 is about this record, not the run
            reason = gone_reason(exc, rp.endpoint)
            if reason is None:
                raise
            run.mark_gone(table, [rid], reason, observed_at=run.observed(date_header_time(exc.date)))
        if len(batch) >= 50 or (i == len(ids) and batch):
            batches, rejects, _ = run.validate_page(batch)
            stamp(batches, fetched_at, max(fetched_at.values()))
            fetched_at = {}
            run.land(batches, rejects, attempt_id, checkpoint=None)
            run.records += len(batch)
            run.pages += 1
            batch = []
            if run.progress:
                run.progress(run.records, len(ids))
