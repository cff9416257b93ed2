"""`screensync demo`: the whole product on this machine, against the sandbox providers.

Starts the sandbox providers and the connect/webhook app on loopback, connects one customer
account per integration through the same flows users go through (partner OAuth for Checkr,
the widget token-decrypt flow for ClearChecks), runs every sync through Prefect, advances the
sandbox clock so webhooks and incremental syncs have something to do, syncs again, and prints
what landed. Everything it writes lives under `.screensync-demo/` and in the warehouse file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

# wide enough for the summary tables when output is piped (CI logs, `| tee`)
console = Console(width=None if Console().is_terminal else 130)
DEMO_DIR = Path(".screensync-demo")
INTEGRATIONS = ("checkr", "checkr-partner-staging", "clearchecks")
CONNECTION_IDS = {"checkr": "acme-hr", "checkr-partner-staging": "acme-hr-staging", "clearchecks": "globex"}
SANDBOX_KEY = {"checkr": "checkr", "checkr-partner-staging": "checkr_staging", "clearchecks": "clearchecks"}


class Steps:
    """Numbered progress lines with elapsed time, so a user sees where the demo is."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.n = 0

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        self.n += 1
        console.print(f"[bold cyan][{self.n}][/] {text} ...")
        start = time.monotonic()
        yield
        console.print(f"    [green]done[/] in {time.monotonic() - start:.1f}s (total {time.monotonic() - self.t0:.0f}s)")


def _prepare_environment(fresh: bool) -> Path:
    if fresh and DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(exist_ok=True)
    os.environ["SCREENSYNC_CONNECTIONS"] = str(DEMO_DIR / "connections.sqlite")
    key_file = DEMO_DIR / "secret.key"
    if not key_file.exists():
        from connections.crypto import generate_key

        key_file.write_text(generate_key() + "\n")
        key_file.chmod(0o600)
    os.environ.pop("SCREENSYNC_SECRET_KEY", None)
    os.environ["SCREENSYNC_SECRET_KEY_FILE"] = str(key_file)
    os.environ.setdefault("PREFECT_HOME", str((DEMO_DIR / "prefect").resolve()))
    from flows.prefect_env import apply_defaults

    apply_defaults()
    from screensync import settings

    warehouse = settings.warehouse_path()
    if fresh:
        for path in (warehouse, Path(f"{warehouse}.wal")):
            path.unlink(missing_ok=True)
    return warehouse


def _connect_oauth(web: str, integration: str, connection_id: str) -> None:
    """What the platform and its customer do: the backend mints a connect link, the customer's
    browser opens it, approves at the provider and comes back to our callback (cookies kept)."""
    from connections.connect_sessions import create_connect_link

    url = create_connect_link(integration, connection_id, public_url=web).url
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        r = browser.get(url)
        if r.status_code != 200 or "connected" not in r.text.lower():
            raise RuntimeError(f"OAuth connect for {integration} failed: {r.status_code} {r.text[:300]}")


def _connect_widget(web: str, sandbox_base: str, integration: str, connection_id: str) -> None:
    """What the browser does on the connect page opened from a connect link: the widget creates an
    account at the provider and hands its encrypted token to the page, which posts it (JSON, with
    the flow's cookie) to our backend for decryption."""
    from connections.connect_sessions import create_connect_link

    url = create_connect_link(integration, connection_id, public_url=web).url
    with httpx.Client(timeout=30) as browser:
        page = browser.get(url)
        page.raise_for_status()
        state = json.loads(re.search(r"var state = (\"[^\"]*\");", page.text).group(1))  # type: ignore[union-attr]
        source_token = json.loads(re.search(r"sourceToken: (\"[^\"]*\")", page.text).group(1))  # type: ignore[union-attr]
        created = browser.post(
            f"{sandbox_base}/widgets/accounts",
            json={"source_token": source_token, "company_name": "Globex Corporation", "first_name": "Hank",
                  "last_name": "Scorpio", "email": "hank@globex.example.com"},
        )
        created.raise_for_status()
        done = browser.post(f"{web}/connect/{integration}/widget-token",
                            json={"state": state, "token": created.json()["token"]}, headers={"Origin": web})
        if done.status_code != 200 or not done.json().get("ok"):
            raise RuntimeError(f"widget connect for {integration} failed: {done.text[:300]}")


def _sync_all(label: str) -> list[Any]:
    from flows.sync_flows import sync_integration

    results = []
    for integration in INTEGRATIONS:
        state = sync_integration(integration, return_state=True)
        out = state.result(raise_on_failure=False)
        if isinstance(out, list):
            results.extend(out)
        else:
            console.print(f"    [red]{integration}: {state.message}[/]")
    from screensync.sync_cli import results_table

    table = results_table(results)
    table.title = label
    console.print(table)
    return results


