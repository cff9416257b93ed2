"""DuckLake (catalog in a throwaway PostgreSQL, data in a directory or a local S3) with our shapes.

What the future DuckLake backend can rely on, proven against the real extensions loaded offline:
the warehouse's own DDL, upsert, history, state, rejects, soft-delete and view SQL run unchanged;
a page and its checkpoint commit atomically across tables; concurrent appends from several
processes all commit; and which statements DuckLake refuses, with the errors it gives. The
conflict behaviour of concurrent UPDATEs is pinned here exactly (which pairs of writes conflict,
the exception class and its text), since the real backend must retry precisely that.
docs/scale-out-notes.md has the figures; bench/ducklake_commits.py measures them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import orjson
import pytest

from tests.support.asgi_server import free_port
from tests.support.warehouse_target import lake_url
from tests.warehouse import ducklake_shapes as shapes
from warehouse import ducklake
from warehouse import state as st
from warehouse.deletes import soft_delete_unseen
from warehouse.records import RejectedRecord
from warehouse.tables import ensure_model_tables, table_ref
from warehouse.views import ViewPart, create_views

if TYPE_CHECKING:
    from tests.support.postgres import PgDatabase, ThrowawayPostgres


@pytest.fixture
def url(postgres_db: PgDatabase, tmp_path: Path) -> str:
    return lake_url(postgres_db, tmp_path / "lake")


@pytest.fixture
def con(url: str) -> Iterator[duckdb.DuckDBPyConnection]:
    c = ducklake.connect(url)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def shared_lake(postgres_server: ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One DuckLake for the tests of single statements (each in a schema of its own): a new catalog
    per test costs about half a second."""
    db = postgres_server.create_database()
    try:
        yield lake_url(db, tmp_path_factory.mktemp("shared-lake"))
    finally:
        postgres_server.drop_database(db.name)


@pytest.fixture(scope="module")
def shared_cons(shared_lake: str) -> Iterator[tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]]:
    first, second = ducklake.connect(shared_lake), ducklake.connect(shared_lake)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


@pytest.fixture
def scratch(
    shared_cons: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection],
) -> Iterator[tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]]:
    """Both shared connections, USEing a new empty schema."""
    schema = f"s_{uuid.uuid4().hex[:10]}"
    first, second = shared_cons
    first.execute(f"CREATE SCHEMA {schema}")
    for c in shared_cons:
        c.execute(f"USE {ducklake.ALIAS}.{schema}")
    try:
        yield first, second
    finally:
        for c in shared_cons:  # a test that failed half-way may have left a transaction open
            with contextlib.suppress(duckdb.TransactionException):
                c.execute("ROLLBACK")


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


# -- opening it ------------------------------------------------------------------------------


