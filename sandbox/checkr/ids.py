"""Checkr-style 24-hex ids that encode where a generated record lives.

Decoding an id back to (kind, account, index, sub) means `GET /reports/{id}` needs no
id -> record dict, which is what keeps a million generated reports in little memory.
The id still looks random: a keyed hash of the payload comes first and masks the rest.
"""

from __future__ import annotations

import hashlib
import struct
from typing import NamedTuple

CANDIDATE, REPORT, INVITATION, PACKAGE, INVOICE, ACCOUNT, SCREENING, EVENT, OVERLAY = range(1, 10)
MAX_ACCOUNTS = 4096  # accounts a world can have (bench/fanout.py at 1,000 connections needs 334 a provider)


class Ref(NamedTuple):
    kind: int
    account: int
    index: int
    sub: int


class IdCodec:
    def __init__(self, seed: int, namespace: str) -> None:
        self._key = hashlib.blake2b(f"{namespace}:{seed}".encode(), digest_size=32).digest()

    def _check(self, payload: bytes) -> bytes:
        return hashlib.blake2b(payload, key=self._key, digest_size=4).digest()

    def _mask(self, check: bytes) -> bytes:
        return hashlib.blake2b(check, key=self._key, digest_size=8, person=b"mask").digest()

    def encode(self, kind: int, account: int, index: int, sub: int = 0) -> str:
        if not (0 <= kind < 16 and 0 <= account < MAX_ACCOUNTS):
            raise ValueError(f"a sandbox id holds a kind below 16 and an account below {MAX_ACCOUNTS}: {kind}, {account}")
        # the kind in the low nibble, the account's bits above 8 in the high one: an account below 256 gets
        # the id it always had
        payload = struct.pack(">BBIH", kind | (account >> 8) << 4, account & 0xFF, index, sub)
        check = self._check(payload)
        body = bytes(a ^ b for a, b in zip(payload, self._mask(check), strict=True))
        return (check + body).hex()

    def decode(self, value: str) -> Ref | None:
        """The record an id names, or None for anything this codec did not mint."""
        if len(value) != 24:
            return None
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            return None
        check, body = raw[:4], raw[4:]
        payload = bytes(a ^ b for a, b in zip(body, self._mask(check), strict=True))
        if self._check(payload) != check:
            return None
        head, low, index, sub = struct.unpack(">BBIH", payload)
        return Ref(head & 0x0F, (head >> 4) << 8 | low, index, sub)


def hex_token(seed: int, *parts: object, size: int = 12) -> str:
    """Deterministic hex string (credentials, screening ids) from the seed and a label."""
    label = ":".join(str(p) for p in (seed, *parts)).encode()
    return hashlib.blake2b(label, digest_size=size).hexdigest()


def unit(seed: int, *parts: object) -> float:
    """Deterministic number in [0, 1) for per-record choices."""
    label = ":".join(str(p) for p in (seed, *parts)).encode()
    return int.from_bytes(hashlib.blake2b(label, digest_size=8).digest(), "big") / 2**64
