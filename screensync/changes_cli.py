"""`screensync changes`: the warehouse's change feed as JSON lines, and pruning it.

A consumer stores the `cursor` of the last line it handled and passes it back as `--since`: it
gets every later change exactly once, across restarts and while syncs and webhooks write
(warehouse/changes.py says why). Nothing expires until `screensync changes prune --before N`.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer

from common import settings
from screensync import exit_codes
from screensync.sync_cli import WAIT_HELP, fail, open_warehouse

app = typer.Typer(help="The change feed: every record added, updated, deleted or gone, with a cursor.")

BATCH = 1000  # lines fetched per read session: the file is held for one short query at a time


def _line(change: dict[str, Any]) -> str:
    out = dict(change)
    raw = out.pop("record")
    out["record"] = json.loads(raw) if isinstance(raw, str) else raw
    return json.dumps(out, default=str, separators=(",", ":"))


def _read(since: int, limit: int, filters: dict[str, str | None], wait: float) -> list[dict[str, Any]]:
    import duckdb

    from warehouse.changes import read_changes
    from warehouse.connection import WarehouseError, WarehouseLocked
    from warehouse.read import read_session, warehouse_exists

    path = settings.warehouse_setting()
    if not warehouse_exists(path):
        return []
    try:
        with read_session(path, timeout=wait) as con:
            try:
                return read_changes(con, since=since, limit=limit, **filters)
            except duckdb.CatalogException:  # a warehouse no writer of this version has prepared
                return []
    except WarehouseLocked as exc:
        raise fail(exit_codes.INTERRUPTED, str(exc), "run it again with the same --since (--wait SECONDS)") from None
    except WarehouseError as exc:
        raise fail(exit_codes.FAILED, str(exc), "check SCREENSYNC_WAREHOUSE") from None


@app.callback(invoke_without_command=True)
def changes_command(
    ctx: typer.Context,
    since: Annotated[int, typer.Option("--since", help="print changes after this cursor (0: from the start)")] = 0,
    integration: Annotated[str | None, typer.Option("--integration", "-i", help="only this integration")] = None,
    table: Annotated[str | None, typer.Option("--table", "-t", help="only this table (e.g. reports)")] = None,
    connection: Annotated[str | None, typer.Option("--connection", "-c", help="only this connection")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="stop after this many lines")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new changes as they land")] = False,
    interval: Annotated[float, typer.Option(help="--follow: seconds between looks")] = 2.0,
    idle_exit: Annotated[float | None, typer.Option(
        "--idle-exit", help="--follow: stop after this many seconds with no new change")] = None,
    wait: Annotated[float, typer.Option("--wait", help=WAIT_HELP)] = 30.0,
) -> None:
    """Changes after --since as JSON lines: cursor, integration, table, connection_id, record_id, action
    (added, updated, deleted, gone), changed_at, run_id, observed_at, version_hash, record."""
    if ctx.invoked_subcommand is not None:
        return
    filters = {"integration": integration, "table": table, "connection_id": connection}
    printed, cursor, quiet_since = 0, since, time.monotonic()
    while True:
        want = BATCH if limit is None else min(BATCH, limit - printed)
        batch = _read(cursor, want, filters, wait)
        for change in batch:
            sys.stdout.write(_line(change) + "\n")
        sys.stdout.flush()
        printed += len(batch)
        if batch:
            cursor, quiet_since = int(batch[-1]["cursor"]), time.monotonic()
        if limit is not None and printed >= limit:
            return
        if len(batch) == want:
            continue  # more waiting: no pause
        if not follow or (idle_exit is not None and time.monotonic() - quiet_since >= idle_exit):
            return
        time.sleep(interval)


@app.command("prune")
def prune_command(
    before: Annotated[int, typer.Option("--before", help="drop feed rows with a cursor below this one")],
    wait: Annotated[float, typer.Option("--wait", help=WAIT_HELP)] = 30.0,
) -> None:
    """Drop old feed rows (the versions stay in each table's _history); cursors are never reused."""
    from warehouse.connection import WarehouseLocked

    wh = open_warehouse(settings.warehouse_setting(), wait, "screensync changes prune")
    try:
        pruned = wh.prune_changes(before)
    except WarehouseLocked as exc:
        raise fail(exit_codes.INTERRUPTED, str(exc), "run it again later (--wait SECONDS)") from None
    typer.echo(f"pruned {pruned} change(s) with a cursor below {before}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="changes")