def test_extensions_load_from_the_packages_files_offline(con: duckdb.DuckDBPyConnection) -> None:
    loaded = dict(
        con.execute(
            "SELECT extension_name, install_mode FROM duckdb_extensions() WHERE loaded AND install_mode = 'NOT_INSTALLED'"
        ).fetchall()
    )
    assert {"ducklake", "postgres_scanner"} <= set(loaded)  # LOADed from a file, never INSTALLed
    settings = dict(con.execute(
        "SELECT name, value FROM duckdb_settings() WHERE name LIKE 'auto%_known_extensions'"
    ).fetchall())
    assert settings == {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    assert con.execute("SELECT current_database()").fetchone() == (ducklake.ALIAS,)
    for name in ("ducklake", "postgres_scanner", "httpfs"):
        path = ducklake.extension_path(name)
        assert path.name == f"{name}.duckdb_extension" and f"v{duckdb.__version__}" in str(path)


def test_url_names_the_catalog_data_and_options() -> None:
    target = ducklake.parse_url(
        "ducklake:postgres://sync@pg.internal:6543/lake?data=s3://bucket/wh&inline=500"
        "&s3_endpoint=127.0.0.1:9000&s3_url_style=path&s3_use_ssl=false&sslmode=require"
    )
    assert target.libpq == "host=pg.internal port=6543 dbname=lake user=sync sslmode=require"
    assert target.data_path == "s3://bucket/wh/" and target.inline_rows == 500
    assert target.s3 == ducklake.S3Settings(endpoint="127.0.0.1:9000", url_style="path", use_ssl=False)
    local = ducklake.parse_url("ducklake:postgresql://db.example/wh?data=%2Fsrv%2Flake")
    assert (local.port, local.user, local.data_path, local.s3) == (5432, None, "/srv/lake/", None)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ducklake:postgres://u:hunter2@h/db?data=/x", "must not carry a password"),
        ("ducklake:postgres://u@h/db", "needs data="),
        ("ducklake:postgres://u@h/db?data=relative/dir", "must be an absolute directory"),
        ("ducklake:postgres://u@h/db?data=s3://", "names no bucket"),
        ("ducklake:postgres://u@h/db?data=/x&colour=blue", "unknown option(s) in the warehouse URL: ['colour']"),
        ("ducklake:sqlite:/tmp/cat.sqlite?data=/x", "does not take several writers"),
        ("ducklake:postgres://u@h/?data=/x", "names no PostgreSQL database"),
        ("postgres://u@h/db?data=/x", "must start with 'ducklake:'"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ducklake.DuckLakeURLError) as err:
        ducklake.parse_url(url)
    assert says in str(err.value)
    assert "hunter2" not in str(err.value)


def test_second_attach_must_name_the_same_data_path(url: str, con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    elsewhere = url.replace(str(tmp_path / "lake"), str(tmp_path / "other"))
    with pytest.raises(duckdb.Error, match="does not match existing data path in the catalog"):
        ducklake.connect(elsewhere)


# -- our DDL and writes ----------------------------------------------------------------------


def test_model_tables_get_our_column_types(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    shapes.setup(con, versions=False)
    local = duckdb.connect(str(tmp_path / "wh.duckdb"))
    local.execute("BEGIN TRANSACTION")
    ensure_model_tables(local, shapes.CHECKS)
    local.execute("COMMIT")
    sql = ("SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
           "AND schema_name = 'spike' ORDER BY table_name, column_index")
    on_lake = con.execute(sql).fetchall()
    assert on_lake == local.execute(sql).fetchall()
    types = {name: dtype for table, name, dtype in on_lake if table == "checks"}
    assert types["amount"] == "DECIMAL(18,4)" and types["tags"] == "VARCHAR[]" and types["ids"] == "BIGINT[]"
    assert types["meta"] == types["_raw"] == "JSON" and types["_synced_at"] == "TIMESTAMP WITH TIME ZONE"
    kinds = dict(con.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'spike' "
        "AND table_catalog = current_database()"
    ).fetchall())
    assert kinds == {"checks": "BASE TABLE", "checks_superseded": "BASE TABLE", "checks_history": "VIEW"}
    # evolution adds a column (and rewrites the view) the same way
    con.execute("BEGIN TRANSACTION")
    con.execute(f"ALTER TABLE {table_ref(shapes.CHECKS)} ADD COLUMN IF NOT EXISTS later VARCHAR")
    con.execute("COMMIT")
    assert "later" in {r[1] for r in con.execute(sql).fetchall()}


def test_page_and_checkpoint_commit_together_and_history_follows(con: duckdb.DuckDBPyConnection) -> None:
    shapes.setup(con)
    st.begin_attempt(con, shapes.INTEGRATION, "conn-a", shapes.SYNC)
    attempt = st.get_state(con, shapes.INTEGRATION, "conn-a", shapes.SYNC)
    assert attempt is not None and attempt.attempt_id
    reject = RejectedRecord("checks", "chk-bad", "status: not a status", '{"id": "chk-bad"}')
    first = shapes.page_transaction(con, shapes.stage(range(10), 0), connection_id="conn-a", run_id="r1",
                                    attempt_id=attempt.attempt_id, checkpoint={"page": 1}, append_only_state=False,
                                    rejects=[reject])
    assert (first.added, first.updated) == (10, 0)
    second = shapes.page_transaction(con, shapes.stage(range(5, 15), 1), connection_id="conn-a", run_id="r2",
                                     attempt_id=attempt.attempt_id, checkpoint={"page": 2}, append_only_state=False)
    assert (second.added, second.updated) == (5, 5)
    main, superseded = table_ref(shapes.CHECKS), table_ref(shapes.CHECKS, "_superseded")
    assert _count(con, f"SELECT count(*) FROM {main}") == 15
    assert _count(con, f"SELECT count(*) FROM {superseded} WHERE _change = 'insert'") == 5
    assert con.execute(f"SELECT meta->>'$.version', tags FROM {main} WHERE id = 'chk-00007'").fetchone() == (
        "1", ["a", "v1"])
    state = st.get_state(con, shapes.INTEGRATION, "conn-a", shapes.SYNC)
    assert state is not None and state.checkpoint == {"page": 2}
    assert _count(con, "SELECT count(*) FROM _screensync.owed_records WHERE record_id = 'chk-bad'") == 1

    # a page that fails half-way leaves nothing behind, in any table
    con.execute("BEGIN TRANSACTION")
    st.save_position(con, shapes.INTEGRATION, "conn-a", shapes.SYNC, checkpoint={"page": 99}, cursor=None,
                     attempt_id=attempt.attempt_id)
    con.execute(f"UPDATE {main} SET status = 'complete'")
    con.execute("ROLLBACK")
    state = st.get_state(con, shapes.INTEGRATION, "conn-a", shapes.SYNC)
    assert state is not None and state.checkpoint == {"page": 2}
    assert _count(con, f"SELECT count(*) FROM {main} WHERE status = 'complete'") == 10

    # the end of a full attempt: unseen rows soft-deleted (temp table inside the lake transaction)
    con.execute("BEGIN TRANSACTION")
    con.execute("DELETE FROM _screensync.seen_keys WHERE id IN ('chk-00000', 'chk-00001')")
    deleted = soft_delete_unseen(con, shapes.CHECKS, connection_id="conn-a", attempt_id=attempt.attempt_id,
                                 run_id="r3")
    st.finish_attempt(con, shapes.INTEGRATION, "conn-a", shapes.SYNC, attempt.attempt_id)
    con.execute("COMMIT")
    assert deleted == 2
    history = dict(con.execute(
        f"SELECT _change, count(*) FROM {table_ref(shapes.CHECKS, '_history')} GROUP BY 1").fetchall())
    assert history == {"insert": 5 + 2 + 8, "update": 5, "delete": 2}
    st.record_run(con, st.RunRecord(run_id="r3", integration=shapes.INTEGRATION, connection_id="conn-a",
                                    sync=shapes.SYNC, model="checks", mode="full", status=st.RunStatus.SUCCESS,
                                    started_at="2024-05-01T10:00:00Z"))
    assert _count(con, "SELECT count(*) FROM _screensync.sync_runs WHERE status = 'success'") == 1


def test_unified_views_union_parts_and_read_through_a_read_only_attach(
    url: str, con: duckdb.DuckDBPyConnection
) -> None:
    shapes.setup(con)
    shapes.page_transaction(con, shapes.stage(range(3), 0), connection_id="conn-a", run_id="r", attempt_id="a",
                            checkpoint={}, append_only_state=True)
    part = ("SELECT 'spike' AS provider, connection_id, id AS check_id, NULL::VARCHAR AS candidate_id, NULL::VARCHAR AS candidate_email, "
            "package::VARCHAR AS package, status, NULL::VARCHAR AS result, created_at, NULL::TIMESTAMPTZ AS completed_at, "
            "NULL::DOUBLE AS turnaround_hours FROM spike.checks")
    con.execute("BEGIN TRANSACTION")
    used = create_views(con, [ViewPart("background_checks", part, ("spike.checks",)),
                              ViewPart("background_checks", part.replace("'spike'", "'again'"), ("spike.checks",))])
    con.execute("COMMIT")
    assert used["background_checks"] == 2
    reader = ducklake.connect(url, read_only=True)
    try:
        assert _count(reader, "SELECT count(*) FROM unified.background_checks") == 6
        assert reader.execute("SELECT count(*) FROM unified.sync_freshness").fetchone() == (0,)
        with pytest.raises(duckdb.InvalidInputException, match="attached in read-only mode"):
            reader.execute("INSERT INTO spike.checks (id) VALUES ('x')")
    finally:
        reader.close()


def test_a_reader_answers_while_a_writer_holds_an_open_transaction(url: str, con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(10)")
    con.execute("BEGIN TRANSACTION")
    con.execute("INSERT INTO t SELECT range FROM range(5)")
    reader = ducklake.connect(url, read_only=True)
    try:
        assert _count(reader, "SELECT count(*) FROM t") == 10  # the committed snapshot, no waiting
        con.execute("COMMIT")
        assert _count(reader, "SELECT count(*) FROM t") == 15  # the next statement sees the new snapshot
    finally:
        reader.close()


# -- what DuckLake refuses (our SQL must not use these on the DuckLake backend) ----------------


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("CREATE TABLE k (id VARCHAR PRIMARY KEY)", "PRIMARY KEY/UNIQUE constraints are not supported in DuckLake"),
        ("CREATE TABLE k (id VARCHAR UNIQUE)", "PRIMARY KEY/UNIQUE constraints are not supported in DuckLake"),
        ("CREATE TABLE k (id INT CHECK (id > 0))", "CHECK constraints are not supported in DuckLake"),
        ("CREATE INDEX t_x ON t (x)", "DuckLake does not support indexes"),
        ("CREATE SEQUENCE s", "DuckLake does not support sequences"),
        ("CREATE TYPE mood AS ENUM ('a', 'b')", "DuckLake does not support user-defined types"),
        ("CREATE TABLE k (u UNION(a INT, b VARCHAR))", "unsupported type UNION(a INTEGER, b VARCHAR)"),
        ("INSERT OR REPLACE INTO t VALUES (1)", "There are no UNIQUE/PRIMARY KEY constraints that refer to this table"),
        ("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", "There are no UNIQUE/PRIMARY KEY constraints"),
        ("ALTER TABLE one DROP COLUMN x", "Cannot drop column: table only has one column remaining"),
    ],
)
def test_unsupported_statements_fail_with_these_errors(
    scratch: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection], sql: str, error: str
) -> None:
    con, _ = scratch
    con.execute("CREATE TABLE t (x INT); CREATE TABLE one (x INT)")
    with pytest.raises(duckdb.Error) as err:
        con.execute(sql)
    assert error in str(err.value)


