"""`screensync warehouse migrate`: create and evolve every table and view before the workers start.

On a DuckLake, concurrent writers that each create the same table, add the same column or replace
the same view conflict at commit (one of them retries); running this once at deploy time, before
the workers, leaves them nothing to create (docs/warehouse.md). On the embedded file it does the
same work the first sync would: harmless, and a quick check that the warehouse can be written.
"""

from __future__ import annotations

from typing import Annotated

import typer

from common import settings
from screensync import exit_codes
from screensync.sync_cli import WAIT_HELP, fail, open_warehouse

app = typer.Typer(help="The warehouse itself: its tables and views.", no_args_is_help=True)


@app.command("migrate")
def migrate_command(wait: Annotated[float, typer.Option("--wait", help=WAIT_HELP)] = 30.0) -> None:
    """Create/evolve every integration's tables, screensync's own and the `unified` views."""
    from integrations.engine.batches import targets_for
    from integrations.engine.registry import all_integrations
    from integrations.engine.views import view_parts
    from warehouse.connection import WarehouseError

    targets = [t for integ in all_integrations().values() for sync in integ.definition.syncs
               for t in targets_for(integ, sync).all()]
    wh = open_warehouse(settings.warehouse_setting(), wait, "screensync warehouse migrate")
    try:
        wh.use_view_parts(view_parts()).ensure_tables(targets)
        views = wh.create_views()
    except WarehouseError as exc:
        raise fail(exit_codes.FAILED, str(exc), "check SCREENSYNC_WAREHOUSE and run it again") from None
    typer.echo(f"warehouse {wh.name}: {len(set(targets))} table(s) and {len(views)} unified view(s) ready")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="warehouse")
