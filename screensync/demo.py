"""`screensync demo`: the whole product on this machine, the way production runs it, against sandbox providers.

Starts a Prefect server (its own PREFECT_HOME under `.screensync-demo/`), the sandbox providers and
the connect/webhook app on loopback; connects one customer account per integration through the
same flows users go through (partner OAuth for Checkr, the widget token-decrypt flow for
ClearChecks); registers every deployment of prefect.yaml on a `process` work pool and starts a
worker; runs the first syncs as deployment runs the worker picks up; advances the sandbox clock so
webhooks and incremental syncs have something to do; syncs again the same way; prints what landed.
With `--ui` everything keeps running until Ctrl-C so the Prefect UI (runs, logs, schedules, action
forms) can be explored. Everything it writes lives under `.screensync-demo/` and in the warehouse file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from screensync.demo_report import Steps, console, print_warehouse, summary_table, waiting, webhook_summary

DEMO_DIR = Path(".screensync-demo")
INTEGRATIONS = ("checkr", "checkr-partner-staging", "clearchecks")
CONNECTION_IDS = {"checkr": "acme-hr", "checkr-partner-staging": "acme-hr-staging", "clearchecks": "globex"}
SANDBOX_KEY = {"checkr": "checkr", "checkr-partner-staging": "checkr_staging", "clearchecks": "clearchecks"}
RUN_TIMEOUT_S = float(os.environ.get("SCREENSYNC_DEMO_RUN_TIMEOUT", "900"))
UI_ACTION = "checkr-create-candidate"  # the action whose form `--ui` points at


class DemoError(RuntimeError):
    """A part of the demo did not come up or finish; the message says which and where its log is."""


def _prepare_environment(fresh: bool) -> Path:
    if fresh and DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(exist_ok=True)
    os.environ["SCREENSYNC_CONNECTIONS"] = str((DEMO_DIR / "connections.sqlite").resolve())
    key_file = DEMO_DIR / "secret.key"
    if not key_file.exists():
        from connections.crypto import generate_key

        key_file.write_text(generate_key() + "\n")
        key_file.chmod(0o600)
    os.environ.pop("SCREENSYNC_SECRET_KEY", None)
    os.environ["SCREENSYNC_SECRET_KEY_FILE"] = str(key_file.resolve())
    from flows.prefect_env import apply_defaults

    apply_defaults()
    from common import settings

    warehouse = settings.warehouse_path().resolve()
    # absolute: the worker's flow-run processes work in the checkout, not in this directory
    os.environ[settings.WAREHOUSE_ENV] = str(warehouse)
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


def _sync_all(label: str, worker: Any) -> list[str]:
    """Run `sync-<integration>` for every integration as deployment runs; the worker executes them.

    They are triggered together (one worker poll picks them all up) and their writes take turns
    on the warehouse, one short transaction at a time. Returns what did not succeed.
    """
    from flows.runs import sync_summary_rows, trigger_sync, wait_for_runs

    runs = {integration: trigger_sync(integration) for integration in INTEGRATIONS}
    console.print("    deployment runs: " + ", ".join(f"sync-{i} ({r.name})" for i, r in runs.items()))

    with waiting("waiting for the worker to run them") as update:

        def on_wait(current: dict[Any, Any], elapsed: float) -> None:
            _check_alive(worker)
            states = ", ".join(f"{r.name} {r.state.name if r.state else '?'}" for r in current.values())
            update(f"{elapsed:.0f}s: {states}")

        try:
            finished = wait_for_runs([r.id for r in runs.values()], timeout=RUN_TIMEOUT_S, on_wait=on_wait)
        except TimeoutError as exc:
            raise DemoError(f"{exc}; the worker's log is {worker.log_path}") from None
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    for integration, run in runs.items():
        state = finished[run.id].state
        if not state.is_completed():
            problems.append(f"{run.name}: {state.name} {state.message or ''}".strip())
            console.print(f"    [red]{run.name} ended {state.name}: {state.message}[/]")
        found = sync_summary_rows(run.id, integration)
        problems += [f"{r['connection']}/{r['sync']}: {r['status']}" for r in found if r["status"] != "success"]
        rows += found
    console.print(summary_table(rows, label))
    return problems


def _check_alive(*processes: Any) -> None:
    for proc in processes:
        if not proc.running():
            raise DemoError(
                f"the {proc.name} exited with code {proc.exit_code()}; its log is {proc.log_path}; "
                f"last lines:\n{proc.log_tail()}"
            )


def _register_apps(store: Any, info: dict[str, Any], web: str) -> None:
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


@contextmanager
def _signals_stop_the_demo() -> Iterator[None]:
    """The first Ctrl-C or SIGTERM (a CI timeout, `kill`) unwinds the demo; later ones are ignored,
    so they cannot cut short the stopping of the server and worker (an orphaned server keeps its port)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def first_signal(signum: int, frame: Any) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, first_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _reopen_command(home: Path) -> str:
    return f"PREFECT_HOME={home} {Path(sys.executable).parent / 'prefect'} server start"


