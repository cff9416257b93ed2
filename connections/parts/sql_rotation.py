"""Key rotation in SQL: every secret of every part re-encrypted under the new key, in one transaction."""

from __future__ import annotations

from connections.crypto import Cipher, parse_keys
from connections.errors import BadSecretKey, NoSecretKey
from connections.parts.sql_base import KEYS_LOCK, SqlStoreBase, write_key_check


class SqlKeyRotation(SqlStoreBase):
    def rotate_key(self, new_keys: str | list[str]) -> int:
        """Re-encrypt every secret under new_keys[0] in one transaction; returns how many.

        Readers keep working throughout (they see the old rows until the commit), and processes
        configured with "new,old" keys read both before and after, so a rotation needs no downtime.
        Encrypting writers wait for it (the keys lock), then find the new key-check row.
        """
        keys = parse_keys(new_keys) if isinstance(new_keys, str) else parse_keys(",".join(new_keys))
        if not keys:
            raise NoSecretKey("rotate_key was given no key")
        try:
            old = self._cipher.keys
        except NoSecretKey:
            old = []
        both = Cipher([*keys, *[k for k in old if k not in keys]])
        target = Cipher(keys)

        def rotated(blob: bytes, what: str) -> bytes:
            try:
                return both.rotate(bytes(blob))
            except BadSecretKey:
                raise BadSecretKey(
                    f"{what} cannot be decrypted with the configured key(s) or the new one: nothing was "
                    "re-encrypted. Configure the key it was written under next to the current one "
                    "(comma-separated) and run rotate-key again, or remove that row"
                ) from None

        count = 0
        with self._write() as con:
            self._lock(con, KEYS_LOCK)
            for row in con.execute("SELECT integration, connection_id, secret FROM connections").fetchall():
                secret = rotated(row["secret"], f"connection {row['integration']}/{row['connection_id']}")
                token = target.decrypt(secret)
                con.execute(
                    "UPDATE connections SET secret = ?, token_hash = ? WHERE integration = ? AND connection_id = ?",
                    (secret, target.token_hash(token), row["integration"], row["connection_id"]),
                )
                count += 1
            for row in con.execute("SELECT integration, secret FROM app_secrets").fetchall():
                con.execute(
                    "UPDATE app_secrets SET secret = ? WHERE integration = ?",
                    (rotated(row["secret"], f"the app secrets of {row['integration']}"), row["integration"]),
                )
                count += 1
            for row in con.execute("SELECT integration, event_id, body FROM webhook_events").fetchall():
                con.execute(
                    "UPDATE webhook_events SET body = ? WHERE integration = ? AND event_id = ?",
                    (
                        rotated(row["body"], f"webhook event {row['integration']}/{row['event_id']}"),
                        row["integration"],
                        row["event_id"],
                    ),
                )
                count += 1
            write_key_check(con, target, replace=True)
        self._use_keys(keys)
        return count
