"""README's first command, as a new user runs it: `python3.11 dev.py demo --ui` in a fresh copy of the repository.

The copy holds the repository's files only (`git ls-files`, no .venv), so dev.py creates its own
.venv and installs uv.lock into it (fast from uv's cache, and the honest path: a dev.py or lock
file that breaks a new machine breaks this test). `--ui` is README's demo command with the UI kept
up at the end: one run checks both the main job and the UI (each demo run costs a minute or two
of the suite's time). While it waits, the runs page and an action's form answer; then Ctrl-C, as
in a terminal. After that: the exit code, nothing left running, every table the demo printed has
those rows in the warehouse, the Prefect database holds every deployment of prefect.yaml, completed
runs created from deployments, their logs and events and the runs the schedules created, and the
command the demo prints reopens the UI on that data.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from flow_helpers import read_rows

from flows.deployments import build_prefect_yaml
from flows.processes import ChildProcess
from tests.support.asgi_server import free_port

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]  # a whole demo run on a loaded 2-core machine
DEMO_TIMEOUT_S = 900
# Checkr's staging environment does not generate invoices (sandbox/checkr/world.py), so the demo's
# staging account has none: the one table the demo may print empty.
EMPTY_BY_DESIGN = {"checkr_partner_staging.invoices"}
ROW = re.compile(r"^│ (\w+\.\w+)\s+│\s+(\d+) │\s+(\d+) │\s+(\d+) │$")
BROWSER = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


@dataclass
class DemoRun:
    repo: Path
    returncode: int
    output: str
    fresh_prefect_home: Path
    pages: dict[str, int] = field(default_factory=dict)  # UI URL -> status while `--ui` kept it up
    form_deployment: str | None = None  # the deployment whose form the demo pointed at

    @property
    def prefect_db(self) -> Path:
        return self.repo / ".screensync-demo" / "prefect" / "prefect.db"

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(f"file:{self.prefect_db}?mode=ro", uri=True)
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()


def _copy_repository(dest: Path) -> None:
    """The files a clone would have (tracked, plus new ones not ignored), nothing built or installed."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _user_environment(fresh_prefect_home: Path) -> dict[str, str]:
    """A shell's environment: none of this test session's Prefect or screensync settings, no active venv."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "SCREENSYNC_", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTEST"))}  # fmt: skip
    env["PREFECT_HOME"] = str(fresh_prefect_home)
    return env


def _processes_in(repo: Path) -> list[str]:
    """Processes still running from the copy (its .venv's python, or working inside it)."""
    left = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            cwd = proc.info["cwd"] or ""
        except psutil.Error:
            continue
        if str(repo) in cmdline or cwd.startswith(str(repo)):
            left.append(f"{proc.info['pid']}: {cmdline}")
    return left


def _look_at_the_ui(text: str, run: DemoRun) -> None:
    """What a user does once the demo says the UI is up: open the runs page and the action's form."""
    runs_url = re.search(r"The Prefect UI is running: (\S+/runs)", text).group(1)  # type: ignore[union-attr]
    form_url = re.search(r"(http://\S+/deployments/deployment/[0-9a-f-]{36}/run)", text).group(1)  # type: ignore[union-attr]
    for url in (runs_url, form_url):
        page = httpx.get(url, headers=BROWSER, timeout=10)
        run.pages[url] = page.status_code if "<html" in page.text.lower() else -1
    api = runs_url.removesuffix("/runs") + "/api"
    run.form_deployment = httpx.get(f"{api}/deployments/{form_url.split('/')[-2]}", timeout=10).json()["name"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    root = tmp_path_factory.mktemp("demo")
    repo, home = root / "screensync", root / "prefect-home"
    home.mkdir()
    _copy_repository(repo)
    python = shutil.which("python3.11") or sys.executable
    log = root / "demo.log"
    run = DemoRun(repo, -1, "", home)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [python, "dev.py", "demo", "--ui"], cwd=repo, env=_user_environment(home),
            stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal's foreground job
        )  # fmt: skip
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT_S
        while "Press Ctrl-C" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
        if proc.poll() is None and "Press Ctrl-C" in log.read_text():
            _look_at_the_ui(log.read_text(), run)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does (dev.py and the demo both get it)
        run.returncode = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    run.output = log.read_text()
    yield run


def test_the_demo_succeeds_keeps_the_ui_up_and_stops_everything_on_ctrl_c(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.output[-6000:]
    for step in ("waiting for the Prefect server", "registering every deployment of prefect.yaml",
                 "first sync", "incremental sync", "what landed", "Press Ctrl-C",
                 "stopping the worker, the Prefect server and the sandboxes"):  # fmt: skip
        assert step in demo.output, demo.output[-3000:]
    assert "did not succeed" not in demo.output
    assert list(demo.pages.values()) == [200, 200], demo.pages
    assert demo.form_deployment == "checkr-create-candidate"
    assert _processes_in(demo.repo) == []
    assert list(demo.fresh_prefect_home.iterdir()) == []  # the demo used its own PREFECT_HOME


def test_every_table_the_demo_prints_has_those_rows_in_the_warehouse(demo: DemoRun) -> None:
    printed = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in map(ROW.match, demo.output.splitlines()) if m}
    assert len(printed) >= 16, demo.output[-4000:]
    warehouse = demo.repo / "warehouse.duckdb"
    for table, (live, deleted) in printed.items():
        schema, name = table.split(".")
        counted = read_rows(warehouse, f'SELECT count(*) FILTER (_deleted_at IS NULL), count(*) FILTER '
                                       f'(_deleted_at IS NOT NULL) FROM "{schema}"."{name}"')  # fmt: skip
        assert counted == [(live, deleted)], table
        if table not in EMPTY_BY_DESIGN:
            assert live > 0, f"{table} is empty after the demo"
    providers = read_rows(warehouse, "SELECT DISTINCT provider FROM unified.background_checks")
    assert {p for (p,) in providers} == {"checkr", "checkr-partner-staging", "clearchecks"}


def test_the_prefect_database_holds_the_deployments_and_completed_deployment_runs(demo: DemoRun) -> None:
    declared = {d["name"] for d in build_prefect_yaml()["deployments"]}
    assert {n for (n,) in demo.sql("SELECT name FROM deployment")} == declared
    assert demo.sql("SELECT name, type FROM work_pool WHERE name = 'screensync'") == [("screensync", "process")]

    runs = demo.sql(
        "SELECT d.name, r.state_type, r.id FROM flow_run r JOIN deployment d ON d.id = r.deployment_id "
        "WHERE r.auto_scheduled = 0"
    )
    by_deployment: dict[str, list[str]] = {}
    for name, state, _ in runs:
        by_deployment.setdefault(name, []).append(state)
    syncs = {n for n in declared if n.startswith("sync-")}
    assert by_deployment == {n: ["COMPLETED", "COMPLETED"] for n in syncs}  # first and incremental sync

    # the runs explain themselves: engine log lines and one event per finished (connection, sync)
    run_ids = tuple(r for _, _, r in runs)
    engine_lines = demo.sql(f"SELECT count(*) FROM log WHERE name = 'screensync.sync' AND flow_run_id IN {run_ids}")
    assert engine_lines[0][0] >= 2 * 17
    events = dict(demo.sql("SELECT event, count(*) FROM events WHERE event LIKE 'screensync.sync.%' GROUP BY 1"))
    assert events == {"screensync.sync.completed": 2 * 17}  # 6 Checkr + 6 partner staging + 5 ClearChecks syncs (report_status)
    # and the schedules are live: Prefect's scheduler created upcoming runs for every sync deployment
    scheduled = {n for (n,) in demo.sql(
        "SELECT DISTINCT d.name FROM flow_run r JOIN deployment d ON d.id = r.deployment_id "
        "WHERE r.auto_scheduled = 1 AND r.state_type = 'SCHEDULED'")}  # fmt: skip
    assert scheduled == syncs


def test_the_printed_command_reopens_the_ui_on_the_demos_data(demo: DemoRun) -> None:
    command = re.search(r"^  (PREFECT_HOME=\S+ \S+/prefect server start)$", demo.output, re.MULTILINE)
    assert command, demo.output[-2000:]
    port = free_port()
    server = ChildProcess("reopened UI", ["bash", "-c", f"{command.group(1)} --port {port}"],
                          env=_user_environment(demo.fresh_prefect_home), cwd=demo.repo.parent,
                          log_path=demo.repo.parent / "reopened.log")  # fmt: skip
    with server:
        api = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.running() and time.monotonic() < deadline, server.log_tail()
            time.sleep(0.5)
        deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()
        assert {d["name"] for d in deployments} == {d["name"] for d in build_prefect_yaml()["deployments"]}
        runs = httpx.post(f"{api}/flow_runs/filter", json={"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}},
                          timeout=10).json()  # fmt: skip
        assert len([r for r in runs if r["deployment_id"]]) == 6
        assert httpx.get(f"http://127.0.0.1:{port}/runs", headers=BROWSER, timeout=10).status_code == 200