def _keep_running(server: Any, worker: Any, deployment_ids: dict[str, Any]) -> None:
    """`--ui`: the UI, the worker, the sandboxes and the connect app stay up until Ctrl-C."""
    action_id = deployment_ids.get(UI_ACTION)
    console.print(f"""
[bold]The Prefect UI is running:[/] {server.url}/runs
  flow runs, their logs and artifacts; deployments with their schedules: {server.url}/deployments
  an action's form ({UI_ACTION}, connection_id "{CONNECTION_IDS['checkr']}"): {server.url}/deployments/deployment/{action_id}/run
  the worker runs what you start there against the sandboxes, which stay up too.
[bold]Press Ctrl-C to stop the server, the worker and the sandboxes.[/]""", soft_wrap=True)
    while True:
        _check_alive(server.process, worker)
        time.sleep(1.0)


def run_demo(*, scale: int = 300, fresh: bool = True, advance_days: int = 3, ui: bool = False) -> int:
    logging.basicConfig(level=logging.WARNING)
    # The sandbox also signs events for its accounts that are not connected to this platform; the
    # web app rightly rejects those (401). The demo summarises them instead of logging each one.
    logging.getLogger("connections.web.app").setLevel(logging.ERROR)
    # this process only serves webhooks; the flow runs (in the worker's processes) log at INFO
    logging.getLogger("screensync").setLevel(logging.WARNING)
    steps = Steps()
    warehouse = _prepare_environment(fresh)

    from flows.prefect_server import PrefectServer, PrefectServerError

    server = PrefectServer(DEMO_DIR / "prefect", log_path=DEMO_DIR / "prefect-server.log")
    # this process is a Prefect client of that server (Prefect reads these when first imported)
    os.environ.update({"PREFECT_HOME": str(server.home), "PREFECT_API_URL": server.api_url})
    for key in ("PREFECT_PROFILE", "PREFECT_PROFILES_PATH", "PREFECT_API_KEY"):
        os.environ.pop(key, None)
    problems: list[str] | None = None  # set once both syncs ran
    with _signals_stop_the_demo(), ExitStack() as stack:
        try:
            problems, worker, deployment_ids = _run_steps(
                stack, steps, server, warehouse, scale=scale, advance_days=advance_days
            )
            if ui:
                _keep_running(server, worker, deployment_ids)
        except (DemoError, PrefectServerError) as exc:
            console.print(f"[bold red]demo failed:[/] {exc}")
            return 1
        except KeyboardInterrupt:
            console.print("\n[yellow]stopping the worker, the Prefect server and the sandboxes ...[/]")
            if problems is None:  # interrupted before the demo had finished
                return 130
    console.print(f"""[bold]Open the Prefect UI on this demo's data[/] (runs, logs, schedules, action forms):
  {_reopen_command(server.home)}
  then browse http://127.0.0.1:4200/runs   (`--ui` keeps the worker and the sandboxes up as well)""", soft_wrap=True)
    return 1 if problems else 0


