"""`screensync rejects list|retry`: the records syncs quarantined and still owe, and fetching them again.

A quarantined record with an id stays owed until a later fetch lands it (warehouse/owed.py);
every sync run fetches its owed records again, and `retry` does it now: by id where the sync
declares a `refetch` endpoint, else by running the sync (its list brings them back).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from common import settings
from screensync import exit_codes
from screensync.sync_cli import (
    MODEL_HELP,
    WAIT_HELP,
    checked_store,
    console,
    fail,
    known_syncs,
    open_warehouse,
    report,
    sync_locks,
    with_deprecated_model,
)

app = typer.Typer(help="Records syncs quarantined and still owe: list them, fetch them again.", no_args_is_help=True)

ERROR_WIDTH = 100


@app.command("list")
def list_command(
    integration: Annotated[str | None, typer.Argument(help="only this integration")] = None,
    connection: Annotated[str | None, typer.Option("--connection", "-c", help="only this connection")] = None,
    sync: Annotated[str | None, typer.Option("--sync", "-s", help="only this sync")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help=MODEL_HELP, hidden=True)] = None,
    wait: Annotated[float, typer.Option("--wait", help=WAIT_HELP)] = 30.0,
) -> None:
    """Records still owed: quarantined by a sync and not landed since (read-only)."""
    import duckdb

    from warehouse.connection import WarehouseError, WarehouseLocked
    from warehouse.owed import owed_records, unidentified_rejects
    from warehouse.read import read_session, warehouse_exists

    chosen = with_deprecated_model([sync] if sync else None, [model] if model else None)
    sync = chosen[-1] if chosen else None
    path = settings.warehouse_setting()
    if not warehouse_exists(path):
        console.print(f"nothing owed: there is no warehouse at {path} yet")
        return
    try:
        with read_session(path, timeout=wait) as con:
            try:
                owed = owed_records(con, integration=integration, connection_id=connection, sync=sync)
                unidentified = unidentified_rejects(con)
            except duckdb.CatalogException:  # a warehouse no sync of this version has written yet
                owed, unidentified = [], 0
    except WarehouseLocked as exc:
        raise fail(exit_codes.INTERRUPTED, str(exc), "run it again once the sync is done (--wait SECONDS)") from None
    except WarehouseError as exc:
        raise fail(exit_codes.FAILED, str(exc), "check SCREENSYNC_WAREHOUSE") from None
    table = Table(title="records owed")
    for col in ("integration", "connection", "sync", "table", "record id", "attempts", "first rejected", "last error"):
        table.add_column(col)
    for o in owed:
        error = o.last_error if len(o.last_error) <= ERROR_WIDTH else o.last_error[: ERROR_WIDTH - 1] + "…"
        table.add_row(o.integration, o.connection_id, o.sync, o.table, o.record_id, str(o.attempts),
                      o.first_rejected_at.strftime("%Y-%m-%d %H:%M"), error)
    Console().print(table)
    console.print(f"{len(owed)} record(s) owed; every run of their sync fetches them again, "
                  "`screensync rejects retry <integration>` does it now.", highlight=False)
    if unidentified:
        console.print(f"{unidentified} quarantined item(s) had no id and cannot be fetched again: "
                      "see _screensync.rejected_records.", highlight=False)


@app.command("retry", epilog="Exit codes as for `screensync sync`: 0 nothing is owed any more, 3 some still are.")
def retry_command(
    integration: Annotated[str, typer.Argument(help="checkr, checkr-partner-staging or clearchecks")],
    connection: Annotated[list[str] | None, typer.Option("--connection", "-c", help="connection id (repeatable)")] = None,
    sync: Annotated[list[str] | None, typer.Option("--sync", "-s", help="sync name (repeatable)")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help=MODEL_HELP, hidden=True)] = None,
    wait: Annotated[float, typer.Option("--wait", help=WAIT_HELP)] = 30.0,
) -> None:
    """Fetch the owed records again now: by id where the sync can, else by running the sync."""
    from integrations.engine.registry import get_integration
    from integrations.engine.sync_runner import run_sync

    syncs = known_syncs(integration, with_deprecated_model(sync, model))
    store, conn_ids = checked_store(integration, connection)
    definition = get_integration(integration).definition
    path = settings.warehouse_setting()
    results = []
    wh = open_warehouse(path, wait, f"screensync rejects retry {integration}")
    owed = [o for o in wh.owed_records(integration=integration) if o.connection_id in conn_ids and o.sync in syncs]
    pairs = dict.fromkeys((o.connection_id, o.sync) for o in owed)
    if not pairs:
        console.print(f"nothing owed for {integration}", highlight=False)
        return
    with sync_locks(path, integration, list(pairs), wait):
        for cid, name in pairs:
            tables = {o.table for o in owed if (o.connection_id, o.sync) == (cid, name)}
            by_id = all(definition.sync(name).refetch_for(t) is not None for t in tables)
            results.append(run_sync(integration, cid, name, warehouse=wh, store=store, owed_only=by_id))
    report(integration, results, path)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="rejects")
