"""The `screensync` command: each package contributes its own sub-commands.

Each sub-command lives beside the code it drives (`sandbox/cli.py`, `connections/cli.py`, ...);
this module only mounts them, so the CLI stays a thin shell over plain-Python packages.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="screensync",
    help="Keep Checkr and ClearChecks data in sync in DuckDB.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold credentials
)


def _mount() -> None:
    # Imported here so `screensync --help` fails loudly if a sub-command module is broken.
    from sandbox.cli import register as register_sandbox

    register_sandbox(app)
    from flows.cli import register as register_flows

    register_flows(app)
    from connections.cli import register as register_connections

    register_connections(app)
    from screensync.serve_web_cli import register as register_serve_web

    register_serve_web(app)
    from screensync.sync_cli import register as register_sync

    register_sync(app)
    from screensync.status_cli import register as register_status

    register_status(app)
    from screensync.webhooks_cli import register as register_webhooks

    register_webhooks(app)
    from screensync.changes_cli import register as register_changes

    register_changes(app)
    from screensync.warehouse_cli import register as register_warehouse

    register_warehouse(app)
    app.command("demo")(demo_command)
    app.command("definition-schema")(definition_schema_command)


def demo_command(
    scale: int = typer.Option(300, help="records per sandbox account"),
    keep: bool = typer.Option(False, "--keep", help="keep the previous demo's connections, warehouse and Prefect data"),
    ui: bool = typer.Option(
        False, "--ui", help="at the end keep the Prefect UI, the worker and the sandboxes running until Ctrl-C"
    ),
) -> None:
    """The main job: Prefect server, sandboxes, connect, deployment runs on a worker, advance time, sync again, query."""
    from screensync.demo import run_demo

    raise typer.Exit(run_demo(scale=scale, fresh=not keep, ui=ui))


def definition_schema_command(
    write: bool = typer.Option(False, "--write", help="write integrations/definition.schema.json instead of stdout"),
) -> None:
    """The JSON Schema of definition.yaml (editors validate against it via its `$schema` line)."""
    from integrations.engine.definition_schema import schema_text, write_schema

    if write:
        typer.echo(f"wrote {write_schema()}")
    else:
        typer.echo(schema_text(), nl=False)


def main() -> None:
    from common.private_files import restrict_new_files

    restrict_new_files()  # warehouse, store, Prefect's database and logs: owner-only
    _mount()
    app()
