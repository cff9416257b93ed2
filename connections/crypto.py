"""Encryption keys: loading, validation and the MultiFernet used for every stored secret.

Several keys may be configured (comma- or newline-separated, newest first) so a rotation can be
rolled out without downtime: every process decrypts with any listed key and encrypts with the first.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from common import settings
from connections.errors import BadSecretKey, NoSecretKey


def generate_key() -> str:
    return Fernet.generate_key().decode()


def parse_keys(text: str) -> list[str]:
    """'k1,k2' or one key a line -> ['k1', 'k2'], each checked to be a Fernet key."""
    keys = [k.strip() for chunk in text.splitlines() for k in chunk.split(",") if k.strip()]
    for i, key in enumerate(keys, 1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise BadSecretKey(
                f"encryption key #{i} is not a valid Fernet key (32 url-safe base64 bytes); "
                "make one with `screensync connections generate-key`"
            ) from None
    return keys


def key_file_path() -> Path:
    return Path(os.environ.get(settings.SECRET_KEY_FILE_ENV) or settings.DEFAULT_SECRET_KEY_FILE).expanduser()


def load_keys() -> list[str]:
    """Keys from SCREENSYNC_SECRET_KEY, else from the key file; NoSecretKey when neither is set."""
    env = os.environ.get(settings.SECRET_KEY_ENV, "").strip()
    if env:
        return parse_keys(env)
    path = key_file_path()
    if not path.is_file():
        where = f"{settings.SECRET_KEY_ENV} is unset and the key file {path} does not exist"
        raise NoSecretKey(where)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BadSecretKey(
            f"key file {path} is readable by other users (mode {oct(mode & 0o777)}); run chmod 600 {path}"
        )
    keys = parse_keys(path.read_text())
    if not keys:
        raise NoSecretKey(f"the key file {path} is empty")
    return keys


class Cipher:
    """Encrypts with the newest key, decrypts with any; also derives the keyed token hash."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = list(keys)
        if not self.keys:
            raise NoSecretKey("no keys given")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in self.keys])

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken:
            raise BadSecretKey(
                "a stored secret cannot be decrypted with the configured key(s): the key is wrong, or the store "
                "was rotated to a newer key; configure the key the store was last rotated to"
            ) from None

    def rotate(self, ciphertext: bytes) -> bytes:
        try:
            return self._fernet.rotate(ciphertext)
        except InvalidToken:
            raise BadSecretKey("a stored secret cannot be decrypted with any of the given keys") from None

    def token_hashes(self, token: str) -> list[str]:
        """The keyed hash of `token` under each key (newest first), for lookups during a rotation."""
        return [_keyed_hash(k, token) for k in self.keys]

    def token_hash(self, token: str) -> str:
        return _keyed_hash(self.keys[0], token)

    def derived_keys(self, label: str) -> list[bytes]:
        """A sub-key per configured key (newest first) for `label`'s own MACs (connect links):
        whoever holds the store key can mint, and nothing derived reveals the key itself."""
        return [hmac.new(k.encode(), label.encode(), hashlib.sha256).digest() for k in self.keys]


def sha256_hex(value: str) -> str:
    """Connect states and browser cookies are stored only as hashes: a leaked file replays nothing."""
    return hashlib.sha256(value.encode()).hexdigest()


def _keyed_hash(key: str, token: str) -> str:
    # A separate sub-key so the lookup hash never reveals anything about the encryption key itself.
    sub = hmac.new(key.encode(), b"screensync token lookup v1", hashlib.sha256).digest()
    return hmac.new(sub, token.encode(), hashlib.sha256).hexdigest()
