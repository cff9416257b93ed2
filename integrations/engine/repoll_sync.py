"""A re-poll sync: records stored earlier are fetched again one by one until they reach a terminal
state (ClearChecks orders); one the provider no longer has is marked gone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from integrations.engine.due import due_arguments
from integrations.engine.errors import ProviderError
from integrations.engine.fetch_ahead import in_order
from integrations.engine.gone import gone_reason
from integrations.engine.http_client import ProviderClient
from integrations.engine.observed import date_header_time, provider_time, stamp
from integrations.engine.partial_records import merge_partial
from integrations.engine.sync_run import SyncRun
from warehouse.loader import TableTarget


def run_repoll(run: SyncRun, client: ProviderClient, attempt_id: str) -> None:
    """Fetch each stored record not yet in a terminal state by id, and land the batches."""
    rp = run.sync.repoll
    assert rp is not None
    table = TableTarget(run.integ.definition.schema_name, rp.table, run.targets.main.model,
                        run.sync.primary_key)
    if rp.due is None:
        ids = run.wh.open_record_ids(table, run.connection.connection_id, rp.state_field, rp.terminal_states)
    else:  # only what is due, most overdue first, within the declared share of the rate budget
        ids = run.wh.due_record_ids(
            table, integration=run.integ.name, connection_id=run.connection.connection_id,
            state_field=rp.state_field, terminal=rp.terminal_states,
            **due_arguments(rp.due, run.sync, run.integ.definition.rate_limit))  # type: ignore[arg-type]
    stored = run.wh.stored_raws(table, run.connection.connection_id, ids) if rp.merge else None
    batch: list[Any] = []
    fetched_at: dict[str, datetime] = {}
    answers = in_order(client.concurrency, ids, lambda rid: client.get_json(rp.endpoint.format(id=rid)),
                       keep=(ProviderError,))  # several in flight at once, landed in order
    for i, (rid, answer) in enumerate(answers, 1):
        if isinstance(answer, ProviderError):  # a 404 is about this record, not the run
            reason = gone_reason(answer, rp.endpoint)
            if reason is None:
                raise answer
            run.mark_gone(table, [rid], reason, observed_at=run.observed(date_header_time(answer.date)))
        else:
            body, response = answer
            batch.append(body if stored is None else merge_partial(stored.get(rid), body))
            fetched_at[rid] = run.observed(provider_time(response)) or datetime.now(UTC)
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
    if rp.due is not None:  # every id asked for, gone ones too (they are no longer open)
        run.wh.note_checked(table, integration=run.integ.name, connection_id=run.connection.connection_id, ids=ids)
