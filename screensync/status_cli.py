"""`screensync status`: the sync status table (or JSON), mounted by screensync/cli.py."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console

from common import settings


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output: a JSON list, one object per sync")] = False,
    integration: Annotated[str | None, typer.Option("--integration", "-i", help="only this integration")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait while a sync holds the warehouse file")] = 10.0,
) -> None:
    """Each sync's last success, freshness lag, last run's counts, last error and next scheduled run."""
    from flows.scheduled_runs import scheduled_sync_runs
    from integrations.engine.registry import all_integrations
    from screensync.status import collect_status, status_table
    from warehouse.connection import WarehouseError

    known = sorted(all_integrations())
    if integration and integration not in known:
        typer.secho(f"unknown integration {integration!r}; known: {known}", fg="red", err=True)
        raise typer.Exit(2)
    connections: list[Any] = []
    from connections.errors import ConnectionsError
    from connections.store import open_store, store_exists

    if store_exists():  # status never creates a store file
        try:
            connections = open_store().list()
        except ConnectionsError as exc:  # a PostgreSQL store that is down or misnamed
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(1) from None
    now = datetime.now(UTC)
    try:
        rows = collect_status(
            warehouse=settings.warehouse_setting(),
            connections=connections,
            scheduled=scheduled_sync_runs([integration] if integration else known),
            now=now,
            integration=integration,
            timeout=timeout,
        )
    except WarehouseError as exc:  # most often a sync writing right now: DuckDB keeps readers out meanwhile
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps([r.model_dump(mode="json") for r in rows], indent=2) + "\n")
        return
    if not rows:
        typer.echo("no connections and no sync runs yet: add a connection with `screensync connections add`")
        return
    Console(width=None if sys.stdout.isatty() else 160).print(status_table(rows, now))


def register(app: typer.Typer) -> None:
    app.command("status")(status_command)
