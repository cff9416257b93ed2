"""`screensync connections ...` in a real subprocess: secrets only via stdin, never printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli

from connections.sqlite_store import SqliteConnectionStore

pytestmark = pytest.mark.slow


def _env(store: SqliteConnectionStore, key: str) -> dict[str, str]:
    return {"SCREENSYNC_CONNECTIONS": str(store.path), "SCREENSYNC_SECRET_KEY": key}


def test_add_reads_the_credential_from_stdin(store: SqliteConnectionStore, secret_key: str, sandbox: Any) -> None:
    checkr = sandbox.info["checkr"]
    api_key = checkr["accounts"][0]["api_key"]
    env = _env(store, secret_key)
    added = run_cli(
        "connections",
        "add",
        "checkr",
        "acme",
        "--base-url",
        checkr["base_url"],
        "--tag",
        "plan=gold",
        "--account-id",
        checkr["accounts"][0]["id"],
        env=env,
        stdin=api_key + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert store.credentials("checkr", "acme").token.get_secret_value() == api_key
    assert store.get("checkr", "acme").metadata.tags == {"plan": "gold"}

    listed = run_cli("connections", "list", env=env)
    shown = run_cli("connections", "show", "checkr", "acme", env=env)
    tested = run_cli("connections", "test", "checkr", "acme", env=env)
    assert listed.returncode == shown.returncode == tested.returncode == 0, tested.stdout + tested.stderr
    assert "acme" in listed.stdout and '"base_url": "' + checkr["base_url"] in shown.stdout
    assert "ok checkr/acme" in tested.stdout
    for out in (added, listed, shown, tested):
        assert api_key not in out.stdout + out.stderr


def test_test_marks_a_refused_credential_invalid(store: SqliteConnectionStore, secret_key: str, sandbox: Any) -> None:
    env = _env(store, secret_key)
    base = sandbox.info["clearchecks"]["base_url"]
    added = run_cli(
        "connections", "add", "clearchecks", "wrong", "--base-url", base, env=env, stdin="not-a-real-token\n"
    )
    assert added.returncode == 0, added.stderr
    tested = run_cli("connections", "test", "clearchecks", "wrong", env=env)
    assert tested.returncode == 1
    assert "FAILED" in tested.stdout and "marked invalid" in tested.stdout
    assert store.get("clearchecks", "wrong").status == "invalid"
    good = sandbox.info["clearchecks"]["accounts"][0]["api_token"]
    run_cli("connections", "add", "clearchecks", "wrong", "--base-url", base, "--replace", env=env, stdin=good + "\n")
    store.set_status("clearchecks", "wrong", "invalid", "earlier 401")
    assert run_cli("connections", "test", "clearchecks", "wrong", env=env).returncode == 0
    assert store.get("clearchecks", "wrong").status == "active"


def test_bad_input_gets_a_clear_error(store: SqliteConnectionStore, secret_key: str, tmp_path: Path) -> None:
    env = _env(store, secret_key)
    empty = run_cli("connections", "add", "checkr", "acme", env=env, stdin="")
    assert empty.returncode == 1 and "no credential given" in empty.stderr
    unknown = run_cli("connections", "add", "nope", "acme", env=env, stdin="k\n")
    assert unknown.returncode == 1 and "unknown integration 'nope'" in unknown.stderr
    insecure = run_cli("connections", "add", "checkr", "acme", "--base-url", "http://example.com", env=env, stdin="k\n")
    assert insecure.returncode == 1 and "must use https" in insecure.stderr
    missing = run_cli("connections", "show", "checkr", "ghost", env=env)
    assert missing.returncode == 1 and "no checkr connection with id 'ghost'" in missing.stderr
    no_key = run_cli(
        "connections",
        "add",
        "checkr",
        "acme",
        stdin="k\n",
        env={
            "SCREENSYNC_CONNECTIONS": str(store.path),
            "SCREENSYNC_SECRET_KEY": "",
            "SCREENSYNC_SECRET_KEY_FILE": str(tmp_path / "absent.key"),
        },
    )
    assert no_key.returncode == 1 and "generate-key" in no_key.stderr
    assert store.list() == []


def test_generate_key_and_set_app(store: SqliteConnectionStore, secret_key: str) -> None:
    env = _env(store, secret_key)
    key = run_cli("connections", "generate-key", env=env).stdout.strip()
    assert len(key) == 44
    done = run_cli(
        "connections",
        "set-app",
        "checkr",
        "--base-url",
        "http://127.0.0.1:8701",
        env=env,
        stdin="client_id=cid_1\nclient_secret=cs_secret_value\n",
    )
    assert done.returncode == 0, done.stderr
    assert "cs_secret_value" not in done.stdout + done.stderr
    assert store.app_secrets("checkr")["client_secret"].get_secret_value() == "cs_secret_value"
    assert store.app_settings("checkr")["base_url"] == "http://127.0.0.1:8701"
    bad = run_cli("connections", "set-app", "checkr", env=env, stdin="client_secret\n")
    assert bad.returncode == 1 and "line 1 must look like name=value" in bad.stderr


def test_add_under_a_key_that_cannot_read_the_store_is_refused(store: SqliteConnectionStore, secret_key: str) -> None:
    from cryptography.fernet import Fernet

    first = run_cli("connections", "add", "checkr", "cust-1", env=_env(store, secret_key), stdin="token-one-1234\n")
    assert first.returncode == 0, first.stderr
    wrong = Fernet.generate_key().decode()
    refused = run_cli("connections", "add", "checkr", "cust-2", env=_env(store, wrong), stdin="token-two-1234\n")
    assert refused.returncode == 1
    assert "cannot decrypt the connection store" in refused.stderr and "Nothing was written" in refused.stderr
    assert [c.connection_id for c in store.list()] == ["cust-1"]
    app = run_cli("connections", "set-app", "checkr", env=_env(store, wrong), stdin="client_secret=abcdefgh1234\n")
    assert app.returncode == 1 and "cannot decrypt the connection store" in app.stderr
    assert store.app_secrets("checkr") == {}