def _run_steps(
    stack: ExitStack, steps: Steps, server: Any, warehouse: Path, *, scale: int, advance_days: int
) -> tuple[list[str], Any, dict[str, Any]]:
    """Every step up to "what landed"; returns what did not succeed, the worker and the deployment ids."""
    from common.asgi_thread import serve_in_thread
    from connections.store import open_store
    from connections.web.app import create_app
    from flows.deployments import WORK_POOL
    from flows.prefect_server import worker_process
    from flows.webhook_applier import WebhookApplier
    from sandbox.server import SandboxServer

    with steps.step(f"starting a Prefect server in the background on {server.url} (PREFECT_HOME={server.home})"):
        server.start()
        stack.callback(server.stop)
        console.print(f"    its log: {server.log_path}")
    with steps.step(f"starting the sandbox providers (Checkr, Checkr staging, ClearChecks; {scale} records per account)"):
        sandbox = stack.enter_context(SandboxServer(scale=scale))
    store = open_store()
    # the web app applies webhook objects to the warehouse as they arrive, as `serve-web` does
    web = stack.enter_context(serve_in_thread(create_app(store, applier=WebhookApplier(store))))
    info = sandbox.info
    console.print(f"    sandbox control API {info['control_url']}; connect/webhook app {web}")
    with steps.step("registering the platform's partner apps and webhook URL"):
        _register_apps(store, info, web)
    with steps.step("connecting customer accounts: partner OAuth (Checkr) and the widget token-decrypt flow (ClearChecks)"):
        for integration in ("checkr", "checkr-partner-staging"):
            _connect_oauth(web, integration, CONNECTION_IDS[integration])
        _connect_widget(web, info["clearchecks"]["base_url"], "clearchecks", CONNECTION_IDS["clearchecks"])
        for conn in store.list():
            console.print(f"    {conn.integration}/{conn.connection_id}: {conn.status}"
                          f" (account {conn.metadata.provider_account_id or '-'})")
    with steps.step("waiting for the Prefect server to answer /api/health (a new database takes 15-35 s here)"):
        with waiting("Prefect server starting") as update:
            took = server.wait_until_healthy(on_wait=lambda s: update(f"{s:.0f}s"))
        console.print(f"    healthy after {took:.0f}s of waiting")
    with steps.step(f"registering every deployment of prefect.yaml on the process work pool '{WORK_POOL}'; starting a worker"):
        from flows.deploy import ensure_process_pool, register_deployments

        ensure_process_pool(WORK_POOL)
        # started first: it boots while the deployments are registered
        worker = worker_process(WORK_POOL, env=server.env, cwd=Path.cwd(), log_path=DEMO_DIR / "prefect-worker.log",
                                query_seconds=1.0)
        worker.start()
        stack.callback(worker.stop)
        deployment_ids = register_deployments(WORK_POOL)
        syncs = [n for n in deployment_ids if n.startswith("sync-")]
        console.print(f"    {len(deployment_ids)} deployments: {len(syncs)} syncs with their schedules "
                      f"({', '.join(syncs)}) and {len(deployment_ids) - len(syncs)} actions; "
                      f"worker log: {worker.log_path}")
    with steps.step("first sync of every model of every connection: deployment runs, executed by the worker"):
        problems = _sync_all("first sync", worker)
    with steps.step(f"advancing the sandbox clock {advance_days} days (reports complete, new candidates, webhooks)"):
        sandbox.advance(days=advance_days)
        sandbox.flush_webhooks("checkr")  # every delivery answered (each is in the inbox before its 2xx)
        deadline = time.monotonic() + 30
        while store.events(status="pending", limit=1) and time.monotonic() < deadline:
            time.sleep(0.2)  # the web app's applier writes them to the warehouse within seconds
        console.print(f"    webhook inbox: {webhook_summary(store)}")
        console.print("    (deliveries for sandbox accounts not connected here were refused: bad signature)")
    with steps.step("incremental sync: deployment runs again, each resuming from its cursor"):
        problems += _sync_all("incremental sync", worker)
    with steps.step("what landed"):
        print_warehouse(warehouse)
    console.print(f"""
[bold]Warehouse:[/] {warehouse}
  query it:   .venv/bin/screensync query "select * from unified.background_checks limit 10"
  or Python:  from warehouse.read import query; query("select ...", path="{warehouse}")   (see docs/analysts.md)
  sync status: SCREENSYNC_WAREHOUSE={warehouse} SCREENSYNC_CONNECTIONS={os.environ["SCREENSYNC_CONNECTIONS"]} .venv/bin/screensync status
[bold]Prefect:[/] {len(deployment_ids)} deployments on work pool '{WORK_POOL}' and this demo's flow runs, in {server.home}
Finished in {time.monotonic() - steps.t0:.0f}s.""", soft_wrap=True)
    for problem in problems:
        console.print(f"[red]did not succeed:[/] {problem}")
    return problems, worker, deployment_ids
