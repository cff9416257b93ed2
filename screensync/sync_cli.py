"""`screensync sync` and `screensync query`: run syncs and read the warehouse from a shell.

Trouble a user can fix (a held warehouse, a wrong key, an unknown name) ends the command with
one or two lines saying what happened and what to do, and an exit code from `exit_codes`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from common import settings
from integrations.engine.results import RunStatus, SyncResult
from screensync import exit_codes

if TYPE_CHECKING:
    from warehouse.loader import Warehouse

console = Console(stderr=True)

COLOURS = {RunStatus.SUCCESS: "green", RunStatus.PARTIAL: "yellow", RunStatus.INTERRUPTED: "yellow",
           RunStatus.FAILED: "red", RunStatus.RUNNING: "blue"}
WAIT_HELP = ("seconds to wait for the warehouse (a process outside screensync holding it open) or for the same "
             "sync running elsewhere, before giving up (exit code 4)")
EXIT_CODES_HELP = (
    "Exit codes: 0 every run succeeded; 1 a run failed; 2 bad arguments; 3 records were quarantined "
    "(`screensync rejects list`); 4 the warehouse is held by another process, or a run stopped part-way; "
    "5 the connection store's key is missing or wrong."
)


def fail(code: int, what: str, todo: str) -> typer.Exit:
    """Say what happened and what to do (no traceback), and end with `code`."""
    console.print(f"[red]error:[/] {what}", highlight=False, soft_wrap=True)
    console.print(f"  what to do: {todo}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def results_table(results: list[SyncResult]) -> Table:
    table = Table(title="sync summary")
    for col in ("connection", "sync", "status", "added", "updated", "deleted", "gone", "unchanged", "rejected", "owed",
                "requests", "seconds"):
        table.add_column(col, justify="right" if col not in {"connection", "sync", "status"} else "left")
    for r in results:
        table.add_row(r.connection_id, r.sync, f"[{COLOURS.get(r.status, 'white')}]{r.status.value}[/]", str(r.added),
                      str(r.updated), str(r.deleted), str(r.gone), str(r.unchanged), str(r.rejected), str(r.owed),
                      str(r.requests), f"{r.duration_s:.1f}")
    return table


def report(integration: str, results: list[SyncResult], path: str | Path) -> None:
    """The summary table, a line per run that did not simply succeed, and the exit code."""
    console.print(results_table(results))
    for r in results:
        if r.status == RunStatus.PARTIAL:
            console.print(f"[yellow]{r.connection_id}/{r.sync} partial:[/] {r.hint}", highlight=False)
        elif not r.ok:
            console.print(f"[red]{r.connection_id}/{r.sync} {r.status.value}:[/] {r.error}\n  hint: {r.hint}",
                          highlight=False)
        if r.checkpoint_discarded:
            console.print(f"{r.connection_id}/{r.sync}: {r.checkpoint_discarded}", highlight=False)
    console.print(f"warehouse: {path if settings.is_lake_value(path) else Path(path).resolve()}")
    code = exit_codes.for_results(results)
    if code:
        raise typer.Exit(code)


def checked_store(integration: str, connection_ids: list[str] | None) -> tuple[Any, list[str]]:
    """The connection store and the connections to run, each credential readable — or a clean exit."""
    from connections.errors import ConnectionNotFound, ConnectionsError
    from connections.store import open_store

    try:
        store = open_store()
        ids = connection_ids or [c.connection_id for c in store.list(integration=integration, status="active")]
        for cid in ids:
            store.credentials(integration, cid)  # a missing or wrong key fails here, before anything runs
    except ConnectionNotFound as exc:
        raise fail(exit_codes.USAGE, str(exc), "`screensync connections list` shows the stored connections") from None
    except ConnectionsError as exc:
        raise fail(exit_codes.CONFIG, str(exc).replace("\n", " "),
                   "set SCREENSYNC_SECRET_KEY (or SCREENSYNC_SECRET_KEY_FILE) to the key the store was created "
                   "or last rotated with") from None
    if not ids:
        raise fail(exit_codes.USAGE, f"no active {integration} connections",
                   "add one with `screensync connections add`")
    return store, ids


def open_warehouse(path: str | Path, wait: float, purpose: str) -> Warehouse:
    """The warehouse for writing: each write waits at most `wait` s for the write in progress (a sync's
    page, webhooks) or for a process outside screensync holding the file; held longer: a clean exit."""
    from warehouse.loader import Warehouse, WarehouseLocked

    try:
        return Warehouse(path, lock_timeout=wait, purpose=purpose)
    except WarehouseLocked as exc:
        raise fail(exit_codes.INTERRUPTED, f"{exc} Nothing was run.",
                   "close that session, or run again later (--wait SECONDS waits longer)") from None


@contextmanager
def sync_locks(path: str | Path, integration: str, pairs: list[tuple[str, str]], wait: float) -> Iterator[None]:
    """Hold each (connection, sync) about to run, as the flows do: the same sync never runs twice at
    once. One held elsewhere for longer than `wait`: a clean exit, nothing run."""
    import time

    from flows.locks import LockTimeout, file_lock, holder, sync_lock_path

    deadline = time.monotonic() + wait
    with ExitStack() as stack:
        for cid, name in pairs:
            lock = sync_lock_path(settings.local_lock_anchor(path), integration, cid, name)
            try:
                stack.enter_context(file_lock(lock, timeout=max(0.0, deadline - time.monotonic()),
                                              what=f"sync {integration}/{cid}/{name}"))
            except LockTimeout:
                raise fail(exit_codes.INTERRUPTED,
                           f"another screensync sync or flow run{holder(lock)} is running {integration}/{cid}/{name} "
                           f"(waited {wait:.0f}s); nothing was run",
                           "let it finish, or run again with --wait SECONDS to wait longer") from None
        yield


def apply_webhooks(store: Any, path: str | Path) -> None:
    """Webhook events still waiting in the inbox go to the warehouse too (quietly; never fails the command)."""
    from flows.webhook_applier import WebhookApplier

    try:
        done = WebhookApplier(store, path).apply_pending()
    except Exception as exc:
        console.print(f"[yellow]webhook events not applied now:[/] {exc}", highlight=False)
        return
    if done.applied or done.failed:
        console.print(f"webhook events: {done.applied} applied, {done.failed} failed "
                      "(`screensync webhooks list`)", highlight=False)


SYNC_HELP = "sync name (repeatable); default: all"
MODEL_HELP = "deprecated spelling of --sync"


def with_deprecated_model(syncs: list[str] | None, model: list[str] | None) -> list[str] | None:
    """`--model` is the old name of `--sync` (a "model" is a pydantic class): still accepted, with a warning."""
    if not model:
        return syncs
    console.print("[yellow]warning:[/] --model is deprecated and will go; use --sync", highlight=False)
    return [*(syncs or []), *model]


def known_syncs(integration: str, syncs: list[str] | None) -> list[str]:
    """The sync names to run (default: all); an unknown integration or sync is a clean exit."""
    from integrations.engine.registry import DefinitionError, get_integration

    try:
        definition = get_integration(integration).definition
        for name in syncs or []:
            definition.sync(name)
    except (DefinitionError, KeyError) as exc:
        raise fail(exit_codes.USAGE, str(exc).strip("\"'"), "`screensync sync --help` lists the arguments") from None
    return syncs or [s.name for s in definition.syncs]


def sync_command(
    integration: Annotated[str, typer.Argument(help="checkr, checkr-partner-staging or clearchecks")],
    connection: Annotated[list[str] | None, typer.Option("--connection", "-c", help="connection id (repeatable); default: all active")] = None,
    sync: Annotated[list[str] | None, typer.Option("--sync", "-s", help=SYNC_HELP)] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help=MODEL_HELP, hidden=True)] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="start from nothing: no saved position, no cursor")] = False,
    wait: Annotated[float, typer.Option("--wait", help=WAIT_HELP)] = 30.0,
) -> None:
    """Run syncs now; the exit code says how they ended (below, and docs/operations.md)."""
    from integrations.engine.registry import get_integration
    from integrations.engine.side_by_side import Wait, dependencies, reference_waits, run_side_by_side
    from integrations.engine.sync_runner import run_sync

    syncs = known_syncs(integration, with_deprecated_model(sync, model))
    store, conn_ids = checked_store(integration, connection)
    results: list[SyncResult] = []
    path = settings.warehouse_setting()
    with sync_locks(path, integration, [(c, s) for c in conn_ids for s in syncs], wait), Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as bars:
        wh = open_warehouse(path, wait, f"screensync sync {integration}")
        definition = get_integration(integration).definition
        after, references = dependencies(definition, syncs), reference_waits(definition, syncs)
        for cid in conn_ids:
            tasks = {name: bars.add_task(f"{cid} {name}", total=None) for name in syncs}

            def one(name: str, wait: Wait, cid: str = cid, tasks: dict[str, Any] = tasks) -> SyncResult:
                task = tasks[name]

                def progress(done: int, total: int | None) -> None:
                    bars.update(task, completed=done, total=total)

                result = run_sync(integration, cid, name, warehouse=wh, store=store,
                                  full_refresh=full_refresh, progress=progress, references_wait=wait)
                bars.update(task, total=bars.tasks[task].completed or 1, completed=bars.tasks[task].completed or 1)
                return result

            # a connection's syncs side by side, each after the ones it reads (integrations/engine/side_by_side.py)
            results += run_side_by_side(syncs, after, one, references=references)
    apply_webhooks(store, path)
    report(integration, results, path)


def query_command(
    sql: Annotated[str, typer.Argument(help="SQL to run against the warehouse, read-only")],
    limit: Annotated[int, typer.Option(help="rows to show")] = 50,
) -> None:
    """Run a read-only query on the warehouse and print the result."""
    from warehouse.connection import WarehouseError
    from warehouse.query import run_query

    try:
        columns, rows = run_query(settings.warehouse_setting(), sql, limit=limit)
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
    app.command("sync", epilog=EXIT_CODES_HELP)(sync_command)
    app.command("query")(query_command)
    from screensync.rejects_cli import register as register_rejects

    register_rejects(app)