def test_attach_refuses_row_group_size(postgres_db: PgDatabase, tmp_path: Path) -> None:
    """warehouse/connection.py attaches the file with ROW_GROUP_SIZE; DuckLake has no such option."""
    c = duckdb.connect(config=ducklake.OFFLINE_CONFIG)
    ducklake.load_extensions(c, ["postgres_scanner", "ducklake"])
    with pytest.raises(duckdb.NotImplementedException, match="Unsupported option row_group_size for DuckLake"):
        c.execute(f"ATTACH 'ducklake:postgres:{postgres_db.libpq}' AS lake "
                  f"(DATA_PATH '{tmp_path}', ROW_GROUP_SIZE 8192)")


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE IF NOT EXISTS t (x INT, y VARCHAR)",
        "ALTER TABLE t ADD COLUMN IF NOT EXISTS failures INTEGER DEFAULT 0",
        "ALTER TABLE t RENAME TO t_renamed",
        "CREATE TABLE n (id VARCHAR NOT NULL, seen_at TIMESTAMPTZ DEFAULT current_timestamp)",
        "CREATE TABLE s (st STRUCT(a INT, b VARCHAR), m MAP(VARCHAR, INT), u UUID, b BLOB, h HUGEINT)",
        "MERGE INTO t USING (SELECT 1 AS x, 'b' AS y) s ON t.x = s.x "
        "WHEN MATCHED THEN UPDATE SET y = s.y WHEN NOT MATCHED THEN INSERT (x, y) VALUES (s.x, s.y)",
        "UPDATE t SET y = s.y FROM (SELECT 1 AS x, 'c' AS y) s WHERE t.x = s.x",
        "CREATE OR REPLACE VIEW v AS (SELECT x FROM t) UNION ALL BY NAME (SELECT x FROM t)",
        "SET max_vacuum_tasks = 0; SET disabled_compression_methods = 'dictionary'",
        "ALTER TABLE t SET PARTITIONED BY (y)",
        "COMMENT ON TABLE t IS 'documented'",
    ],
)
def test_statements_our_sql_uses_work(
    scratch: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection], sql: str
) -> None:
    con, _ = scratch
    con.execute("CREATE TABLE t (x INT, y VARCHAR); INSERT INTO t VALUES (1, 'a')")
    con.execute(sql)
    (schema,) = con.execute("SELECT current_schema()").fetchone() or ("",)
    assert _count(con, f"SELECT count(*) FROM duckdb_tables() WHERE schema_name = '{schema}'") >= 1


