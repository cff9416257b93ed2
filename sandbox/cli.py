"""`screensync sandbox`: run every fake provider on loopback until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("sandbox")
    def sandbox(
        host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
        checkr_port: Annotated[int, typer.Option(help="Checkr production API (0 = any free port)")] = 8701,
        checkr_staging_port: Annotated[int, typer.Option(help="Checkr staging API")] = 8702,
        clearchecks_port: Annotated[int, typer.Option(help="ClearChecks API")] = 8703,
        control_port: Annotated[int, typer.Option(help="sandbox control API")] = 8704,
        seed: Annotated[int, typer.Option(help="same seed, same data")] = 42,
        scale: Annotated[int, typer.Option(min=0, help="primary records per account")] = 50,
        open_reports: Annotated[
            list[str] | None,
            typer.Option(help="PROVIDER=N: N extra reports per account, all open at the start (repeatable)"),
        ] = None,
        info: Annotated[Path | None, typer.Option(help="write the info JSON here once every server is up")] = None,
    ) -> None:
        """Start the Checkr (production + staging) and ClearChecks sandboxes and the control API."""
        from sandbox.info import describe, write_info
        from sandbox.server import SandboxServer

        typer.echo(f"generating sandbox data (seed {seed}, scale {scale}) ...")
        try:
            opened = _open_reports(open_reports or [])
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--open-reports") from exc
        server = SandboxServer(
            host=host,
            checkr_port=checkr_port,
            checkr_staging_port=checkr_staging_port,
            clearchecks_port=clearchecks_port,
            control_port=control_port,
            seed=seed,
            scale=scale,
            open_reports=opened,
        )
        try:
            server.start()
        except OSError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            typer.echo("sandbox running; demo credentials (fake, for the sandbox only):")
            for line in describe(server.info):
                typer.echo(line)
            if info is not None:
                write_info(server.info, info)
                typer.echo(f"info JSON written to {info}")
            typer.echo("Ctrl-C to stop")
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()


def _open_reports(values: list[str]) -> dict[str, int]:
    """`checkr=3500` pairs as a dict."""
    from sandbox.server import PROVIDER_KEYS

    out: dict[str, int] = {}
    for value in values:
        name, sep, count = value.partition("=")
        if not sep or not count.strip().isdigit():
            raise ValueError(f"expected PROVIDER=N (e.g. clearchecks=1000), got {value!r}")
        if name.strip() not in PROVIDER_KEYS:
            raise ValueError(f"unknown provider {name.strip()!r} in {value!r}; one of {', '.join(PROVIDER_KEYS)}")
        out[name.strip()] = int(count)
    return out
