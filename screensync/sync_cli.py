"""`screensync sync` and `screensync query`: run syncs and read the warehouse from a shell."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from integrations.engine.results import SyncResult
from screensync import settings

console = Console(stderr=True)


def results_table(results: list[SyncResult]) -> Table:
    table = Table(title="sync summary")
    for col in ("connection", "sync", "status", "added", "updated", "deleted", "unchanged", "rejected",
                "requests", "seconds"):
        table.add_column(col, justify="right" if col not in {"connection", "sync", "status"} else "left")
    for r in results:
        colour = {"success": "green", "failed": "red", "interrupted": "yellow"}[r.status.value]
        table.add_row(r.connection_id, r.sync, f"[{colour}]{r.status.value}[/]", str(r.added), str(r.updated),
                      str(r.deleted), str(r.unchanged), str(r.rejected), str(r.requests), f"{r.duration_s:.1f}")
    return table


def sync_command(
    integration: Annotated[str, typer.Argument(help="checkr, checkr-partner-staging or clearchecks")],
    connection: Annotated[list[str] | None, typer.Option("--connection", "-c", help="connection id (repeatable); default: all active")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="sync name (repeatable); default: all")] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="ignore cursors: re-read everything")] = False,
) -> None:
    """Run syncs now; exits non-zero when any run failed or was interrupted."""
    from connections.store import open_store
    from integrations.engine.registry import get_integration
    from integrations.engine.sync_runner import run_sync
    from warehouse.loader import Warehouse

    definition = get_integration(integration).definition
    syncs = model or [s.name for s in definition.syncs]
    for name in syncs:
        definition.sync(name)  # unknown names fail before anything runs
    store = open_store()
    conn_ids = connection or [c.connection_id for c in store.list(integration=integration, status="active")]
    if not conn_ids:
        console.print(f"[yellow]no active {integration} connections; add one with `screensync connections add`[/]")
        raise typer.Exit(1)
    results: list[SyncResult] = []
    path = settings.warehouse_path()
    with Warehouse(path) as wh, Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as bars:
        for cid in conn_ids:
            for name in syncs:
                task = bars.add_task(f"{cid} {name}", total=None)

                def progress(done: int, total: int | None, task: int = task) -> None:
                    bars.update(task, completed=done, total=total)

                result = run_sync(integration, cid, name, warehouse=wh, store=store,
                                  full_refresh=full_refresh, progress=progress)
                bars.update(task, total=bars.tasks[task].completed or 1, completed=bars.tasks[task].completed or 1)
                results.append(result)
    console.print(results_table(results))
    failed = [r for r in results if not r.ok]
    for r in failed:
        console.print(f"[red]{r.connection_id}/{r.sync} {r.status.value}:[/] {r.error}\n  hint: {r.hint}")
    console.print(f"warehouse: {path.resolve()}")
    if failed:
        raise typer.Exit(1)


def query_command(
    sql: Annotated[str, typer.Argument(help="SQL to run against the warehouse, read-only")],
    limit: Annotated[int, typer.Option(help="rows to show")] = 50,
) -> None:
    """Run a read-only query on the warehouse and print the result."""
    from warehouse.connection import WarehouseError
    from warehouse.query import run_query

    try:
        columns, rows = run_query(settings.warehouse_path(), sql, limit=limit)
    except WarehouseError as exc:  # locked file, bad SQL, missing file: say so, no traceback
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    table = Table()
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console().print(table)
    if not rows:
        print("(no rows)", file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command("sync")(sync_command)
    app.command("query")(query_command)