# -- concurrent writers ----------------------------------------------------------------------


OPS = {
    "insert": "INSERT INTO t VALUES ('{c}', 99, 0)",
    "update": "UPDATE t SET v = v + 1 WHERE cid = '{c}'",
    "delete": "DELETE FROM t WHERE cid = '{c}' AND r = 1",
    "insert_other_table": "INSERT INTO u VALUES ('{c}')",
    "update_other_table": "UPDATE u SET cid = cid WHERE cid = '{c}'",
}
CONFLICTS = {  # (first to commit, second to commit) on rows of DIFFERENT connections -> the second's error
    ("insert", "insert"): None,
    ("insert", "update"): "attempting to delete from table with index",
    ("update", "insert"): "attempting to insert into table with index",
    ("update", "update"): "attempting to insert into table with index",
    ("delete", "delete"): "attempting to delete from table with index",
    ("update", "insert_other_table"): None,
    ("update", "update_other_table"): None,
}


@pytest.mark.parametrize(("first", "second"), list(CONFLICTS))
@pytest.mark.parametrize("rows", [5, 500], ids=["inlined", "parquet"])
def test_which_concurrent_writes_conflict(
    scratch: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection], first: str, second: str, rows: int
) -> None:
    """Conflicts are per TABLE, not per row or partition: a commit that deletes (UPDATE, DELETE)
    conflicts with any other commit into that table since its snapshot, whatever rows either touched."""
    con, other = scratch
    con.execute("CREATE TABLE t (cid VARCHAR, r BIGINT, v BIGINT); CREATE TABLE u (cid VARCHAR)")
    con.execute("ALTER TABLE t SET PARTITIONED BY (cid)")  # partitions do not narrow the check
    for cid in ("a", "b"):
        con.execute(f"INSERT INTO t SELECT '{cid}', range, 0 FROM range({rows}); INSERT INTO u VALUES ('{cid}')")
    mine = "SELECT count(*), sum(v) FROM t WHERE cid = 'a'"
    before = con.execute(mine).fetchall()
    con.execute("BEGIN TRANSACTION")
    con.execute(OPS[second].format(c="a"))
    other.execute("BEGIN TRANSACTION")
    other.execute(OPS[first].format(c="b"))
    other.execute("COMMIT")
    expected = CONFLICTS[(first, second)]
    if expected is None:
        con.execute("COMMIT")
        return
    with pytest.raises(duckdb.TransactionException) as err:
        con.execute("COMMIT")
    text = str(err.value)
    assert "Failed to commit DuckLake transaction" in text and shapes.CONFLICT in text and expected in text
    assert shapes.is_conflict(err.value)
    with pytest.raises(duckdb.TransactionException, match="no transaction is active"):
        con.execute("ROLLBACK")  # the failed COMMIT already ended it: retry with a new BEGIN
    assert con.execute(mine).fetchall() == before  # nothing of the failed transaction stayed


