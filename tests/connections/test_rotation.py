"""Key rotation: old ciphertexts readable during the change, all re-encrypted, old key then unneeded."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli
from cryptography.fernet import Fernet
from store_helpers import add_connection, reopen

from connections.errors import BadSecretKey
from connections.models import Connection, Credentials
from connections.sqlite_store import SqliteConnectionStore
from connections.store import ConnectionStore


def _fill(store: ConnectionStore) -> None:
    for i in range(3):
        store.add(Connection(connection_id=f"c{i}", integration="checkr"), Credentials(token=f"token-{i}"))
    store.set_app_secrets("clearchecks", {"source_token": "src-1", "private_key": "pk-1"})


def test_rotation_re_encrypts_everything(any_store: ConnectionStore, secret_key: str) -> None:
    store = any_store
    _fill(store)
    store.record_event("checkr", "evt_1", "report.created", "acct", b'{"id":"evt_1"}')
    new_key = Fernet.generate_key().decode()
    # during a rollout, processes configured with "new,old" read old ciphertexts
    rolling = reopen(store, keys=[new_key, secret_key])
    assert rolling.credentials("checkr", "c0").token.get_secret_value() == "token-0"

    assert store.rotate_key(new_key) == 5
    only_new = reopen(store, keys=[new_key])
    assert [only_new.credentials("checkr", f"c{i}").token.get_secret_value() for i in range(3)] == [
        "token-0",
        "token-1",
        "token-2",
    ]
    assert only_new.app_secrets("clearchecks")["private_key"].get_secret_value() == "pk-1"
    assert only_new.event_body("checkr", "evt_1") == b'{"id":"evt_1"}'
    found = only_new.find_by_token("checkr", "token-1")  # lookup hash re-keyed too
    assert found is not None and found.connection_id == "c1"
    only_old = reopen(store, keys=[secret_key])
    with pytest.raises(BadSecretKey):
        only_old.credentials("checkr", "c0")


def test_rotation_rejects_a_bad_key(any_store: ConnectionStore) -> None:
    store = any_store
    _fill(store)
    with pytest.raises(BadSecretKey, match="not a valid Fernet key"):
        store.rotate_key("short")
    assert store.credentials("checkr", "c2").token.get_secret_value() == "token-2"


@pytest.mark.slow
def test_cli_rotate_key_with_key_from_stdin(store: SqliteConnectionStore, secret_key: str, tmp_path: Path) -> None:
    _fill(store)
    new_key = Fernet.generate_key().decode()
    env = {"SCREENSYNC_CONNECTIONS": str(store.path), "SCREENSYNC_SECRET_KEY": secret_key}
    done = run_cli("connections", "rotate-key", env=env, stdin=new_key + "\n")
    assert done.returncode == 0, done.stderr
    assert "re-encrypted 4 secret(s)" in done.stdout
    assert new_key not in done.stdout + done.stderr
    key_file = tmp_path / "secret.key"
    key_file.write_text(new_key + "\n")
    key_file.chmod(0o600)
    env = {
        "SCREENSYNC_CONNECTIONS": str(store.path),
        "SCREENSYNC_SECRET_KEY": "",
        "SCREENSYNC_SECRET_KEY_FILE": str(key_file),
    }
    shown = run_cli("connections", "list", env=env)
    assert shown.returncode == 0, shown.stderr
    assert (
        SqliteConnectionStore(store.path, keys=[new_key]).credentials("checkr", "c1").token.get_secret_value()
        == "token-1"
    )


def test_rotation_names_a_row_no_key_can_read(store: SqliteConnectionStore, secret_key: str) -> None:
    """A store that already holds a row under a foreign key (written before writes were checked)."""
    import sqlite3

    _fill(store)
    foreign = Fernet(Fernet.generate_key())
    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE connections SET secret = ? WHERE connection_id = 'c1'", (foreign.encrypt(b"token-1"),))
    with pytest.raises(BadSecretKey, match="connection checkr/c1 cannot be decrypted"):
        store.rotate_key(Fernet.generate_key().decode())
    assert store.credentials("checkr", "c0").token.get_secret_value() == "token-0"  # nothing re-encrypted


@pytest.mark.slow
def test_a_running_web_app_follows_a_rotation_and_health_is_honest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from connections.store import open_store
    from connections.web.app import create_app
    from connections.webhooks.verify import sign
    from tests.support.asgi_server import serve_asgi

    key_file = tmp_path / "secret.key"

    def configure(key: str) -> None:
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)

    old_key = Fernet.generate_key().decode()
    configure(old_key)
    monkeypatch.delenv("SCREENSYNC_SECRET_KEY", raising=False)
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY_FILE", str(key_file))
    monkeypatch.setenv("SCREENSYNC_CONNECTIONS", str(tmp_path / "connections.sqlite"))
    store = open_store()
    store.set_app_secrets("checkr", {"client_id": "cid", "client_secret": "partner-secret-123"})
    add_connection(store, "cust-1", "oauth", "acct_1", "access-token-123")

    def deliver(web: str, n: int) -> httpx.Response:
        body = (
            f'{{"id":"evt_{n}","type":"account.credentialed","account_id":"acct_1","data":{{"object":{{}}}}}}'
        ).encode()
        return httpx.post(
            f"{web}/webhooks/checkr", content=body, headers={"X-Checkr-Signature": sign("partner-secret-123", body)}
        )

    with serve_asgi(create_app(open_store())) as web:
        assert deliver(web, 1).status_code == 200
        assert httpx.get(f"{web}/healthz").text == "ok"
        new_key = Fernet.generate_key().decode()
        env = {"SCREENSYNC_CONNECTIONS": str(store.path), "SCREENSYNC_SECRET_KEY_FILE": str(key_file)}
        done = run_cli("connections", "rotate-key", env=env, stdin=new_key + "\n")
        assert done.returncode == 0, done.stderr
        configure(new_key)  # the operator's last step: only the new key is configured
        after = deliver(web, 2)
        assert after.status_code == 200, after.text
        assert httpx.get(f"{web}/healthz").status_code == 200

        configure(Fernet.generate_key().decode())  # a key that reads nothing here
        health = httpx.get(f"{web}/healthz")
        assert health.status_code == 503 and "cannot decrypt the connection store" in health.text
        refused = deliver(web, 3)
        assert refused.status_code == 503  # the provider retries later; nothing was recorded
    assert [e["event_id"] for e in SqliteConnectionStore(store.path, keys=[new_key]).events()] == ["evt_1", "evt_2"]
