"""The PostgreSQL store where it differs from SQLite: several writers really run at once (on one
host here, on many in production), so single use, idempotence, claims and rotation rest on row
and advisory locks; the URL names no password; the CLI works against it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from cli_helpers import run_cli
from cryptography.fernet import Fernet
from store_helpers import reopen

from connections.connect_sessions import mint
from connections.crypto import sha256_hex
from connections.errors import BadSecretKey, BadStoreLocation, InvalidState, StoreUnavailable
from connections.models import Connection, Credentials
from connections.postgres_store import PostgresConnectionStore
from connections.store import open_store
from tests.support.asgi_server import free_port
from tests.support.postgres import PgDatabase

THREADS = 8


@pytest.fixture
def pg(postgres_db: PgDatabase, secret_key: str) -> PostgresConnectionStore:
    store = open_store(postgres_db.url)
    assert isinstance(store, PostgresConnectionStore)
    return store


def _at_once(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(0..n-1) in n threads released together; each result, or the exception it raised."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://screensync:hunter2-secret@db.internal:5432/connections",
        "postgresql://screensync@db.internal:5432/connections?password=hunter2-secret",
    ],
)
def test_a_url_with_a_password_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(BadStoreLocation) as info:
        open_store(url)
    message = str(info.value)
    assert "hunter2-secret" not in message
    assert "PGPASSWORD" in message and "~/.pgpass" in message
    assert "postgresql://screensync@db.internal:5432/connections" in message


def test_an_unreachable_server_is_named() -> None:
    store = open_store(f"postgresql://postgres@127.0.0.1:{free_port()}/connections")
    with pytest.raises(StoreUnavailable, match=r"cannot open the connection store postgresql://postgres@127\.0\.0\.1"):
        store.list()


def test_a_state_presented_by_many_requests_at_once_is_taken_once(pg: PostgresConnectionStore) -> None:
    _, session = mint(pg, "checkr", "acme")
    browser, state = sha256_hex("cookie"), f"{session.session_id}.only"
    pg.begin_connect(session, "oauth", browser_hash=browser, state=state, state_ttl=600, settings={})
    stores = [reopen(pg) for _ in range(THREADS)]  # as separate processes would, each its own connections
    results = _at_once(THREADS, lambda i: stores[i].take_state(state, "oauth", browser_hash=browser))
    won = [r for r in results if isinstance(r, tuple)]
    lost = [r for r in results if isinstance(r, InvalidState)]
    assert len(won) == 1 and won[0][0] == session
    assert len(lost) == THREADS - 1 and all("already used" in str(e) for e in lost), results


def test_one_event_delivered_to_many_receivers_at_once_is_recorded_once(pg: PostgresConnectionStore) -> None:
    stores = [reopen(pg) for _ in range(THREADS)]
    body = b'{"id":"evt_1","type":"report.completed"}'
    results = _at_once(
        THREADS, lambda i: stores[i].record_event("checkr", "evt_1", "report.completed", "acct_1", body)
    )
    assert sorted(results, key=lambda r: not r[0]) == [(True, "pending")] + [(False, "pending")] * (THREADS - 1)
    assert [e["event_id"] for e in pg.events()] == ["evt_1"]
    assert pg.event_body("checkr", "evt_1") == body


def test_concurrent_workers_claim_disjoint_events(pg: PostgresConnectionStore) -> None:
    for n in range(40):
        pg.record_event("checkr", f"evt_{n:02d}", "report.completed", None, b"{}")
    workers = [reopen(pg) for _ in range(4)]

    def drain(i: int) -> list[str]:
        taken: list[str] = []
        while batch := workers[i].claim_events(3):
            taken += [r["event_id"] for r in batch]
        return taken

    claimed = _at_once(4, drain)
    flat = [e for worker in claimed for e in worker]
    assert sorted(flat) == [f"evt_{n:02d}" for n in range(40)]  # each once: none twice, none missed


def test_rotation_runs_in_one_transaction_readers_see_the_old_rows_writers_wait(
    pg: PostgresConnectionStore, postgres_db: PgDatabase, secret_key: str
) -> None:
    for i in range(3):
        pg.add(Connection(connection_id=f"c{i}", integration="checkr"), Credentials(token=f"token-{i}"))
    new_key = Fernet.generate_key().decode()
    old_only = reopen(pg, keys=[secret_key])
    rolling = reopen(pg, keys=[new_key, secret_key])
    outcome: dict[str, Any] = {}

    def waiting(n: int) -> None:
        deadline = time.monotonic() + 30
        with psycopg.connect(postgres_db.url, autocommit=True) as watch:
            while time.monotonic() < deadline:
                row = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                    (postgres_db.name,),
                ).fetchone()
                if row and row[0] >= n:
                    return
                time.sleep(0.05)
        raise AssertionError(f"{n} session(s) never waited on a lock")

    def run(name: str, call: Callable[[], Any]) -> threading.Thread:
        def target() -> None:
            try:
                outcome[name] = call()
            except Exception as exc:
                outcome[name] = exc

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    with psycopg.connect(postgres_db.url) as holder:  # keeps the rotation mid-transaction
        holder.execute("SELECT 1 FROM connections WHERE connection_id = 'c1' FOR UPDATE")
        rotation = run("rotation", lambda: pg.rotate_key(new_key))
        waiting(1)
        # mid-rotation: readers with the old key alone, or with both, read every row
        assert [old_only.credentials("checkr", f"c{i}").token.get_secret_value() for i in range(3)] == [
            "token-0", "token-1", "token-2"
        ]
        assert rolling.credentials("checkr", "c2").token.get_secret_value() == "token-2"
        late = run("late writer", lambda: old_only.add(Connection(connection_id="late", integration="checkr"),
                                                       Credentials(token="token-late")))
        waiting(2)  # the old-key writer waits for the rotation instead of writing under the old key
        assert "late writer" not in outcome
        holder.rollback()
    rotation.join(timeout=30)
    late.join(timeout=30)
    assert outcome["rotation"] == 3
    assert isinstance(outcome["late writer"], BadSecretKey) and "Nothing was written" in str(outcome["late writer"])
    new_only = reopen(pg, keys=[new_key])
    assert [c.connection_id for c in new_only.list()] == ["c0", "c1", "c2"]
    assert new_only.credentials("checkr", "c1").token.get_secret_value() == "token-1"
    with pytest.raises(BadSecretKey):
        reopen(pg, keys=[secret_key]).credentials("checkr", "c0")


@pytest.mark.slow
def test_cli_works_against_a_postgres_url(postgres_db: PgDatabase, secret_key: str) -> None:
    env = {"SCREENSYNC_CONNECTIONS": postgres_db.url, "SCREENSYNC_SECRET_KEY": secret_key}
    added = run_cli("connections", "add", "checkr", "acme", "--account-id", "acct_1", env=env,
                    stdin="tok_live_cli_1234\n")
    assert added.returncode == 0, added.stderr
    new_key = Fernet.generate_key().decode()
    rotated = run_cli("connections", "rotate-key", env=env, stdin=new_key + "\n")
    assert rotated.returncode == 0 and "re-encrypted 1 secret(s)" in rotated.stdout, rotated.stderr
    for out in (added, rotated):
        assert "tok_live_cli_1234" not in out.stdout + out.stderr and new_key not in out.stdout + out.stderr
    store = open_store(postgres_db.url)
    assert isinstance(store, PostgresConnectionStore)
    rotated_store = reopen(store, keys=[new_key])
    assert [c.metadata.provider_account_id for c in rotated_store.list()] == ["acct_1"]
    assert rotated_store.credentials("checkr", "acme").token.get_secret_value() == "tok_live_cli_1234"
    bad_url = postgres_db.url.replace("postgres@", "postgres:pw-in-url-99@")
    refused = run_cli("connections", "list", env={**env, "SCREENSYNC_CONNECTIONS": bad_url})
    assert refused.returncode == 1 and "must not carry a password" in refused.stderr
    assert "pw-in-url-99" not in refused.stdout + refused.stderr


def test_url_options_reach_the_server(postgres_server: Any, postgres_db: PgDatabase, secret_key: str) -> None:
    """libpq parameters in the URL pass through: here a search_path puts the tables in their own schema."""
    postgres_server.psql("CREATE SCHEMA screensync", database=postgres_db.name)
    store = open_store(postgres_db.url + "?options=-csearch_path%3Dscreensync")
    store.add(Connection(connection_id="acme", integration="checkr"), Credentials(token="tok-1"))
    assert store.get("checkr", "acme").created_at.tzinfo is not None
    tables = postgres_server.psql(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_name = 'connections'", database=postgres_db.name,
    ).split()
    assert tables == ["screensync.connections"]
