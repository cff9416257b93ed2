"""`screensync status`: every integration x connection x sync at a glance.

Per sync: the last success and how stale the data is now (freshness lag), the last error, the
rows added/updated/deleted by the last finished run, and the next scheduled run. Run history
comes from `_screensync.sync_runs` (a read-only open of the warehouse), connections from the
store, syncs and their frequencies from the definitions; the next run from Prefect's scheduled
runs when its API answers, otherwise computed from the sync's frequency.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ERROR_CHARS = 80
RUNS_SQL = """
SELECT integration, connection_id, sync,
       max(finished_at) FILTER (WHERE status = 'success') AS last_success_at,
       max(finished_at) AS last_run_at,
       arg_max(status, finished_at) AS last_run_status,
       arg_max(added, finished_at) AS added,
       arg_max(updated, finished_at) AS updated,
       arg_max(deleted, finished_at) AS deleted,
       arg_max(error, finished_at) FILTER (WHERE error IS NOT NULL) AS last_error,
       max(finished_at) FILTER (WHERE error IS NOT NULL) AS last_error_at
FROM _screensync.sync_runs
WHERE finished_at IS NOT NULL
GROUP BY ALL
"""


class SyncStatus(BaseModel):
    integration: str
    connection_id: str
    connection_status: str | None  # None: seen in the warehouse only (the store no longer has it)
    sync: str
    frequency: str | None
    last_success_at: datetime | None = None
    lag_seconds: float | None = None  # now - last success
    last_run_at: datetime | None = None
    last_run_status: str | None = None
    added: int | None = None  # of the last finished run
    updated: int | None = None
    deleted: int | None = None
    last_error: str | None = None  # first line, shortened
    last_error_at: datetime | None = None
    next_run_at: datetime | None = None
    next_run_source: str  # "prefect", "frequency", or why there is none
    last_webhook_at: datetime | None = None  # of the connection: the latest webhook event received and applied
    overdue_records: int = 0  # of the connection: open records past their due time (warehouse/freshness.py)
    oldest_overdue_seconds: float | None = None  # how long past its due time the oldest of them is


def read_sync_runs(warehouse: str | Path, timeout: float) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The latest facts per (integration, connection, sync); empty when nothing has synced yet."""
    import duckdb

    from warehouse.read import read_session, warehouse_exists

    if not warehouse_exists(warehouse):
        return {}
    with read_session(warehouse, timeout=timeout) as con:
        try:
            cur = con.execute(RUNS_SQL)
        except duckdb.CatalogException:  # a warehouse no sync has written to
            return {}
        columns = [d[0] for d in cur.description]
        return {(r[0], r[1], r[2]): dict(zip(columns, r, strict=True)) for r in cur.fetchall()}


def read_connection_freshness(warehouse: str | Path, timeout: float) -> dict[tuple[str, str], tuple[Any, int, Any]]:
    """(integration, connection) -> (last webhook, overdue open records, oldest due time); see warehouse/freshness.py."""
    from warehouse.freshness import connection_freshness
    from warehouse.read import read_session, warehouse_exists

    if not warehouse_exists(warehouse):
        return {}
    with read_session(warehouse, timeout=timeout) as con:
        return connection_freshness(con)


def short_error(error: str | None) -> str | None:
    if not error:
        return None
    line = error.strip().splitlines()[0] if error.strip() else error
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…"


def _next_run(
    row: SyncStatus, seconds: int | None, scheduled: list[Any] | None, now: datetime
) -> tuple[datetime | None, str]:
    active = row.connection_status == "active"
    if scheduled is not None:
        for run in scheduled:
            if run.integration == row.integration and run.covers(row.connection_id, row.sync, active):
                return run.expected_start, "prefect"
        if not active:
            return None, f"none: connection {row.connection_status or 'not in the store'}"
        return None, "none scheduled in Prefect"
    if not active:
        return None, f"none: connection {row.connection_status or 'not in the store'}"
    if seconds is None:
        return None, f"cron {row.frequency}"
    last = row.last_run_at or row.last_success_at
    return (max(last + timedelta(seconds=seconds), now) if last else now), "frequency"


