"""The encrypted store on both backends (`any_store`: SQLite and PostgreSQL): CRUD, lookups, errors that
say what to do, multi-process writes; SQLite-only where a test is about the file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from store_helpers import raw_bytes, reopen

from connections.errors import BadSecretKey, ConnectionExists, ConnectionNotFound, NoSecretKey
from connections.models import Connection, ConnectionMetadata, Credentials
from connections.sqlite_store import SqliteConnectionStore
from connections.store import ConnectionStore, api_urls, open_store

TOKEN = "tok_live_4f9a8c7e2b1d"


def _conn(cid: str = "acme", integration: str = "checkr", **meta: object) -> Connection:
    return Connection(connection_id=cid, integration=integration, metadata=ConnectionMetadata(**meta))


def test_round_trip_and_lookups(any_store: ConnectionStore) -> None:
    from connections.parts.app_secrets import AppSecretStore
    from connections.parts.connect_sessions import ConnectSessionStore
    from connections.parts.credentials import CredentialStore
    from connections.parts.webhook_inbox import WebhookInboxStore

    store = any_store
    parts = (CredentialStore, AppSecretStore, ConnectSessionStore, WebhookInboxStore, ConnectionStore)
    assert all(isinstance(store, part) for part in parts)  # each backend implements all four parts
    store.add(_conn(provider_account_id="acct_1", tags={"plan": "gold"}), Credentials(token=TOKEN))
    store.add(_conn("other"), Credentials(token="another-token"))
    got = store.get("checkr", "acme")
    assert got.metadata.provider_account_id == "acct_1" and got.metadata.tags == {"plan": "gold"}
    assert store.credentials("checkr", "acme").token.get_secret_value() == TOKEN
    assert TOKEN not in repr(store.credentials("checkr", "acme"))
    assert [c.connection_id for c in store.list()] == ["acme", "other"]
    assert [c.connection_id for c in store.find_by_account("checkr", "acct_1")] == ["acme"]
    found = store.find_by_token("checkr", TOKEN)
    assert found is not None and found.connection_id == "acme"
    assert store.find_by_token("checkr", "nope") is None
    assert store.find_by_token("clearchecks", TOKEN) is None


def test_store_written_by_the_old_schema_keeps_its_account_ids(store: SqliteConnectionStore, tmp_path: Path) -> None:
    """Stores from before the provider-neutral schema have a `checkr_account_id` column and metadata
    key; opening one migrates both, so routing by account keeps working (and inboxes get their claim column)."""
    import json
    import sqlite3

    store.add(_conn(provider_account_id="acct_old", tags={"plan": "gold"}), Credentials(token=TOKEN))
    con = sqlite3.connect(tmp_path / "connections.sqlite")  # rewrite it as the old schema wrote it
    con.execute("ALTER TABLE connections RENAME COLUMN provider_account_id TO checkr_account_id")
    old_meta = {"checkr_account_id": "acct_old", "credentialed": True, "tags": {"plan": "gold"}}
    con.execute("UPDATE connections SET metadata = ?", (json.dumps(old_meta),))
    con.execute("ALTER TABLE webhook_events DROP COLUMN claimed_until")  # inboxes from before claims
    con.commit()
    con.close()

    reopened = SqliteConnectionStore(tmp_path / "connections.sqlite")
    got = reopened.get("checkr", "acme")
    assert got.metadata.provider_account_id == "acct_old"
    assert got.metadata.credentialed and got.metadata.tags == {"plan": "gold"}
    assert [c.connection_id for c in reopened.find_by_account("checkr", "acct_old")] == ["acme"]
    assert reopened.credentials("checkr", "acme").token.get_secret_value() == TOKEN
    reopened.record_event("checkr", "evt_1", "report.completed", "acct_old", b"{}")
    assert [e["event_id"] for e in reopened.claim_events(5)] == ["evt_1"]
    con = sqlite3.connect(tmp_path / "connections.sqlite")
    columns = {row[1] for row in con.execute("PRAGMA table_info(connections)")}
    con.close()
    assert "provider_account_id" in columns and "checkr_account_id" not in columns


def test_status_metadata_and_remove(any_store: ConnectionStore) -> None:
    store = any_store
    store.add(_conn(), Credentials(token=TOKEN))
    store.set_status("checkr", "acme", "invalid", "provider answered 401")
    assert [c.connection_id for c in store.list(status="invalid")] == ["acme"]
    assert store.list(status="active") == []
    updated = store.update_metadata("checkr", "acme", credentialed=True, provider_account_id="acct_9")
    assert updated.metadata.credentialed and store.find_by_account("checkr", "acct_9")
    with pytest.raises(ValueError, match="unknown status 'gone'"):
        store.set_status("checkr", "acme", "gone", "x")
    with pytest.raises(ValueError, match="bad metadata"):
        store.update_metadata("checkr", "acme", colour="blue")
    store.remove("checkr", "acme")
    with pytest.raises(ConnectionNotFound, match="no checkr connection with id 'acme'"):
        store.get("checkr", "acme")


def test_add_refuses_duplicates_unless_replace(any_store: ConnectionStore) -> None:
    store = any_store
    first = store.add(_conn(), Credentials(token=TOKEN))
    with pytest.raises(ConnectionExists, match="already exists"):
        store.add(_conn(), Credentials(token="new"))
    replaced = store.add(_conn(), Credentials(token="new"), replace=True)
    assert replaced.created_at == first.created_at
    assert store.credentials("checkr", "acme").token.get_secret_value() == "new"


def test_bad_input_is_named(any_store: ConnectionStore) -> None:
    store = any_store
    with pytest.raises(ValueError, match="unknown integration 'nope'"):
        store.add(_conn(integration="nope"), Credentials(token=TOKEN))
    with pytest.raises(ValueError, match="credential is empty"):
        Credentials(token="   ")
    with pytest.raises(ValueError, match="connection_id"):
        _conn("has spaces/and slashes")


def test_token_is_only_stored_encrypted(any_store: ConnectionStore) -> None:
    store = any_store
    store.add(_conn(), Credentials(token=TOKEN))
    store.set_app_secrets("checkr", {"client_id": "cid_public_1", "client_secret": "cs_very_secret_2"})
    store.record_event("checkr", "evt_1", "token.issued", None, b'{"access_code": "ac_plain_3"}')
    raw = raw_bytes(store)
    assert b"acme" in raw and b"evt_1" in raw  # the bytes are the ones written
    assert TOKEN.encode() not in raw and b"cs_very_secret_2" not in raw and b"ac_plain_3" not in raw
    if isinstance(store, SqliteConnectionStore):
        assert oct(store.path.stat().st_mode & 0o777) == "0o600"


def test_no_key_refuses_to_write_and_says_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCREENSYNC_SECRET_KEY", raising=False)
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY_FILE", str(tmp_path / "missing.key"))
    store = open_store(str(tmp_path / "c.sqlite"))
    with pytest.raises(NoSecretKey) as info:
        store.add(_conn(), Credentials(token=TOKEN))
    assert "screensync connections generate-key > ~/.screensync/secret.key" in str(info.value)
    assert "chmod 600" in str(info.value) and "SCREENSYNC_SECRET_KEY_FILE" in str(info.value)
    assert store.list() == []


def test_key_file_must_be_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_text(Fernet.generate_key().decode() + "\n")
    monkeypatch.delenv("SCREENSYNC_SECRET_KEY", raising=False)
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY_FILE", str(key_file))
    key_file.chmod(0o644)
    with pytest.raises(BadSecretKey, match="chmod 600"):
        open_store(str(tmp_path / "c.sqlite")).add(_conn(), Credentials(token=TOKEN))
    key_file.chmod(0o600)
    store = open_store(str(tmp_path / "c.sqlite"))
    store.add(_conn(), Credentials(token=TOKEN))
    assert store.credentials("checkr", "acme").token.get_secret_value() == TOKEN


def test_malformed_key_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY", "not-a-key")
    with pytest.raises(BadSecretKey, match="not a valid Fernet key"):
        open_store(str(tmp_path / "c.sqlite")).add(_conn(), Credentials(token=TOKEN))


def test_wrong_key_cannot_read(any_store: ConnectionStore, tmp_path: Path) -> None:
    store = any_store
    store.add(_conn(), Credentials(token=TOKEN))
    other = reopen(store, keys=[Fernet.generate_key().decode()])
    with pytest.raises(BadSecretKey, match="cannot be decrypted"):
        other.credentials("checkr", "acme")


def test_api_urls_apply_environment_and_override(store: SqliteConnectionStore) -> None:
    conn = _conn(environment="staging", base_url="http://127.0.0.1:9999")
    urls = api_urls(conn)
    assert urls["api"] == "http://127.0.0.1:9999/v1"
    assert urls["token"] == "http://127.0.0.1:9999/oauth/tokens"
    assert api_urls(_conn())["api"] == "https://api.checkr.com/v1"


_WRITER = """
import sys
from connections.models import Connection, Credentials
from connections.store import open_store
store = open_store()
for i in range(int(sys.argv[2])):
    store.add(Connection(connection_id=f"{sys.argv[1]}-{i}", integration="checkr"), Credentials(token=f"t-{sys.argv[1]}-{i}"))
    store.set_status("checkr", f"{sys.argv[1]}-{i}", "invalid", "concurrency")
