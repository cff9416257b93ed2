"""The sync rides out what real providers do — 429s, 5xx, dropped connections, bad records,
dishonest pagination, revoked credentials — and a killed run resumes to the same result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pytest

from tests.engine.conftest import Env
from tests.engine.test_sync_truth import assert_checkr_equal, assert_clearchecks_equal
from warehouse.connection import WarehouseError

ROOT = Path(__file__).resolve().parents[2]


def set_faults(sandbox: Any, provider: str, **faults: Any) -> None:
    r = httpx.put(f"{sandbox.info['control_url']}/faults/{provider}", json={"seed": 3, **faults})
    r.raise_for_status()


def test_429s_5xx_and_dropped_connections_are_ridden_out(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=250)
    account_id = env.connect(sandbox, "checkr", "cust-1")
    set_faults(sandbox, "checkr", error_rate=0.15, burst_429_rate=0.1, burst_429_length=2, drop_rate=0.1)
    from integrations.engine.retries import RetryPolicy

    fast = RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=10)
    results = [env.sync("checkr", "cust-1", s, retry=fast)
               for s in ("account", "candidates", "reports", "packages", "invitations", "invoices")]
    assert all(r.ok for r in results), [(r.sync, r.error) for r in results]
    assert sum(r.retries for r in results) > 0  # the faults really happened
    set_faults(sandbox, "checkr")
    assert_checkr_equal(env, sandbox, "checkr", "cust-1", account_id)


def test_malformed_records_are_quarantined_and_the_rest_lands(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=60)
    account_id = env.connect(sandbox, "checkr", "cust-1")
    set_faults(sandbox, "checkr", missing_field=True, missing_field_every=7)
    result = env.sync("checkr", "cust-1", "candidates")
    assert result.ok, result.error
    assert result.rejected > 0
    rejected = env.rows("SELECT model, error, raw FROM _screensync.rejected_records")
    assert len(rejected) == result.rejected
    assert all(err and raw for _, err, raw in rejected)
    assert any("Field required" in err or "missing" in err for _, err, _ in rejected)
    landed = env.rows("SELECT count(*) FROM checkr.candidates")[0][0]
    truth = len(sandbox.export("checkr")[account_id]["candidates"])
    assert landed > 0 and landed + sum(1 for m, _, _ in rejected if m == "candidates") == truth


@pytest.mark.parametrize("status_token", ["wrong-key"])
def test_401_fails_fast_and_marks_the_connection_invalid(env: Env, sandbox: Any, status_token: str) -> None:
    from connections.models import Connection, ConnectionMetadata, Credentials

    env.store.add(Connection(connection_id="bad", integration="checkr",
                             metadata=ConnectionMetadata(base_url=sandbox.info["checkr"]["base_url"])),
                  Credentials(token=status_token))
    started = time.monotonic()
    result = env.sync("checkr", "bad", "candidates")
    assert result.status.value == "failed"
    assert result.requests == 1 and result.retries == 0  # never retried
    assert "checkr connection 'bad'" in (result.error or "") and "401" in (result.error or "")
    assert status_token not in (result.error or "")
    assert env.store.get("checkr", "bad").status == "invalid"
    assert time.monotonic() - started < 30
    # an invalid connection is not used again: nothing is sent
    again = env.sync("checkr", "bad", "candidates")
    assert again.status.value == "failed" and again.requests == 0 and "nothing was sent" in (again.error or "")


@pytest.mark.parametrize("fault", ["next_href_foreign", "next_href_loop"])
def test_foreign_or_looping_next_links_are_refused(env: Env, fresh_sandbox: Any, fault: str) -> None:
    sandbox = fresh_sandbox(scale=350)
    env.connect(sandbox, "checkr", "cust-1")
    set_faults(sandbox, "checkr", **{fault: True})
    result = env.sync("checkr", "cust-1", "candidates")
    assert result.status.value == "failed"
    expected = "not on the API origin" if fault == "next_href_foreign" else "loops"
    assert expected in (result.error or "")
    # once the provider behaves, the next run completes; after a loop it resumes from the
    # last committed page (a foreign link on page 1 is refused before page 1 is committed)
    set_faults(sandbox, "checkr")
    resumed = env.sync("checkr", "cust-1", "candidates")
    assert resumed.ok, resumed.error
    assert resumed.resumed == (fault == "next_href_loop")


def test_clearchecks_rides_out_faults(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=300, rate_limits={"clearchecks": 6000})
    account_id = env.connect(sandbox, "clearchecks", "cc-1")
    set_faults(sandbox, "clearchecks", error_rate=0.2, duplicate_record=True, drop_rate=0.1)
    from integrations.engine.retries import RetryPolicy

    fast = RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=10)
    results = [env.sync("clearchecks", "cc-1", s, retry=fast) for s in ("account", "reports", "packages", "invoices")]
    assert all(r.ok for r in results), [(r.sync, r.error) for r in results]
    assert sum(r.retries for r in results) > 0
    set_faults(sandbox, "clearchecks")
    assert_clearchecks_equal(env, sandbox, "cc-1", account_id)


@pytest.mark.both_backends
def test_a_page_that_stays_malformed_fails_clearly_and_the_run_resumes(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=300, rate_limits={"clearchecks": 6000})
    account_id = env.connect(sandbox, "clearchecks", "cc-1")
    set_faults(sandbox, "clearchecks", malformed_page=2)
    from integrations.engine.retries import RetryPolicy

    failed = env.sync("clearchecks", "cc-1", "reports", retry=RetryPolicy(base_delay=0.01, max_delay=0.05))
    assert failed.status.value == "failed"
    assert "not JSON" in (failed.error or "") and "page=2" in (failed.error or "")
    assert failed.pages == 1  # page 1 was committed with its checkpoint
    from integrations.engine.checkpoint import Checkpoint

    (stored,) = env.rows("SELECT checkpoint FROM _screensync.sync_state WHERE sync = 'reports'")
    checkpoint = Checkpoint.from_stored(orjson.loads(stored[0]) if isinstance(stored[0], str) else stored[0])
    assert checkpoint is not None and checkpoint.page["page"] == 2 and checkpoint.page["page_number"] == 1
    set_faults(sandbox, "clearchecks")
    resumed = env.sync("clearchecks", "cc-1", "reports")
    assert resumed.ok and resumed.resumed
    truth = {r["report_key"] for r in sandbox.export("clearchecks")[account_id]["reports"]}
    assert set(env.raws("clearchecks", "reports", "cc-1")) == truth


@pytest.mark.slow
def test_a_sync_killed_with_sigkill_resumes_and_matches_the_truth(env: Env, fresh_sandbox: Any,
                                                                   tmp_path: Path) -> None:
    sandbox = fresh_sandbox(scale=3000)
    account_id = env.connect(sandbox, "checkr", "cust-1")
    # slow enough that pages fetched ahead (issue 17: up to 8 at once) cannot finish the list between
    # two polls: 30 pages at 1.5 s, the window growing from 1
    set_faults(sandbox, "checkr", latency_ms=1500)
    kill_candidates_sync_after_a_checkpoint(env)
    assert _checkpoint(env), "the checkpoint committed before the kill was lost"
    set_faults(sandbox, "checkr")
    result = env.sync("checkr", "cust-1", "candidates")
    assert result.ok and result.resumed, result.error
    for sync in ("account", "reports", "packages", "invitations", "invoices"):
        assert env.sync("checkr", "cust-1", sync).ok
    assert_checkr_equal(env, sandbox, "checkr", "cust-1", account_id)


def kill_candidates_sync_after_a_checkpoint(env: Env) -> None:
    """Run `screensync sync checkr --sync candidates` for cust-1 in a child process and SIGKILL it once
    a page is committed, whenever that is on a loaded machine (readers see each committed write)."""
    child_env = {**os.environ, "SCREENSYNC_WAREHOUSE": str(env.db)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "screensync", "sync", "checkr", "--connection", "cust-1", "--sync", "candidates"],
        cwd=ROOT, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (env.exists() and _checkpoint(env)):
        assert proc.poll() is None, "the sync finished before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint was committed within 120 s"
        time.sleep(0.2)
    assert proc.poll() is None, "the sync finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _checkpoint(env: Env) -> bool:
    try:
        state = env.rows("SELECT checkpoint FROM _screensync.sync_state WHERE sync = 'candidates'")
    except (duckdb.Error, WarehouseError):  # the file exists but its meta tables are not committed yet
        return False
    return bool(state) and state[0][0] is not None
