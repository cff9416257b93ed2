"""`screensync status` before anything synced, and while a sync holds the warehouse (real files, no Prefect)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from screensync.status import collect_status, human_duration, short_error
from screensync.status_cli import register
from tests.support.asgi_server import free_port


def _cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("SCREENSYNC_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("SCREENSYNC_CONNECTIONS", str(tmp_path / "connections.sqlite"))
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{free_port()}/api"}):  # nobody answers there
        result = CliRunner().invoke(app, ["status", *args])
    return result.exit_code, result.output


def _add_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, connection_id: str) -> None:
    from connections.models import Connection, Credentials
    from connections.sqlite_store import SqliteConnectionStore

    monkeypatch.setenv("SCREENSYNC_SECRET_KEY", Fernet.generate_key().decode())
    SqliteConnectionStore(tmp_path / "connections.sqlite").add(
        Connection(connection_id=connection_id, integration="clearchecks"), Credentials(token="t")
    )


def test_a_new_connection_shows_every_sync_as_never_run_and_due_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_connection(tmp_path, monkeypatch, "new-1")
    code, output = _cli(monkeypatch, tmp_path, "--json")
    assert code == 0, output
    rows = json.loads(output)
    assert [(r["connection_id"], r["sync"]) for r in rows] == [
        ("new-1", s) for s in ("account", "reports", "report_status", "packages", "invoices")
    ]
    for r in rows:
        assert r["last_run_status"] is None and r["last_success_at"] is None and r["lag_seconds"] is None
        assert r["next_run_source"] == "frequency"  # Prefect does not answer: computed, and due now
        assert abs(datetime.fromisoformat(r["next_run_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    code, table = _cli(monkeypatch, tmp_path)
    assert code == 0 and "never ran" in table and "due now *" in table


def test_no_store_and_no_warehouse_is_a_hint_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = _cli(monkeypatch, tmp_path)
    assert code == 0 and "screensync connections add" in output
    assert not (tmp_path / "connections.sqlite").exists() and not (tmp_path / "warehouse.duckdb").exists()


def test_a_warehouse_held_by_a_sync_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); print('open', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        started = time.monotonic()
        code, output = _cli(monkeypatch, tmp_path, "--timeout", "1")
    finally:
        holder.kill()
        holder.wait()
    assert code == 1 and "locked by another process" in output and str(warehouse) in output
    assert time.monotonic() - started < 30


def test_helpers_shorten_errors_and_durations() -> None:
    assert short_error("HTTP 401 from GET /api/accounts\nTraceback ...") == "HTTP 401 from GET /api/accounts"
    assert len(short_error("x" * 200) or "") == 80
    assert [human_duration(s) for s in (None, 5, 125, 7300, 90000)] == ["-", "5s", "2m", "2h 1m", "1d 1h"]
    assert collect_status(warehouse=Path("/nonexistent/w.duckdb"), connections=[], scheduled=None) == []
