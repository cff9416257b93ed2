"""`screensync connections ...` and `screensync serve-web`.

Secrets enter only through stdin or a hidden prompt (never argv, so never shell history or `ps`)
and are never printed: list/show print metadata only.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connections.crypto import generate_key, parse_keys
from connections.errors import ConnectionsError
from connections.models import Connection, ConnectionMetadata, Credentials
from connections.store import ConnectionStore, format_time, open_store
from integrations.engine.registry import DefinitionError, get_integration, provider_urls

app = typer.Typer(
    help="Connected provider accounts: encrypted credentials, connect flows, revocation.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def _store() -> ConnectionStore:
    return open_store()


def _read_secret(prompt: str) -> str:
    """One secret: the first line of stdin when piped, else a hidden prompt."""
    if sys.stdin is not None and not sys.stdin.isatty():
        value = sys.stdin.readline().strip()
    else:
        value = typer.prompt(prompt, hide_input=True).strip()
    if not value:
        raise _fail("no credential given on stdin or at the prompt")
    return value


def _parse_tags(tags: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in tags or []:
        key, sep, value = tag.partition("=")
        if not sep or not key.strip():
            raise _fail(f"--tag {tag!r} must look like key=value")
        out[key.strip()] = value.strip()
    return out


@app.command("generate-key")
def generate_key_command() -> None:
    """Print a new encryption key (redirect it into a chmod-600 key file)."""
    print(generate_key())


@app.command("add")
def add(
    integration: Annotated[str, typer.Argument(help="the integration's name (its definition.yaml `name`)")],
    connection_id: Annotated[str, typer.Argument(help="your own id for this customer")],
    base_url: Annotated[str | None, typer.Option(help="replace scheme://host:port of every provider URL")] = None,
    environment: Annotated[str | None, typer.Option(help="provider environment (default: the definition's)")] = None,
    kind: Annotated[str, typer.Option(help="credential kind: api_key, oauth or widget")] = "api_key",
    account_id: Annotated[
        str | None, typer.Option("--account-id", help="provider account id (webhook routing)")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="key=value (repeatable)")] = None,
    replace: Annotated[bool, typer.Option(help="overwrite an existing connection with this id")] = False,
) -> None:
    """Store a connection; the credential is read from stdin (piped) or a hidden prompt, never argv."""
    try:
        definition = get_integration(integration).definition
        provider_urls(definition, environment=environment, base_url=base_url)  # bad env / URL / http fail now
        connection = Connection(
            connection_id=connection_id,
            integration=integration,
            credential_kind=kind,  # type: ignore[arg-type]
            metadata=ConnectionMetadata(
                provider_account_id=account_id, environment=environment, base_url=base_url, tags=_parse_tags(tag)
            ),
        )
        token = _read_secret(f"{definition.provider.name} credential for {connection_id}")
        stored = _store().add(connection, Credentials(token=token), replace=replace)
    except (ConnectionsError, DefinitionError, ValueError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"added {stored.integration}/{stored.connection_id} ({stored.credential_kind})", highlight=False)


@app.command("list")
def list_command(
    integration: Annotated[str | None, typer.Option(help="only this integration")] = None,
    status: Annotated[str | None, typer.Option(help="active, invalid or revoked")] = None,
) -> None:
    """Connections and their status (never a secret)."""
    try:
        rows = _store().list(integration=integration, status=status)
    except (ConnectionsError, ValueError) as exc:
        raise _fail(str(exc)) from None
    table = Table(title="connections")
    for col in ("integration", "connection", "kind", "status", "account", "credentialed", "base url", "updated"):
        table.add_column(col)
    for c in rows:
        table.add_row(
            c.integration,
            c.connection_id,
            c.credential_kind,
            c.status,
            c.metadata.provider_account_id or "",
            "yes" if c.metadata.credentialed else "no",
            c.metadata.base_url or "",
            format_time(c.updated_at),
        )
    console.print(table)


@app.command("show")
def show(integration: str, connection_id: str) -> None:
    """One connection's metadata as JSON (the credential is never shown)."""
    try:
        conn = _store().get(integration, connection_id)
    except ConnectionsError as exc:
        raise _fail(str(exc)) from None
    console.print_json(conn.model_dump_json())


