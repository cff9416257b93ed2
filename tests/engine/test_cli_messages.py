"""`screensync sync` and `screensync rejects` end with what happened and what to do, never a
traceback, and with the documented exit codes (docs/operations.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from cryptography.fernet import Fernet

from tests.engine.conftest import Env
from tests.engine.hostile_provider import CONN, HostileProvider

ROOT = Path(__file__).resolve().parents[2]


def cli(env: Env, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-s", "screensync", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "SCREENSYNC_WAREHOUSE": str(env.db), "COLUMNS": "200", **extra_env},
    )


def start(env: Env, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-s", "screensync", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "SCREENSYNC_WAREHOUSE": str(env.db), "COLUMNS": "200"},
    )


def error_lines(out: subprocess.CompletedProcess[str]) -> list[str]:
    """The command's closing message (a notice that it is waiting for a held file may come first)."""
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    return [line for line in out.stderr.splitlines() if line.strip() and "retrying for up to" not in line]


@pytest.mark.file_only("an outside process holding the DuckDB file; a lake has no file to hold")
def test_a_locked_warehouse_says_so_in_two_lines(env: Env, hostile: HostileProvider) -> None:
    holder = duckdb.connect(str(env.db))  # an analyst's session holding the file
    try:
        out = cli(env, "sync", "checkr", "-c", CONN, "-s", "account", "--wait", "1")
    finally:
        holder.close()
    lines = error_lines(out)
    assert out.returncode == 4, out.stderr
    assert len(lines) == 2 and lines[0].startswith("error:") and "locked by another process" in lines[0]
    assert lines[1].strip().startswith("what to do:")
    assert hostile.hits.get("account", 0) == 0  # nothing was sent


def test_a_wrong_key_says_so_in_two_lines(env: Env, hostile: HostileProvider) -> None:
    out = cli(env, "sync", "checkr", "-c", CONN, "-s", "account", SCREENSYNC_SECRET_KEY=Fernet.generate_key().decode())
    lines = error_lines(out)
    assert out.returncode == 5, out.stderr
    assert len(lines) == 2 and "cannot be decrypted" in lines[0] and "SCREENSYNC_SECRET_KEY" in lines[1]
    malformed = cli(env, "rejects", "retry", "checkr", SCREENSYNC_SECRET_KEY="not-a-key")
    assert malformed.returncode == 5 and "not a valid Fernet key" in error_lines(malformed)[0]


def test_the_old_model_flag_still_works_and_warns(env: Env, hostile: HostileProvider) -> None:
    out = cli(env, "sync", "checkr", "-c", CONN, "--model", "account")
    assert out.returncode == 0, out.stderr
    assert "--model is deprecated" in out.stderr and "use --sync" in out.stderr
    assert "--model is deprecated" not in cli(env, "sync", "checkr", "-c", CONN, "--sync", "account").stderr


def test_an_unknown_sync_is_a_usage_error(env: Env, hostile: HostileProvider) -> None:
    out = cli(env, "sync", "checkr", "-s", "nope")
    assert out.returncode == 2 and "has no sync 'nope'" in error_lines(out)[0]


def test_the_same_sync_twice_says_it_is_running_and_another_sync_runs_beside_it(
    env: Env, hostile: HostileProvider
) -> None:
    """The warehouse is held a write at a time, not for a whole sync: a second `screensync sync` of
    another model runs beside the first; the same (connection, sync) still runs once at a time."""
    from common.settings import local_lock_anchor
    from flows.locks import LockTimeout, file_lock, sync_lock_path

    # the first sync takes ~25 s (3 pages, the last two fetched together): room for two CLI starts on a loaded machine
    hostile.faults.latency_s = 12
    first = start(env, "sync", "checkr", "-c", CONN, "-s", "candidates")
    lock = sync_lock_path(local_lock_anchor(env.db), "checkr", CONN, "candidates")  # beside the file, or ~ (a lake)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the first one holds its sync's lock
            try:
                with file_lock(lock, timeout=0, what="probe"):
                    pass
            except LockTimeout:
                break
            assert first.poll() is None, first.communicate()
            time.sleep(0.1)
        started = time.monotonic()
        second = cli(env, "sync", "checkr", "-c", CONN, "-s", "candidates", "--wait", "1")
        assert time.monotonic() - started < 20  # not DuckDB's 30 s wait
        lines = error_lines(second)
        assert second.returncode == 4, second.stderr
        assert len(lines) == 2 and "another screensync sync" in lines[0] and f"PID {first.pid}" in lines[0]
        assert "checkr/" + CONN + "/candidates" in lines[0] and "--wait" in lines[1]
        other = cli(env, "sync", "checkr", "-c", CONN, "-s", "account", "--wait", "1")
        assert other.returncode == 0, other.stderr
    finally:
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    runs = dict(env.rows("SELECT sync, (started_at, finished_at) FROM _screensync.sync_runs"))
    assert runs["candidates"][0] < runs["account"][1] < runs["candidates"][1], runs  # the account sync ran inside it


def test_partial_exit_code_then_rejects_list_and_retry(env: Env, hostile: HostileProvider) -> None:
    hostile.faults.epoch_id = "cand_0123"
    synced = cli(env, "sync", "checkr", "-c", CONN, "-s", "candidates")
    assert synced.returncode == 3, synced.stderr
    assert "partial" in synced.stderr and "screensync rejects list" in synced.stderr
    listed = cli(env, "rejects", "list", "checkr")
    assert listed.returncode == 0, listed.stderr
    assert "cand_0123" in listed.stdout and "ISO 8601" in listed.stdout and "1 record(s) owed" in listed.stderr
    hostile.faults.epoch_id = None
    retried = cli(env, "rejects", "retry", "checkr", "-c", CONN)
    assert retried.returncode == 0, retried.stderr
    assert hostile.hits.get("candidate") == 1  # fetched by id, not by listing again
    assert "cand_0123" not in cli(env, "rejects", "list").stdout
    assert env.rows("SELECT count(*) FROM checkr.candidates WHERE id = 'cand_0123'") == [(1,)]
