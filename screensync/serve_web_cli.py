"""`screensync serve-web`: the connect web app with the webhook applier beside it.

It composes two layers (the connections web app and the flows-side applier), so it lives here at the
top rather than in connections/.
"""

from __future__ import annotations

from typing import Annotated

import typer

from connections.cli import _fail
from connections.errors import ConnectionsError
from connections.store import open_store


def serve_web(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8710,
    public_url: Annotated[
        str | None,
        typer.Option(help="https URL customers and providers reach this app at (default: SCREENSYNC_PUBLIC_URL)"),
    ] = None,
) -> None:
    """Run the connect web app (connect links, OAuth callback, widget token, webhooks), and apply
    webhook events to the warehouse as they arrive."""
    import logging

    import uvicorn

    from connections.connect_sessions import check_public_url, configured_public_url, is_loopback
    from connections.web.app import create_app
    from flows.webhook_applier import WebhookApplier

    try:
        public = check_public_url(public_url) if public_url else configured_public_url()
    except ConnectionsError as exc:
        raise _fail(str(exc)) from None
    if public is None and not is_loopback(host):
        raise _fail(
            f"serving on {host} needs the public URL customers reach this app at: --public-url "
            "https://connect.example.com (or SCREENSYNC_PUBLIC_URL); see docs/connections.md"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = open_store()
    # webhook objects (reports, candidates, invitations) reach the warehouse in batches, within seconds
    applier = WebhookApplier(store)
    # No access log: OAuth callbacks carry the authorization code, connect links their session.
    uvicorn.run(create_app(store, public_url=public, applier=applier), host=host, port=port, access_log=False,
                log_level="info")


def register(root: typer.Typer) -> None:
    root.command("serve-web")(serve_web)