def test_concurrent_create_if_not_exists_conflicts(
    scratch: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection],
) -> None:
    """Two syncs creating the same table at once: the second commit fails; its retry finds the table."""
    con, other = scratch
    con.execute("BEGIN TRANSACTION; CREATE TABLE IF NOT EXISTS n (x INT)")
    other.execute("BEGIN TRANSACTION; CREATE TABLE IF NOT EXISTS n (x INT); COMMIT")
    with pytest.raises(duckdb.TransactionException, match='attempting to create table "n" in schema "s_'):
        con.execute("COMMIT")
    con.execute("BEGIN TRANSACTION; CREATE TABLE IF NOT EXISTS n (x INT); COMMIT")
    assert _count(con, "SELECT count(*) FROM n") == 0


def _spawn(target: object, url: str, connection_ids: list[str], *args: object) -> list[dict]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(connection_ids)), ctx.Queue()
    procs = [ctx.Process(target=target, args=(url, cid, *args, barrier, results)) for cid in connection_ids]
    for p in procs:
        p.start()
    try:
        out = [results.get(timeout=240) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
    return out


# Several processes committing at once: DuckLake's own concurrency, measured. They need the machine to
# themselves (on a loaded 2-core machine their workers did not all report within 240 s), so they run
# with SCREENSYNC_DUCKLAKE_CONCURRENCY=1 (docs/scale-out-notes.md); bench/ducklake_commits.py prints the same.
concurrency = pytest.mark.skipif(
    os.environ.get("SCREENSYNC_DUCKLAKE_CONCURRENCY") != "1",
    reason="multi-process DuckLake measurements: set SCREENSYNC_DUCKLAKE_CONCURRENCY=1 (docs/scale-out-notes.md)",
)


@concurrency
def test_four_processes_append_pages_and_checkpoints_without_a_conflict(url: str, con: duckdb.DuckDBPyConnection) -> None:
    """4 x 40 page transactions (new records through the real upsert + an appended checkpoint row)
    committed at once: every one commits, first time, and nothing is lost or doubled."""
    shapes.setup(con)
    cids, pages, rows = [f"conn-{i}" for i in range(4)], 40, 25
    results = _spawn(shapes.first_load_worker, url, cids, pages, rows)
    assert [r["errors"] for r in results] == [[]] * 4
    main = table_ref(shapes.CHECKS)
    assert con.execute(f"SELECT count(*), count(DISTINCT (connection_id, id)) FROM {main}").fetchone() == (
        4 * pages * rows, 4 * pages * rows)
    assert _count(con, "SELECT count(*) FROM _screensync.seen_keys") == 4 * pages * rows
    latest = dict(con.execute(shapes.LATEST_POSITION).fetchall())
    assert {cid: orjson.loads(cp) for cid, cp in latest.items()} == {cid: {"page": pages - 1} for cid in cids}


@concurrency
def test_concurrent_updates_retried_whole_lose_and_double_nothing(url: str, con: duckdb.DuckDBPyConnection) -> None:
    """4 connections re-syncing changed records into the same table at once, each page (UPDATE of
    the rows, their superseded versions, the sync_state UPDATE) retried whole on a conflict:
    every version lands exactly once and every checkpoint is the last page's."""
    shapes.setup(con)
    cids, pages, rows = [f"conn-{i}" for i in range(4)], 6, 10
    shapes.seed(con, cids, rows)
    results = _spawn(shapes.resync_worker, url, cids, pages, rows, False)
    main, superseded = table_ref(shapes.CHECKS), table_ref(shapes.CHECKS, "_superseded")
    assert con.execute(f"SELECT count(*), count(DISTINCT (connection_id, id)), min(count), max(count) FROM {main}"
                       ).fetchone() == (4 * rows, 4 * rows, pages, pages)
    assert con.execute(f"SELECT count(*), count(DISTINCT (connection_id, id, count)) FROM {superseded}"
                       ).fetchone() == (4 * rows * pages, 4 * rows * pages)
    for cid in cids:
        state = st.get_state(con, shapes.INTEGRATION, cid, shapes.SYNC)
        assert state is not None and state.checkpoint == {"page": pages - 1}
    messages = {m for r in results for m in r["conflicts"]}
    assert all(shapes.CONFLICT in m or shapes.RETRIES_EXHAUSTED in m for m in messages)
    print(f"conflicts: {sum(len(r['conflicts']) for r in results)} over {4 * pages} pages; {sorted(messages)}")


@concurrency
def test_appended_versions_let_concurrent_resyncs_commit_without_a_conflict(
    url: str, con: duckdb.DuckDBPyConnection
) -> None:
    """The same concurrent re-syncs written as appended versions (INSERT only): no retry needed, no
    commit fails, and the newest version of every key (commit order) is the last page's."""
    shapes.setup(con)
    cids, pages, rows = [f"conn-{i}" for i in range(4)], 6, 10
    shapes.seed(con, cids, rows)
    results = _spawn(shapes.append_only_worker, url, cids, pages, rows)
    assert [r["errors"] for r in results] == [[]] * 4
    assert con.execute(f"SELECT count(*), min(count), max(count) FROM {shapes.CURRENT}").fetchone() == (
        4 * rows, pages, pages)
    assert con.execute(f"SELECT count(*), count(DISTINCT (connection_id, id, count)) FROM {shapes.VERSIONS}"
                       ).fetchone() == (4 * rows * (pages + 1), 4 * rows * (pages + 1))
    latest = dict(con.execute(shapes.LATEST_POSITION).fetchall())
    assert {cid: orjson.loads(cp) for cid, cp in latest.items()} == {cid: {"page": pages - 1} for cid in cids}
    # an unchanged page appends nothing
    assert shapes.append_only_page(con, shapes.stage(range(rows), pages), connection_id="conn-0", run_id="again",
                                   attempt_id="att-conn-0", checkpoint={"page": pages}) == 0


# -- data on an S3-compatible store ----------------------------------------------------------


def test_data_files_on_a_local_s3_server(postgres_db: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "spike-key")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "spike-secret")
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        url = lake_url(postgres_db, "s3://lake/warehouse", s3_endpoint=f"127.0.0.1:{port}", s3_url_style="path",
                       s3_use_ssl="false", inline="0")
        writer = ducklake.connect(url)
        shapes.setup(writer)
        shapes.page_transaction(writer, shapes.stage(range(50), 0), connection_id="conn-a", run_id="r",
                                attempt_id="a", checkpoint={"page": 0}, append_only_state=False)
        writer.close()
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="warehouse/")["Contents"]]
        assert any(k.startswith("warehouse/spike/checks/") and k.endswith(".parquet") for k in keys)
        reader = ducklake.connect(url, read_only=True)
        assert _count(reader, "SELECT count(*) FROM spike.checks") == 50
        reader.close()
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        with pytest.raises(ducklake.DuckLakeURLError, match="AWS_SECRET_ACCESS_KEY"):
            ducklake.connect(url)
    finally:
        server.stop()