@app.command("remove")
def remove(integration: str, connection_id: str) -> None:
    """Delete a connection and its credential from the store (does not deauthorize; see `revoke`)."""
    try:
        _store().remove(integration, connection_id)
    except ConnectionsError as exc:
        raise _fail(str(exc)) from None
    console.print(f"removed {integration}/{connection_id}", highlight=False)


@app.command("test")
def test(integration: str, connection_id: str) -> None:
    """Call the provider's cheapest authenticated endpoint; 401/403 marks the connection invalid."""
    from connections.provider_check import check_connection

    try:
        result = check_connection(_store(), integration, connection_id)
    except (ConnectionsError, DefinitionError) as exc:
        raise _fail(str(exc)) from None
    colour = "green" if result.ok else "red"
    console.print(
        f"[{colour}]{'ok' if result.ok else 'FAILED'}[/] {integration}/{connection_id}: {result.detail} "
        f"(status {result.status})",
        highlight=False,
    )
    if not result.ok:
        raise typer.Exit(1)


@app.command("revoke")
def revoke_command(integration: str, connection_id: str) -> None:
    """Deauthorize the token at the provider (OAuth connections), then mark the connection revoked."""
    from connections.deauthorize import revoke

    try:
        conn = revoke(integration, connection_id, store=_store())
    except (ConnectionsError, DefinitionError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"{integration}/{connection_id}: {conn.status} ({conn.status_reason})", highlight=False)


@app.command("connect-link")
def connect_link(
    integration: Annotated[str, typer.Argument(help="the integration's name (its definition.yaml `name`)")],
    connection_id: Annotated[str, typer.Argument(help="your own id for this customer")],
    reconnect: Annotated[
        bool, typer.Option("--reconnect", help="may replace an existing active connection with this id")
    ] = False,
    allow_account_change: Annotated[
        bool, typer.Option("--allow-account-change", help="...even with a different provider account")
    ] = False,
    ttl: Annotated[str, typer.Option(help="how long the link can be opened: 90s, 10m, 2h, 1d")] = "10m",
    public_url: Annotated[
        str | None, typer.Option(help="where customers reach serve-web (default: SCREENSYNC_PUBLIC_URL)")
    ] = None,
) -> None:
    """Print a signed, expiring connect link for one customer; send it to them (one browser, one use)."""
    from connections.connect_sessions import create_connect_link, parse_ttl

    try:
        link = create_connect_link(
            integration,
            connection_id,
            reconnect=reconnect,
            allow_account_change=allow_account_change,
            ttl_seconds=parse_ttl(ttl),
            public_url=public_url,
            store=_store(),
        )
    except (ConnectionsError, DefinitionError) as exc:
        raise _fail(str(exc)) from None
    print(link.url)


@app.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt everything under a new key read from stdin or a hidden prompt (newest first if several).

    Keep the old key configured while running this; afterwards configure only the new one.
    """
    try:
        keys = parse_keys(_read_secret("new encryption key"))
        count = _store().rotate_key(keys)
    except ConnectionsError as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"re-encrypted {count} secret(s) under the new key; now configure only the new key "
        "(SCREENSYNC_SECRET_KEY or the key file) and discard the old one",
        highlight=False,
    )


@app.command("set-app")
def set_app(
    integration: str,
    base_url: Annotated[str | None, typer.Option(help="replace scheme://host:port of the app's provider URLs")] = None,
    environment: Annotated[str | None, typer.Option(help="provider environment for connect flows")] = None,
) -> None:
    """Store platform secrets (client_id/client_secret, source_token/private_key) from name=value lines on stdin."""
    try:
        definition = get_integration(integration).definition
        provider_urls(definition, environment=environment, base_url=base_url)
        secrets: dict[str, str] = {}
        lines = sys.stdin.read().splitlines() if not sys.stdin.isatty() else []
        for n, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, sep, value = line.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise _fail(f"stdin line {n} must look like name=value (the value is not shown here)")
            secrets[name.strip()] = value.strip()
        if not secrets and base_url is None and environment is None:
            raise _fail("nothing to store: pipe name=value lines on stdin and/or give --base-url/--environment")
        _store().set_app_secrets(integration, secrets, base_url=base_url, environment=environment)
    except (ConnectionsError, DefinitionError, ValueError) as exc:
        raise _fail(str(exc)) from None
    names = ", ".join(sorted(secrets)) or "no secrets"
    console.print(f"{integration}: stored {names}", highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="connections")
