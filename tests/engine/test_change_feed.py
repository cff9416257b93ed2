"""The change feed end to end: real sandbox syncs and signed webhook deliveries on loopback HTTP,
a real warehouse (a DuckDB file, and a DuckLake for the `both_backends` tests), and a consumer that
resumes from its stored cursor (issue 16 item 3)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from tests.engine.conftest import Env
from tests.support.webhooks import ROOT
from warehouse.backend import is_lake
from warehouse.changes import history_views, read_changes
from warehouse.connection import WarehouseError
from warehouse.read import read_session


def _assert_in_feed_order(env: Env, cursors: list[int], first: int = 1) -> None:
    """Unique and increasing from `first`; on the file also gap-free (a DuckLake's cursors are row ids
    and may skip numbers: docs/warehouse.md, the backends' table)."""
    assert cursors and cursors[0] >= first and all(a < b for a, b in itertools.pairwise(cursors)), cursors
    if not is_lake(env.db):
        assert cursors == list(range(first, first + len(cursors)))


def _versions(env: Env) -> set[tuple[str, str, str, Any]]:
    """Every version the warehouse took, from each table's history (a late arrival was never current)."""
    out: set[tuple[str, str, str, Any]] = set()
    with read_session(env.db) as con:
        for schema, table in history_views(con):
            rows = con.execute(f"SELECT connection_id, CAST(id AS VARCHAR), _valid_from FROM {schema}.{table}_history "
                               "WHERE _change <> 'late'").fetchall()
            out |= {(table, conn, rid, at) for conn, rid, at in rows}
    return out


def _feed(env: Env, since: int = 0) -> list[dict[str, Any]]:
    with read_session(env.db) as con:
        return read_changes(con, since=since)


def _webhooks(env: Env, sandbox: Any, web: str) -> None:
    httpx.put(f"{sandbox.info['control_url']}/webhooks",
              json={"url": f"{web}/webhooks/checkr", "provider": "checkr"}).raise_for_status()


def _settled(env: Env) -> bool:
    return not env.store.events(status="pending", integration="checkr")


@pytest.mark.both_backends
def test_every_change_source_is_in_the_feed_once(env: Env, fresh_sandbox: Any) -> None:
    from common.asgi_thread import serve_in_thread
    from connections.web.app import create_app
    from flows.webhook_applier import WebhookApplier

    sandbox = fresh_sandbox(scale=20, open_reports={"checkr": 6})
    account = env.connect(sandbox, "checkr", "c1")
    assert all(r.ok for r in env.sync_all("checkr", "c1"))  # list sync: added
    open_ids = [r[0] for r in env.rows("SELECT id FROM checkr.reports WHERE status NOT IN ('complete', 'canceled') "
                                       "ORDER BY id")]
    assert len(open_ids) >= 3
    victim = next(p["id"] for p in sandbox.export("checkr", account)[account]["packages"])
    sandbox.remove("checkr", "package", victim)
    sandbox.remove("checkr", "report", open_ids[0])
    with serve_in_thread(create_app(env.store, applier=WebhookApplier(env.store, env.db))) as web:
        _webhooks(env, sandbox, web)
        sandbox.advance(days=1)  # some reports move: delivered as signed webhooks
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (env.store.events(integration="checkr") and _settled(env)):
            time.sleep(0.2)
    assert env.sync("checkr", "c1", "packages").deleted == 1  # full-sync delete
    sandbox.advance(days=5)  # the rest complete, without webhooks now (the app is gone)
    env.hours_pass(2)  # and the open reports are due for their re-poll
    repoll = env.sync("checkr", "c1", "reports")  # re-poll: updates, and a 404 marks one gone
    assert repoll.gone == 1 and repoll.updated >= 1

    feed = _feed(env)
    _assert_in_feed_order(env, [c["cursor"] for c in feed])
    kinds = {(c["table"], c["action"], "webhook" if c["run_id"].startswith("webhook:") else "run") for c in feed}
    assert {("candidates", "added", "run"), ("reports", "added", "run"), ("packages", "added", "run"),
            ("packages", "deleted", "run"), ("reports", "gone", "run"), ("reports", "updated", "run"),
            ("reports", "updated", "webhook")} <= kinds, kinds
    assert next(c for c in feed if c["action"] == "gone")["record_id"] == open_ids[0]
    assert next(c for c in feed if c["action"] == "deleted")["record_id"] == victim
    # one cursor per version the warehouse took, each carrying that version's record
    assert {(c["table"], c["connection_id"], c["record_id"], c["changed_at"]) for c in feed} == _versions(env)
    assert len(feed) == len(_versions(env)) and all(c["record"] for c in feed)


def _cli(env: Env, *args: str) -> list[dict[str, Any]]:
    import os

    out = subprocess.run([sys.executable, "-m", "screensync", "changes", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "SCREENSYNC_WAREHOUSE": str(env.db)}, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_a_consumer_reading_during_syncs_and_webhooks_sees_each_change_once_and_resumes(
    env: Env, fresh_sandbox: Any, tmp_path: Path
) -> None:
    from common.asgi_thread import serve_in_thread
    from connections.web.app import create_app
    from flows.webhook_applier import WebhookApplier

    sandbox = fresh_sandbox(scale=60, open_reports={"checkr": 20})
    env.connect(sandbox, "checkr", "c1")
    seen: list[int] = []
    stored = tmp_path / "consumer.cursor"  # what a consumer keeps between restarts
    stop = threading.Event()

    def consume() -> None:
        while True:
            last = int(stored.read_text()) if stored.exists() else 0  # a fresh consumer each round: a restart
            try:
                batch = [c["cursor"] for c in _feed(env, since=last)[:25]]
            except (WarehouseError, duckdb.CatalogException):  # no file yet, or held past the timeout
                batch = []
            seen.extend(batch)
            if batch:
                stored.write_text(str(batch[-1]))
            elif stop.is_set():
                return
            time.sleep(0.05)

    reader = threading.Thread(target=consume)
    with serve_in_thread(create_app(env.store, applier=WebhookApplier(env.store, env.db))) as web:
        reader.start()
        try:
            assert all(r.ok for r in env.sync_all("checkr", "c1"))
            _webhooks(env, sandbox, web)
            for _ in range(3):
                sandbox.advance(hours=12)  # webhooks land while the re-poll writes too
                env.hours_pass(2)  # (open reports due for it)
                assert env.sync("checkr", "c1", "reports").ok
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not _settled(env):
                time.sleep(0.2)
        finally:
            stop.set()
            reader.join(timeout=60)
    feed = _feed(env)
    assert any(c["run_id"].startswith("webhook:") for c in feed), "no webhook landed during the run"
    assert seen == [c["cursor"] for c in feed]  # all of them, no repeat, in order
    _assert_in_feed_order(env, seen)
    # the CLI resumes the same way: two invocations split at a stored cursor give the whole feed once
    head = _cli(env, "--limit", "7")
    rest = _cli(env, "--since", str(head[-1]["cursor"]))
    assert [c["cursor"] for c in head + rest] == seen
    assert {c["record_id"] for c in head + rest} == {c["record_id"] for c in feed}
    reports = _cli(env, "--table", "reports", "--connection", "c1", "--integration", "checkr", "--limit", "3")
    assert len(reports) == 3 and {c["table"] for c in reports} == {"reports"} and reports[0]["record"]["id"]


@pytest.mark.parametrize("before", [5])
def test_prune_from_the_cli_keeps_later_changes(env: Env, fresh_sandbox: Any, before: int) -> None:
    import os

    sandbox = fresh_sandbox(scale=20)
    env.connect(sandbox, "checkr", "c1")
    assert env.sync("checkr", "c1", "packages").ok
    total = len(_feed(env))
    out = subprocess.run([sys.executable, "-m", "screensync", "changes", "prune", "--before", str(before)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True,
                         env={**os.environ, "SCREENSYNC_WAREHOUSE": str(env.db)})
    assert f"pruned {before - 1} change(s)" in out.stdout
    assert [c["cursor"] for c in _cli(env)] == list(range(before, total + 1))


def test_records_fetched_again_by_id_are_in_the_feed_landed_or_gone(env: Env, hostile: Any) -> None:
    """The refetch path: an owed (quarantined) record that lands by id, and one the provider answers 404 for."""
    from tests.engine.hostile_provider import CONN

    assert env.sync("checkr", CONN, "candidates").ok
    landed = _feed(env)[-1]["cursor"]
    hostile.faults.missing_created_every = 7  # a full re-read quarantines every 7th candidate: owed
    hostile.faults.epoch_id = "cand_0299"
    assert env.sync("checkr", CONN, "candidates", full_refresh=True).status.value == "partial"
    hostile.faults.missing_created_every = None  # the provider is fixed...
    hostile.faults.epoch_id = None
    hostile.n_candidates = 299  # ...and cand_0299 is gone from it: its refetch answers 404
    fixed = env.sync("checkr", CONN, "candidates")
    assert fixed.ok and fixed.refetched >= 1 and fixed.gone == 1

    refetch = _feed(env, since=landed)
    gone = [c for c in refetch if c["action"] == "gone"]
    assert [c["record_id"] for c in gone] == ["cand_0299"] and gone[0]["run_id"] == fixed.run_id
    _assert_in_feed_order(env, [c["cursor"] for c in refetch], first=landed + 1)
    # a refetched record that changed since it was stored (it was ahead of the list) gets `updated`
    assert all(c["run_id"] == fixed.run_id and c["action"] in ("updated", "gone") for c in refetch)
    assert {(c["table"], c["connection_id"], c["record_id"], c["changed_at"]) for c in _feed(env)} == _versions(env)


def test_a_referenced_record_and_a_webhook_soft_delete_are_in_the_feed(env: Env, fresh_sandbox: Any) -> None:
    """Two more sources: a record fetched by id because another named it, and a webhook whose record
    says it was deleted (`deleted_field`: Checkr's `invitation.deleted`)."""
    import orjson

    from integrations.engine.webhook_sink import event_records
    from warehouse.loader import Warehouse
    from warehouse.records import ObjectWrite

    sandbox = fresh_sandbox(scale=20)
    account = env.connect(sandbox, "checkr", "c1")
    assert env.sync("checkr", "c1", "invitations").ok  # completed invitations name candidates not stored yet
    before = len(_feed(env))
    ((inv_id, raw),) = env.rows("SELECT id, _raw FROM checkr.invitations ORDER BY id LIMIT 1")
    cancelled = {**orjson.loads(raw), "status": "expired", "deleted_at": sandbox.clock.now().isoformat()}
    sandbox.advance(seconds=30)
    event = {"id": "evt_del", "type": "invitation.deleted", "account_id": account,
             "created_at": sandbox.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"), "data": {"object": cancelled}}
    records, rejects = event_records("checkr", event, default_time=sandbox.clock.now())
    assert records and not rejects
    with Warehouse(env.db) as wh:
        wh.write_objects([ObjectWrite("checkr", "c1", records, run_id="webhook:evt_del")])

    feed = _feed(env)
    referenced = [c for c in feed[:before] if c["table"] == "candidates"]
    assert referenced and all(c["action"] == "added" for c in referenced)  # fetched by id: the references
    assert [(c["table"], c["record_id"], c["action"], c["run_id"]) for c in feed[before:]] == [
        ("invitations", inv_id, "deleted", "webhook:evt_del")]
    assert feed[-1]["record"] and orjson.loads(feed[-1]["record"])["deleted_at"]
    assert len(feed) == len(_versions(env))  # the version the webhook landed is the deletion: one change


def test_changes_follow_prints_new_changes_as_they_land_and_resumes_from_a_cursor(
    env: Env, fresh_sandbox: Any
) -> None:
    """`screensync changes --follow` in a subprocess: lines for what is there, then for what lands while it
    follows; stopped and started again with the last cursor it printed, it goes on from there."""
    import os

    sandbox = fresh_sandbox(scale=20, open_reports={"checkr": 4})
    env.connect(sandbox, "checkr", "c1")
    assert env.sync("checkr", "c1", "packages").ok
    cli_env = {**os.environ, "SCREENSYNC_WAREHOUSE": str(env.db), "PYTHONUNBUFFERED": "1"}
    follow = subprocess.Popen(
        [sys.executable, "-m", "screensync", "changes", "--follow", "--interval", "0.2", "--table", "candidates"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env)
    lines: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: lines.extend(json.loads(x) for x in follow.stdout or []), daemon=True)
    reader.start()
    try:
        time.sleep(3)  # following, nothing to print yet (only packages so far)
        assert lines == [] and follow.poll() is None
        assert env.sync("checkr", "c1", "candidates").ok  # lands while it follows
        want = [c["cursor"] for c in _feed(env) if c["table"] == "candidates"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(lines) < len(want):
            time.sleep(0.2)
        assert [c["cursor"] for c in lines] == want and follow.poll() is None
    finally:
        follow.terminate()
        follow.wait(timeout=30)
    last = lines[-1]["cursor"]
    env.hours_pass(1)
    sandbox.advance(days=5)  # open reports complete: the re-poll writes
    assert env.sync("checkr", "c1", "reports").updated >= 1
    resumed = subprocess.run(
        [sys.executable, "-m", "screensync", "changes", "--follow", "--since", str(last), "--idle-exit", "1",
         "--interval", "0.2"], cwd=ROOT, capture_output=True, text=True, timeout=120, env=cli_env, check=True)
    rest = [json.loads(x) for x in resumed.stdout.splitlines()]
    assert rest and [c["cursor"] for c in rest] == [c["cursor"] for c in _feed(env, since=last)]
    assert any(c["table"] == "reports" and c["action"] == "updated" for c in rest)  # the re-poll's