"""


def test_several_processes_write_at_once(store_location: str, secret_key: str) -> None:
    """Four processes open a new store at once (PostgreSQL: its tables are created then) and write."""
    env = {**os.environ, "SCREENSYNC_CONNECTIONS": store_location, "SCREENSYNC_SECRET_KEY": secret_key}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, f"w{n}", "15"], env=env, stderr=subprocess.PIPE)
        for n in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    store = open_store(store_location)
    rows = store.list(status="invalid")
    assert len(rows) == 60
    assert store.credentials("checkr", "w3-14").token.get_secret_value() == "t-w3-14"


def test_connect_session_states(any_store: ConnectionStore) -> None:
    store = any_store
    from connections.connect_sessions import mint
    from connections.crypto import sha256_hex
    from connections.errors import InvalidState, WrongBrowser

    _, session = mint(store, "checkr", "acme")
    browser, state = sha256_hex("browser-cookie-value"), f"{session.session_id}.first"
    store.begin_connect(session, "oauth", browser_hash=browser, state=state, state_ttl=600, settings={"base_url": "x"})
    with pytest.raises(WrongBrowser):
        store.begin_connect(session, "oauth", browser_hash=sha256_hex("other"), state="s.x", state_ttl=600, settings={})
    with pytest.raises(InvalidState, match="unknown state"):
        store.take_state(state, "widget", browser_hash=browser)  # bound to its flow
    with pytest.raises(WrongBrowser):
        store.take_state(state, "oauth", browser_hash=sha256_hex("other"))
    assert store.take_state(state, "oauth", browser_hash=browser) == (session, {"base_url": "x"})
    with pytest.raises(InvalidState, match="already used"):
        store.take_state(state, "oauth", browser_hash=browser)
    again = f"{session.session_id}.second"  # the same browser opens the link again
    store.begin_connect(session, "oauth", browser_hash=browser, state=again, state_ttl=-1, settings={})
    with pytest.raises(InvalidState, match="expired"):
        store.take_state(again, "oauth", browser_hash=browser)
    raw = raw_bytes(store)
    assert session.session_id.encode() in raw
    assert state.encode() not in raw and b"browser-cookie-value" not in raw  # only hashes are kept


def test_mark_invalid_and_local_revoke(any_store: ConnectionStore) -> None:
    store = any_store
    from connections import mark_invalid, revoke

    store.add(_conn(), Credentials(token=TOKEN))
    mark_invalid("checkr", "acme", "provider answered 403", store=store)
    assert store.get("checkr", "acme").status_reason == "provider answered 403"
    # an API-key connection has no provider deauthorize call: it is revoked here only
    revoked = revoke("checkr", "acme", store=store)
    assert revoked.status == "revoked" and "locally" in (revoked.status_reason or "")
    with pytest.raises(ConnectionNotFound):
        revoke("checkr", "ghost", store=store)


def test_a_connect_session_stores_one_result_as_far_as_it_allows(any_store: ConnectionStore) -> None:
    from connections.connect_sessions import mint
    from connections.crypto import sha256_hex
    from connections.errors import InvalidState, ReplaceRefused

    store, browser = any_store, sha256_hex("cookie")

    def connected(session_token: str, account: str, token: str, *, reconnect: bool = False) -> Connection:
        _, session = mint(store, "checkr", "acme", reconnect=reconnect)
        state = f"{session.session_id}.{session_token}"
        store.begin_connect(session, "oauth", browser_hash=browser, state=state, state_ttl=600, settings={})
        taken, _ = store.take_state(state, "oauth", browser_hash=browser)
        conn = _conn(provider_account_id=account)
        stored = store.complete_connect(taken, conn, Credentials(token=token))
        with pytest.raises(InvalidState, match="already used"):  # one result per session
            store.complete_connect(taken, conn, Credentials(token="second-" + token))
        return stored

    first = connected("a", "acct_1", "tok-first")
    assert store.credentials("checkr", "acme").token.get_secret_value() == "tok-first"
    with pytest.raises(ReplaceRefused, match="already connected and active"):
        connected("b", "acct_1", "tok-other")
    with pytest.raises(ReplaceRefused, match="belongs to provider account acct_1"):
        connected("c", "acct_2", "tok-other", reconnect=True)
    again = connected("d", "acct_1", "tok-fresh", reconnect=True)
    assert again.created_at == first.created_at
    assert store.credentials("checkr", "acme").token.get_secret_value() == "tok-fresh"
