"""What the SQL parts share: the keys (load, re-read, check before writing) and the backend hooks.

A backend subclasses `SqlStoreBase` and provides `_read()` / `_write()` (a connection whose
`execute(sql, args)` takes `?` placeholders and yields rows addressable by column name; `_write`
is one transaction), `_lock(con, name, shared=)` (serializes read-modify-write transactions on
one object across processes and hosts: PostgreSQL advisory locks; a no-op where `_write` already
serializes every writer, as SQLite's `BEGIN IMMEDIATE` does), `SKIP_LOCKED` and `EVENT_ORDER`.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

from common import settings
from connections.crypto import Cipher, key_file_path, load_keys
from connections.errors import BadSecretKey, ConnectionsError

log = logging.getLogger(__name__)

# A process whose keys come from the environment or key file re-reads them this often, and at
# once when a stored secret will not decrypt: after `rotate-key` a running web app follows.
KEY_RELOAD_SECONDS = 30.0
KEY_CHECK = "screensync key check v1"
KEYS_LOCK = "screensync keys"  # shared by every encrypting write, exclusive for a rotation


class Row(Protocol):
    def __getitem__(self, key: str) -> Any: ...


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Db(Protocol):
    def execute(self, sql: str, args: Any = ()) -> Cursor: ...
    def executemany(self, sql: str, args: Any) -> Any: ...


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class SqlStoreBase:
    SKIP_LOCKED = ""  # appended to a claiming SELECT: " FOR UPDATE SKIP LOCKED" where rows lock
    EVENT_ORDER = "received_at, rowid"  # the inbox's arrival order

    def __init__(self, *, keys: list[str] | None = None) -> None:
        self._keys = keys
        self._cipher_cache: Cipher | None = None
        self._loaded_at = 0.0

    # --- backend hooks -------------------------------------------------------------------------
    @property
    def where(self) -> str:
        """How messages name this store (a path or a password-free URL)."""
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Db]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Db]:
        raise NotImplementedError

    def _lock(self, con: Db, name: str, *, shared: bool = False) -> None:
        """Hold `name` until the transaction ends (no-op where every writer is serialized already)."""

    # --- keys ----------------------------------------------------------------------------------
    @property
    def _cipher(self) -> Cipher:
        if self._cipher_cache is None:
            self._cipher_cache = Cipher(self._keys if self._keys is not None else load_keys())
            self._loaded_at = time.monotonic()
        elif self._keys is None and time.monotonic() - self._loaded_at > KEY_RELOAD_SECONDS:
            try:
                self.reload_keys()
            except ConnectionsError as exc:  # a key file being replaced: keep the keys we have
                log.warning("could not re-read the encryption key(s): %s", exc)
                self._loaded_at = time.monotonic()
        return self._cipher_cache

    def reload_keys(self) -> bool:
        """Re-read keys from SCREENSYNC_SECRET_KEY / the key file; True when they changed."""
        if self._keys is not None:
            return False
        keys = load_keys()
        self._loaded_at = time.monotonic()
        if self._cipher_cache is not None and self._cipher_cache.keys == keys:
            return False
        self._cipher_cache = Cipher(keys)
        return True

    def _use_keys(self, keys: list[str]) -> None:
        """After a rotation this store writes with `keys` (the process's configuration may lag)."""
        self._keys = keys
        self._cipher_cache = Cipher(keys)

    def _decrypt(self, blob: bytes) -> str:
        """Decrypt with the current keys, re-reading them once if that fails (a rotation happened)."""
        try:
            return self._cipher.decrypt(blob)
        except BadSecretKey:
            if not self.reload_keys():
                raise
        return self._cipher.decrypt(blob)

    def _check_key(self, con: Db) -> Cipher:
        """The cipher to write with, once it is proven to read what the store already holds.

        Writing under a key that cannot read the store would leave rows no single key opens
        (and a later rotation failing on them), so such writes are refused up front. The keys
        lock (shared here, exclusive in a rotation) keeps a write from slipping past a rotation.
        """
        self._lock(con, KEYS_LOCK, shared=True)
        probes = _probes(con)
        if not self._reads(probes):
            raise BadSecretKey(
                f"the configured encryption key cannot decrypt the connection store {self.where}: it was "
                "written under another key (or rotated since). Nothing was written. Configure the key the "
                f"store was last rotated to ({settings.SECRET_KEY_ENV} or the key file {key_file_path()})"
            )
        if not probes or not _has_key_check(con):
            write_key_check(con, self._cipher, replace=False)
        return self._cipher

    def _reads(self, probes: list[bytes]) -> bool:
        """True when the configured keys decrypt one of `probes` (or there is nothing to decrypt)."""
        for probe in probes:
            try:
                self._decrypt(probe)
            except BadSecretKey:
                continue
            return True
        return not probes

    def health(self) -> None:
        """Raise (naming the problem, never a secret) unless the configured keys read this store.

        The keys are re-read first: health reports what the configuration can do, not what an
        older key still cached in this process could.
        """
        self.reload_keys()
        self._cipher  # noqa: B018  (the keys must at least load)
        with self._read() as con:
            probes = _probes(con)
        if not self._reads(probes):
            raise BadSecretKey(f"the configured encryption key cannot decrypt the connection store {self.where}")

    def derived_keys(self, label: str) -> list[bytes]:
        return self._cipher.derived_keys(label)


def write_key_check(con: Db, cipher: Cipher, *, replace: bool) -> None:
    """The row that proves which key the store is under (`replace`: a rotation rewrites it)."""
    on_conflict = "DO UPDATE SET value = excluded.value" if replace else "DO NOTHING"
    con.execute(
        f"INSERT INTO store_meta (name, value) VALUES ('key_check', ?) ON CONFLICT (name) {on_conflict}",
        (cipher.encrypt(KEY_CHECK),),
    )


def _has_key_check(con: Db) -> bool:
    return con.execute("SELECT 1 AS one FROM store_meta WHERE name = 'key_check'").fetchone() is not None


def _probes(con: Db) -> list[bytes]:
    """What proves a key reads this store: the key-check row, or (stores written before it existed)
    the first secret of each table, any of which will do."""
    row = con.execute("SELECT value FROM store_meta WHERE name = 'key_check'").fetchone()
    if row is not None:
        return [bytes(row["value"])]
    found = []
    for sql in (
        "SELECT secret AS blob FROM connections LIMIT 1",
        "SELECT secret AS blob FROM app_secrets LIMIT 1",
        "SELECT body AS blob FROM webhook_events LIMIT 1",
    ):
        first = con.execute(sql).fetchone()
        if first is not None:
            found.append(bytes(first["blob"]))
    return found