def collect_status(
    *,
    warehouse: str | Path,
    connections: list[Any],
    scheduled: list[Any] | None,
    now: datetime | None = None,
    integration: str | None = None,
    timeout: float = 10.0,
) -> list[SyncStatus]:
    """One row per integration x connection x declared sync (plus any sync the warehouse remembers)."""
    from integrations.engine.registry import all_integrations, sync_frequency_seconds

    now = now or datetime.now(UTC)
    runs = read_sync_runs(warehouse, timeout)
    fresh = read_connection_freshness(warehouse, timeout)
    definitions = {name: integ.definition for name, integ in all_integrations().items()}
    statuses = {(c.integration, c.connection_id): c.status for c in connections}
    pairs = set(statuses) | {(i, c) for i, c, _ in runs}
    rows: list[SyncStatus] = []
    for integ_name, connection_id in sorted(pairs):
        if integration and integ_name != integration:
            continue
        definition = definitions.get(integ_name)
        declared = {s.name: s for s in definition.syncs} if definition else {}
        extra = sorted(s for i, c, s in runs if (i, c) == (integ_name, connection_id) and s not in declared)
        for sync_name in [*declared, *extra]:
            sync = declared.get(sync_name)
            facts = runs.get((integ_name, connection_id, sync_name), {})
            row = SyncStatus(
                integration=integ_name,
                connection_id=connection_id,
                connection_status=statuses.get((integ_name, connection_id)),
                sync=sync_name,
                frequency=sync.frequency if sync else None,
                last_success_at=facts.get("last_success_at"),
                last_run_at=facts.get("last_run_at"),
                last_run_status=facts.get("last_run_status"),
                added=facts.get("added"),
                updated=facts.get("updated"),
                deleted=facts.get("deleted"),
                last_error=short_error(facts.get("last_error")),
                last_error_at=facts.get("last_error_at"),
                next_run_source="",
            )
            row.last_webhook_at, row.overdue_records, oldest = fresh.get((integ_name, connection_id), (None, 0, None))
            if oldest is not None:
                row.oldest_overdue_seconds = round((now - oldest).total_seconds(), 1)
            if row.last_success_at is not None:
                row.lag_seconds = round((now - row.last_success_at).total_seconds(), 1)
            seconds = sync_frequency_seconds(sync) if sync else None
            if sync is None:
                row.next_run_source = "none: no longer declared"
            else:
                row.next_run_at, row.next_run_source = _next_run(row, seconds, scheduled, now)
            rows.append(row)
    return rows


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def _clock(value: datetime | None, now: datetime) -> str:
    """A compact UTC time: `10:35` today, `11-29 10:35` otherwise."""
    if value is None:
        return "never"
    value = value.astimezone(UTC)
    return f"{value:%H:%M}" if value.date() == now.astimezone(UTC).date() else f"{value:%m-%d %H:%M}"


def _next(row: SyncStatus, now: datetime) -> str:
    if row.next_run_at is None:
        return row.next_run_source
    delta = (row.next_run_at - now).total_seconds()
    text = "due now" if delta < 60 else f"in {human_duration(delta)}"
    return text if row.next_run_source == "prefect" else f"{text} *"


def status_table(rows: list[SyncStatus], now: datetime) -> Any:
    """One line per sync; times in UTC. `*`: next run computed from the frequency (Prefect not reachable)."""
    from rich.table import Table

    table = Table(
        title=f"sync status at {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        caption="lag: time since the last success; last run: status +added ~updated -deleted; last webhook, "
        "overdue (open records past their due time): per connection"
        + ("; * next run computed from the sync's frequency" if any(r.next_run_source == "frequency" for r in rows) else ""),
    )
    for col in ("integration", "connection", "sync", "last success", "lag", "last run", "last error", "next run",
                "last webhook", "overdue"):
        table.add_column(col, justify="right" if col == "lag" else "left")
    previous = None
    for r in rows:
        if previous is not None and r.integration != previous:
            table.add_section()
        connection = r.connection_id if r.connection_status in (None, "active") else f"{r.connection_id} ({r.connection_status})"
        if r.last_run_status is None:
            last_run = "[dim]never ran[/]"
        else:
            colour = "green" if r.last_run_status == "success" else "red"
            last_run = f"[{colour}]{r.last_run_status}[/] +{r.added} ~{r.updated} -{r.deleted}"
        error = "-"
        if r.last_error:
            error = f"{_clock(r.last_error_at, now)} {r.last_error[:40]}{'…' if len(r.last_error) > 40 else ''}"
        table.add_row(
            r.integration if r.integration != previous else "", connection, r.sync, _clock(r.last_success_at, now),
            human_duration(r.lag_seconds), last_run, error, _next(r, now),
            _clock(r.last_webhook_at, now) if r.integration != previous else "",
            (f"{r.overdue_records}, oldest {human_duration(r.oldest_overdue_seconds)}" if r.overdue_records else "0")
            if r.integration != previous else "",
        )
        previous = r.integration
    return table
