"""`screensync serve` and `screensync prefect-yaml`, mounted by screensync/cli.py."""

from __future__ import annotations

from typing import Annotated

import typer


def serve_command(
    deployment: Annotated[
        list[str] | None, typer.Option("--deployment", "-d", help="deployment name (repeatable); default: all")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="maximum concurrent flow runs")] = None,
) -> None:
    """Run every deployment with its schedule in this process (needs a Prefect server: `prefect server start`)."""
    from flows.prefect_env import PrefectUnreachable
    from flows.serve import serve

    try:
        serve(deployment, limit=limit)
    except PrefectUnreachable as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


def prefect_yaml_command(
    check: Annotated[
        bool, typer.Option("--check", help="exit 1 if prefect.yaml is out of date; write nothing")
    ] = False,
) -> None:
    """Regenerate prefect.yaml from the integration definitions."""
    from flows.deployments import PREFECT_YAML, render_prefect_yaml, write_prefect_yaml

    if check:
        current = PREFECT_YAML.read_text() if PREFECT_YAML.exists() else ""
        if current != render_prefect_yaml():
            typer.secho("prefect.yaml is out of date: run `screensync prefect-yaml`", fg="red", err=True)
            raise typer.Exit(1)
        typer.echo("prefect.yaml is up to date")
        return
    typer.echo(f"wrote {write_prefect_yaml()}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    app.command("prefect-yaml")(prefect_yaml_command)
