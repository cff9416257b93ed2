"""The DuckLake backend behind `SCREENSYNC_WAREHOUSE=ducklake:postgres://...`: the same syncs land the
same rows as in the embedded file; concurrent syncs of different connections from several processes
lose and double nothing (conflicting commits are retried whole); analysts read while a writer holds
a transaction; the change feed's cursors stay unique and in commit order with concurrent writers.

Real parts throughout: a throwaway PostgreSQL catalog (tests/support/postgres.py), the sandbox
providers over loopback HTTP, the engine, the CLI in subprocesses.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from cryptography.fernet import Fernet

from tests.engine.conftest import Env, without
from tests.support.warehouse_target import lake_url
from tests.warehouse.lake_fixtures import fresh_lake_sessions  # noqa: F401 (a fixture)
from tests.warehouse.whelpers import REPORTS, batch, page, rec
from warehouse import ducklake, retry
from warehouse.changes import read_changes
from warehouse.loader import Warehouse, WarehouseConflict
from warehouse.read import query, read_session

if TYPE_CHECKING:
    from tests.support.postgres import PgDatabase

ROOT = Path(__file__).resolve().parents[2]
# what differs between two syncs of the same data: when they ran, and which run it was
VOLATILE = {"_first_seen_at", "_last_modified_at", "_deleted_at", "_run_id", "_observed_at", "_valid_from",
            "_valid_to", "_recheck_at", "rejected_at", "run_id", "updated_at", "started_at", "finished_at",
            "duration_s", "attempt_id", "changed_at", "cursor", "_screensync_at"}


@pytest.fixture
def url(postgres_db: PgDatabase, tmp_path: Path) -> str:
    return lake_url(postgres_db, tmp_path / "lake")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from connections.store import open_store

    monkeypatch.setenv("SCREENSYNC_CONNECTIONS", str(tmp_path / "connections.sqlite"))
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY", Fernet.generate_key().decode())
    return open_store()


def _tables(env: Env, schema: str) -> list[str]:
    rows = env.rows("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                    f"AND schema_name = '{schema}' ORDER BY 1")
    return [r[0] for r in rows]


def _stable_rows(env: Env, schema: str, table: str) -> list[tuple[Any, ...]]:
    cols = env.rows(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
        f"AND schema_name = '{schema}' AND table_name = '{table}' ORDER BY column_index")
    keep = ", ".join(f'CAST("{c}" AS VARCHAR)' for c, kind in cols  # our own timestamps: when it ran
                     if c not in VOLATILE and not (c.startswith("_") and kind.startswith("TIMESTAMP")))
    cols = [c for c, _ in cols]
    extra = ", _deleted_at IS NULL" if "_deleted_at" in cols else ""
    return env.rows(f'SELECT {keep}{extra} FROM "{schema}"."{table}" ORDER BY ALL')


def test_a_sandbox_sync_lands_in_a_lake_exactly_as_in_a_file_resumed_run_included(
    store: Any, url: str, tmp_path: Path, fresh_sandbox: Any
) -> None:
    from integrations.engine.retries import RetryPolicy
    from tests.engine.test_sync_reliability import set_faults

    sandbox = fresh_sandbox(scale=120, rate_limits={"clearchecks": 6000})
    file_env, lake_env = Env(store=store, db=tmp_path / "wh.duckdb"), Env(store=store, db=url)  # type: ignore[arg-type]
    file_env.connect(sandbox, "clearchecks", "cc-1")
    fast = RetryPolicy(base_delay=0.01, max_delay=0.05)
    set_faults(sandbox, "clearchecks", malformed_page=2)
    for env in (file_env, lake_env):  # page 1 lands with its checkpoint, page 2 fails the run
        failed = env.sync("clearchecks", "cc-1", "reports", retry=fast)
        assert failed.status.value == "failed" and failed.pages == 1, failed.error
        (checkpoint,) = env.rows("SELECT checkpoint FROM _screensync.sync_state WHERE sync = 'reports'")
        assert checkpoint[0] is not None
    set_faults(sandbox, "clearchecks")
    for env in (file_env, lake_env):
        resumed = env.sync("clearchecks", "cc-1", "reports")
        assert resumed.ok and resumed.resumed, resumed.error
        results = env.sync_all("clearchecks", "cc-1")
        assert all(r.ok for r in results), [(r.sync, r.error) for r in results]

    tables = _tables(file_env, "clearchecks")
    assert tables == _tables(lake_env, "clearchecks") and "reports" in tables
    for table in tables:
        want = _stable_rows(file_env, "clearchecks", table)
        assert _stable_rows(lake_env, "clearchecks", table) == want, f"clearchecks.{table} differs"
    for table in ("sync_state", "rejected_records", "seen_keys", "owed_records"):
        assert _stable_rows(lake_env, "_screensync", table) == _stable_rows(file_env, "_screensync", table), table
    for sql in ("SELECT count(*) FROM clearchecks.reports_history",
                "SELECT action, count(*) FROM _screensync.changes GROUP BY ALL ORDER BY ALL",
                "SELECT sync, status, added, updated, deleted, rejected FROM _screensync.sync_runs ORDER BY ALL",
                "SELECT count(*) FROM unified.background_checks"):
        assert lake_env.rows(sql) == file_env.rows(sql), sql


def _cli(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "screensync", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_three_processes_sync_different_connections_into_one_lake_losing_and_doubling_nothing(
    store: Any, url: str, fresh_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from screensync.status import read_sync_runs
    from screensync.warehouse_cli import migrate_command
    from tests.warehouse.lake_workers import sync_connection

    sandbox = fresh_sandbox(scale=20)
    env = Env(store=store, db=url)  # type: ignore[arg-type]
    accounts = {f"cust-{n}": env.connect(sandbox, "checkr", f"cust-{n}", account=n) for n in range(3)}
    monkeypatch.setenv("SCREENSYNC_WAREHOUSE", url)
    migrate_command(wait=30)  # DDL once, before the writers
    lake = ducklake.connect(url)
    try:
        (migrated,) = lake.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('lake')").fetchone() or (0,)
    finally:
        lake.close()
    syncs = {"candidates": "candidates", "reports": "reports"}
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(accounts)), ctx.Queue()
    procs = [ctx.Process(target=sync_connection, args=(url, "checkr", cid, list(syncs), barrier, results))
             for cid in accounts]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert outcomes == {cid: [(s, "success", None) for s in syncs] for cid in accounts}  # every run completed

    for cid, account_id in accounts.items():
        truth = sandbox.export("checkr")[account_id]
        for table, key in syncs.items():
            expected = {str(r["id"]): without(r, "reports") for r in truth[key]}
            assert env.raws("checkr", table, cid) == expected, f"checkr.{table} of {cid}: records differ"
    for table in syncs:
        (total, distinct, versions, feed) = env.rows(
            f"""SELECT count(*), count(DISTINCT (connection_id, id)),
                       (SELECT count(*) FROM checkr.{table}_history),
                       (SELECT count(*) FROM _screensync.changes WHERE "table" = '{table}')
                FROM checkr.{table}""")[0]
        assert total == distinct == versions == feed > 0, (table, total, distinct, versions, feed)
    assert env.rows("SELECT count(*) FROM _screensync.sync_state WHERE checkpoint IS NOT NULL") == [(0,)]
    lake = ducklake.connect(url)
    try:  # the writers created and altered nothing: every commit after the migration wrote rows only
        kinds = lake.execute("SELECT DISTINCT unnest(map_keys(changes)) FROM ducklake_snapshots('lake') "
                             "WHERE snapshot_id > ?", [migrated]).fetchall()
    finally:
        lake.close()
    ddl = ("created", "altered", "dropped", "renamed", "comment")
    assert kinds and not [k for (k,) in kinds if any(word in k for word in ddl)], kinds
    runs = read_sync_runs(url, timeout=10)  # what `screensync status` reads
    assert sorted((c, s, r["last_run_status"]) for (_, c, s), r in runs.items()) == [
        (cid, s, "success") for cid in accounts for s in sorted(syncs)]


@pytest.mark.slow
def test_an_analyst_reads_while_a_writer_holds_a_transaction(url: str, tmp_path: Path) -> None:
    wh = Warehouse(url)
    wh.ensure_tables([REPORTS])
    wh.write_page(page([batch([rec("r1")])]))
    child = {**os.environ, "SCREENSYNC_WAREHOUSE": url, "HOME": str(tmp_path)}
    with wh.transaction() as con:
        wh._write_page(con, page([batch([rec("r2")])]))  # uncommitted until the block ends
        assert query("SELECT id FROM checkr.reports ORDER BY id", path=url) == [("r1",)]
        cli = _cli(["query", "SELECT string_agg(id, '+' ORDER BY id) AS ids FROM checkr.reports"], child)
        assert cli.returncode == 0 and "r1" in cli.stdout and "r2" not in cli.stdout, cli.stdout + cli.stderr
    assert query("SELECT id FROM checkr.reports ORDER BY id", path=url) == [("r1",), ("r2",)]
    feed = _cli(["changes", "--since", "0"], child)  # the change feed's CLI on the lake
    lines = [json.loads(line) for line in feed.stdout.splitlines()]
    assert feed.returncode == 0 and [(c["record_id"], c["action"]) for c in lines] == [("r1", "added"), ("r2", "added")]
    assert lines[0]["cursor"] < lines[1]["cursor"] and lines[1]["record"]["id"] == "r2"
    # the reader is confined as on the file: no files, no other database
    with pytest.raises(duckdb.Error, match=r"disabled|Permission"):
        query("SELECT * FROM read_text('/etc/hostname')", path=url)


@pytest.mark.slow
def test_change_feed_cursors_stay_unique_and_in_commit_order_with_concurrent_writers(url: str) -> None:
    writers, pages, rows = 3, 4, 3
    Warehouse(url).ensure_tables([REPORTS])
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(writers), ctx.Queue()
    from tests.warehouse.lake_workers import write_new_reports

    procs = [ctx.Process(target=write_new_reports, args=(url, f"w{n}", pages, rows, barrier, results))
             for n in range(writers)]
    for p in procs:
        p.start()
    seen: list[tuple[int, str, str]] = []
    cursor, reports = 0, []

    def consume() -> None:  # a consumer resuming from the cursor it stored, as `screensync changes` does
        nonlocal cursor
        with read_session(url) as con:
            batch_ = read_changes(con, since=cursor, limit=7)
        for change in batch_:
            seen.append((int(change["cursor"]), change["connection_id"], change["record_id"]))
        if batch_:
            cursor = seen[-1][0]

    while len(reports) < writers:
        consume()
        time.sleep(0.1)
        while not results.empty():
            reports.append(results.get())
    for p in procs:
        p.join(timeout=60)
    for _ in range(writers * pages * rows):  # the rest, after every writer committed
        before = len(seen)
        consume()
        if len(seen) == before:
            break
    assert all(error is None and done == pages for _, done, error in reports), reports
    cursors = [c for c, _, _ in seen]
    assert cursors == sorted(set(cursors)), "a cursor repeated or went back"
    keys = [(conn, rid) for _, conn, rid in seen]
    expected = {(f"w{n}", f"w{n}-{p}-{i}") for n in range(writers) for p in range(pages) for i in range(rows)}
    assert len(keys) == len(set(keys)) and set(keys) == expected  # each change once, none missing


def test_a_conflicting_commit_is_retried_whole_and_a_lasting_one_fails_naming_no_data(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = Warehouse(url)
    wh.ensure_tables([REPORTS])
    wh.write_page(page([batch([rec("r1")])], conn="a"))
    other = ducklake.connect(url)
    attempts = []

    def update_with_a_rival_commit(con: duckdb.DuckDBPyConnection) -> int:
        attempts.append(1)
        con.execute("UPDATE checkr.reports SET result = 'mine' WHERE id = 'r1'")
        if len(attempts) == 1:  # another writer changes the table before this one commits
            other.execute("UPDATE checkr.reports SET status = 'complete' WHERE id = 'r1'")
        return len(attempts)

    try:
        assert wh.write(update_with_a_rival_commit, what="a test update") == 2
        assert query("SELECT status, result FROM checkr.reports", path=url) == [("complete", "mine")]

        monkeypatch.setattr(retry, "MAX_ATTEMPTS", 1)
        attempts.clear()
        secret = "someone@example.com"

        def lose_every_time(con: duckdb.DuckDBPyConnection) -> None:
            attempts.append(1)
            con.execute(f"INSERT INTO checkr.reports (id, connection_id, candidate_id) VALUES ('r9', 'a', '{secret}')")
            other.execute("DELETE FROM checkr.reports WHERE id = 'r1'")

        with pytest.raises(WarehouseConflict) as failed:
            wh.write(lose_every_time, what="a doomed write")
    finally:
        other.close()
    message = str(failed.value)
    assert "a doomed write" in message and "1 attempts" in message and secret not in message
    assert len(message.splitlines()) <= 2
    assert query("SELECT count(*) FROM checkr.reports WHERE id = 'r9'", path=url) == [(0,)]  # nothing of it


def test_a_run_whose_writes_keep_conflicting_fails_with_its_checkpoint_kept_and_the_next_resumes(
    store: Any, url: str, fresh_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrations.engine.retries import RetryPolicy
    from tests.engine.test_sync_reliability import set_faults

    sandbox = fresh_sandbox(scale=120, rate_limits={"clearchecks": 6000})
    env = Env(store=store, db=url)  # type: ignore[arg-type]
    account_id = env.connect(sandbox, "clearchecks", "cc-1")
    set_faults(sandbox, "clearchecks", malformed_page=2)  # page 1 and its checkpoint land, then it stops
    assert env.sync("clearchecks", "cc-1", "reports", retry=RetryPolicy(base_delay=0.01, max_delay=0.05)).pages == 1
    set_faults(sandbox, "clearchecks")
    checkpoint = env.rows("SELECT checkpoint::VARCHAR FROM _screensync.sync_state WHERE sync = 'reports'")
    stored = env.rows("SELECT count(*) FROM clearchecks.reports")

    rival = ducklake.connect(url)  # another writer that commits a delete in the table before every page does
    rival.execute("INSERT INTO clearchecks.reports (connection_id, report_key) VALUES ('rival', 'r')")
    original = Warehouse._write_page

    def contested(self: Warehouse, con: duckdb.DuckDBPyConnection, page_: Any) -> Any:
        counts = original(self, con, page_)
        rival.execute("DELETE FROM clearchecks.reports WHERE connection_id = 'rival'")
        rival.execute("INSERT INTO clearchecks.reports (connection_id, report_key) VALUES ('rival', 'r')")
        return counts

    monkeypatch.setattr(Warehouse, "_write_page", contested)
    monkeypatch.setattr(retry, "MAX_ATTEMPTS", 3)
    try:
        failed = env.sync("clearchecks", "cc-1", "reports")
    finally:
        rival.execute("DELETE FROM clearchecks.reports WHERE connection_id = 'rival'")
        rival.close()
    assert failed.status.value == "failed" and "conflicted with other writers" in (failed.error or ""), failed.error
    assert env.rows("SELECT checkpoint::VARCHAR FROM _screensync.sync_state WHERE sync = 'reports'") == checkpoint
    assert env.rows("SELECT count(*) FROM clearchecks.reports") == stored  # nothing of the lost writes

    monkeypatch.setattr(Warehouse, "_write_page", original)
    resumed = env.sync("clearchecks", "cc-1", "reports")
    assert resumed.ok and resumed.resumed, resumed.error
    truth = {r["report_key"] for r in sandbox.export("clearchecks")[account_id]["reports"]}
    assert set(env.raws("clearchecks", "reports", "cc-1")) == truth
    assert env.rows("SELECT count(*) = count(DISTINCT report_key) FROM clearchecks.reports") == [(True,)]


def test_short_error_keeps_two_lines() -> None:
    text = "TransactionContext Error: Failed to commit\nTransaction conflict - x\nINSERT ... 'a@b.c' ..."
    assert retry.short_error(text) == "TransactionContext Error: Failed to commit\nTransaction conflict - x [...]"


def test_a_bad_lake_url_fails_naming_the_part(tmp_path: Path) -> None:
    with pytest.raises(ducklake.DuckLakeURLError, match="password"):
        Warehouse("ducklake:postgres://u:pw@localhost/db?data=/tmp/x")


def test_the_setting_is_a_path_or_a_url_and_only_a_path_is_a_file(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    from common import settings

    url = "ducklake:postgres://u@db.internal:5432/lake?data=/srv/lake"
    monkeypatch.setenv("SCREENSYNC_WAREHOUSE", url)
    assert settings.warehouse_setting() == url  # as given: Path() would turn its // into /
    with pytest.raises(ValueError, match="DuckLake URL, not a file"):
        settings.warehouse_path()
    anchor = settings.local_lock_anchor()
    assert anchor.parent == Path.home() / ".screensync" and anchor.name.startswith("lake-")
    monkeypatch.setenv("SCREENSYNC_WAREHOUSE", str(tmp_path / "w.duckdb"))
    assert settings.warehouse_path() == tmp_path / "w.duckdb" == settings.local_lock_anchor()
