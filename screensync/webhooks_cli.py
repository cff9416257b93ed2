"""`screensync webhooks list|replay`: the webhook inbox, and applying its events again.

Every delivery is recorded in the inbox before it is answered; the webhook applier moves the
events to the warehouse within seconds (flows/webhook_applier.py). `list` shows what arrived
and what became of it; `replay` applies events again now: chosen ones, the failed ones (after a
fix), or whatever is still pending. Re-applying is safe: a version never replaces a newer one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from common import settings
from screensync import exit_codes
from screensync.sync_cli import console, fail

if TYPE_CHECKING:
    from connections.store import ConnectionStore

app = typer.Typer(help="Webhook events received: list them, apply them again.", no_args_is_help=True)

DETAIL_WIDTH = 80
STATUS_HELP = "pending, processed, failed, dropped, unmatched or ignored"


def _store() -> ConnectionStore:
    from connections.errors import ConnectionsError
    from connections.store import open_store

    try:
        store = open_store()
        store.health()
    except ConnectionsError as exc:
        raise fail(exit_codes.CONFIG, str(exc).replace("\n", " "),
                   "set SCREENSYNC_SECRET_KEY (or SCREENSYNC_SECRET_KEY_FILE) to the store's key") from None
    return store


def _short(text: str | None) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= DETAIL_WIDTH else text[: DETAIL_WIDTH - 1] + "…"


@app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option("--status", "-s", help=STATUS_HELP)] = None,
    integration: Annotated[str | None, typer.Option("--integration", "-i", help="only this integration")] = None,
    limit: Annotated[int, typer.Option(help="show at most this many (the most recent)")] = 50,
) -> None:
    """Events in the inbox, oldest first, with their status and what happened to them."""
    from collections import Counter

    store = _store()
    rows = store.events(status=status, integration=integration)
    table = Table(title="webhook events")
    for col in ("received", "integration", "event id", "type", "status", "detail"):
        table.add_column(col)
    for r in rows[-limit:] if limit > 0 else []:
        table.add_row(str(r["received_at"])[:19], r["integration"], r["event_id"], r["event_type"], r["status"],
                      _short(r["detail"]))
    Console().print(table)
    counts = Counter(r["status"] for r in rows)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no events"
    console.print(f"{summary}{f' (showing the last {limit})' if len(rows) > limit else ''}", highlight=False)
    if counts.get("failed"):
        console.print("failed events: fix the cause, then `screensync webhooks replay --failed`", highlight=False)


@app.command("replay", epilog="Exit codes: 0 all applied; 1 some failed; 4 the warehouse stayed busy (left pending).")
def replay_command(
    event_ids: Annotated[list[str] | None, typer.Argument(help="event ids to apply again (any status)")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="every failed event")] = False,
    pending: Annotated[bool, typer.Option("--pending", help="every event still pending")] = False,
    integration: Annotated[str | None, typer.Option("--integration", "-i", help="only this integration")] = None,
    wait: Annotated[float, typer.Option("--wait", help="seconds one batch waits for the warehouse")] = 30.0,
) -> None:
    """Apply events again now (re-applying is harmless: nothing newer is ever replaced)."""
    from connections.webhooks import inbox
    from flows.webhook_applier import WebhookApplier

    if not (event_ids or failed or pending):
        raise fail(exit_codes.USAGE, "nothing to replay", "name event ids, or pass --failed or --pending")
    store = _store()
    every = store.events(integration=integration)
    chosen = [r for r in every if (event_ids and r["event_id"] in event_ids) or (failed and r["status"] == "failed")]
    unknown = sorted(set(event_ids or []) - {r["event_id"] for r in every})
    if unknown:
        raise fail(exit_codes.USAGE, f"no such event(s) in the inbox: {', '.join(unknown)}",
                   "`screensync webhooks list` shows the events")
    inbox.requeue(store, chosen, "replayed by `screensync webhooks replay`")
    wanted = {(r["integration"], r["event_id"]) for r in chosen}
    if pending:
        wanted |= {(r["integration"], r["event_id"]) for r in every if r["status"] == "pending"}
    applier = WebhookApplier(store, settings.warehouse_setting(), lock_timeout=wait)
    done = applier.apply_pending()
    if done.skipped:
        console.print("another process (serve-web, a sync run) is applying events now: they land within seconds; "
                      "`screensync webhooks list` shows them", highlight=False)
        return
    after = {(r["integration"], r["event_id"]): r for r in store.events(integration=integration)}
    outcome = [after[k] for k in sorted(wanted) if k in after]
    table = Table(title="replayed")
    for col in ("integration", "event id", "type", "status", "detail"):
        table.add_column(col)
    for r in outcome:
        table.add_row(r["integration"], r["event_id"], r["event_type"], r["status"], _short(r["detail"]))
    Console().print(table)
    if any(r["status"] == "pending" for r in outcome):
        raise fail(exit_codes.INTERRUPTED, f"the warehouse stayed busy: {done.busy}",
                   "they stay pending and are applied automatically; or run again later (--wait SECONDS)")
    if any(r["status"] == "failed" for r in outcome):
        raise typer.Exit(exit_codes.FAILED)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="webhooks")