def _print_warehouse(path: Path) -> None:
    from warehouse.query import run_query

    _, tables = run_query(
        path,
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name NOT IN ('_screensync') "
        "AND table_name NOT LIKE '%_superseded' ORDER BY 1, 2",
        limit=1000,
    )
    table = Table(title="rows per table (current, not deleted)")
    for col in ("table", "rows", "deleted", "history versions"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for schema, name in tables:
        _, ((live, deleted),) = run_query(
            path, f'SELECT count(*) FILTER (_deleted_at IS NULL), count(*) FILTER (_deleted_at IS NOT NULL) '
                  f'FROM "{schema}"."{name}"')
        _, ((versions,),) = run_query(path, f'SELECT count(*) FROM "{schema}"."{name}_history"')
        table.add_row(f"{schema}.{name}", str(live), str(deleted), str(versions))
    console.print(table)

    sql = ("SELECT provider, status, count(*) AS checks, round(avg(turnaround_hours), 1) AS avg_turnaround_h "
           "FROM unified.background_checks GROUP BY ALL ORDER BY provider, checks DESC")
    columns, rows = run_query(path, sql, limit=50)
    sample = Table(title=f"unified.background_checks: {sql}")
    for c in columns:
        sample.add_column(c)
    for row in rows:
        sample.add_row(*("" if v is None else str(v) for v in row))
    console.print(sample)


def _webhook_summary(store: Any) -> str:
    from collections import Counter

    counts = Counter(e["status"] for e in store.events())
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"


def run_demo(*, scale: int = 300, fresh: bool = True, advance_days: int = 3) -> int:
    logging.basicConfig(level=logging.WARNING)
    # The sandbox also signs events for its accounts that are not connected to this platform; the
    # web app rightly rejects those (401). The demo summarises them instead of logging each one.
    logging.getLogger("connections.web.app").setLevel(logging.ERROR)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    steps = Steps()
    warehouse = _prepare_environment(fresh)

    from connections.store import open_store
    from connections.web.app import create_app
    from sandbox.server import SandboxServer
    from screensync.asgi_thread import serve_in_thread
    from screensync.webhook_wiring import drain_pending, install

    with steps.step(f"starting the sandbox providers (Checkr, Checkr staging, ClearChecks; {scale} records per account)"):
        sandbox = SandboxServer(scale=scale)
        sandbox.__enter__()
    try:
        store = open_store()
        install()  # webhook objects -> warehouse
        with serve_in_thread(create_app(store)) as web:
            info = sandbox.info
            console.print(f"    sandbox control API {info['control_url']}; connect/webhook app {web}")
            with steps.step("registering the platform's partner apps and webhook URL"):
                for integration in INTEGRATIONS:
                    section = info[SANDBOX_KEY[integration]]
                    if integration == "clearchecks":
                        secrets = {"source_token": section["source_token"], "private_key": section["private_key"]}
                    else:
                        secrets = dict(section["partner"])
                        httpx.put(f"{info['control_url']}/oauth/{SANDBOX_KEY[integration]}",
                                  json={"redirect_uri": f"{web}/oauth/callback", "auto_approve": True}).raise_for_status()
                        httpx.put(f"{info['control_url']}/webhooks",
                                  json={"url": f"{web}/webhooks/{integration}",
                                        "provider": SANDBOX_KEY[integration]}).raise_for_status()
                    store.set_app_secrets(integration, secrets, base_url=section["base_url"], environment="sandbox")
            with steps.step("connecting customer accounts: partner OAuth (Checkr) and the widget token-decrypt flow (ClearChecks)"):
                for integration in ("checkr", "checkr-partner-staging"):
                    _connect_oauth(web, integration, CONNECTION_IDS[integration])
                _connect_widget(web, info["clearchecks"]["base_url"], "clearchecks", CONNECTION_IDS["clearchecks"])
                for conn in store.list():
                    console.print(f"    {conn.integration}/{conn.connection_id}: {conn.status}"
                                  f" (account {conn.metadata.checkr_account_id or '-'})")
            with steps.step("first sync of every model of every connection, through Prefect"):
                first = _sync_all("first sync")
            with steps.step(f"advancing the sandbox clock {advance_days} days (reports complete, new candidates, webhooks)"):
                sandbox.advance(days=advance_days)
                time.sleep(2.0)  # let the sandbox deliver its webhooks
                drained = drain_pending(store)
                console.print(f"    webhook inbox: {_webhook_summary(store)}; applied late (warehouse busy): {drained}")
                console.print("    (deliveries for sandbox accounts not connected here were refused: bad signature)")
            with steps.step("incremental sync"):
                second = _sync_all("incremental sync")
    finally:
        sandbox.__exit__(None, None, None)
    with steps.step("what landed"):
        _print_warehouse(warehouse)
    failed = [r for r in [*first, *second] if not r.ok]
    console.print(f"""
[bold]Warehouse:[/] {warehouse.resolve()}
  query it:   .venv/bin/screensync query "select * from unified.background_checks limit 10"
  or Python:  duckdb.connect("{warehouse}", read_only=True)   (see docs/analysts.md)
[bold]Prefect UI:[/] PREFECT_HOME={os.environ["PREFECT_HOME"]} .venv/bin/prefect server start
  then open http://127.0.0.1:4200 to see the flow runs, task runs and artifacts of this demo.
Finished in {time.monotonic() - steps.t0:.0f}s.""")
    return 1 if failed else 0
