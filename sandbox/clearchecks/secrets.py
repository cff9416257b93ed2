"""Demo credentials and tokens for the ClearChecks sandbox.

Everything is derived from the seed so a test or demo can be replayed; none of these
values is a real ClearChecks credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson
from cryptography.fernet import Fernet, InvalidToken


def _hex(seed: int, label: str, n: int) -> str:
    return hashlib.sha256(f"clearchecks:{seed}:{label}".encode()).hexdigest()[:n]


def api_token(seed: int, account_index: int) -> str:
    return "cc_test_" + _hex(seed, f"api_token:{account_index}", 40)


def source_token(seed: int) -> str:
    return "cc_src_test_" + _hex(seed, "source_token", 32)


def private_key(seed: int) -> str:
    return "cc_pk_test_" + _hex(seed, "private_key", 48)


def _fernet(key: str) -> Fernet:
    # The platform's private key only ever keys this cipher; how ClearChecks really does it is unknown.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"clearchecks-widget:" + key.encode()).digest()))


def seal_api_token(token: str, key: str) -> str:
    """What the account widget hands to `onSuccess`: only the private key turns it back into the api_token."""
    return _fernet(key).encrypt(token.encode()).decode()


class TokenError(ValueError):
    """The sealed token is not one this sandbox issued under that key."""


def open_api_token(sealed: str, key: str) -> str:
    try:
        return _fernet(key).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError, TypeError) as exc:
        raise TokenError("token is malformed or was not issued for this platform") from exc


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def report_widget_jwt(*, report_key: str, jti: str, signing_key: str, ttl_seconds: int = 600) -> str:
    """A JWT-shaped (HS256) single-use token, as ClearChecksReportWidget expects; `jti` makes it single use."""
    header = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    claims = {"sub": report_key, "jti": jti, "exp": int(time.time()) + ttl_seconds}
    body = _b64(orjson.dumps(claims))
    sig = hmac.new(signing_key.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(sig)}"


def read_report_widget_jwt(token: str, signing_key: str) -> dict[str, object]:
    """The claims of a token this sandbox signed; raises TokenError otherwise (expiry included)."""
    try:
        header, body, sig = token.split(".")
        want = hmac.new(signing_key.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_b64(want), sig):
            raise TokenError("bad signature")
        claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise TokenError("not a report widget token") from exc
    if not isinstance(claims, dict) or int(claims.get("exp", 0)) < time.time():
        raise TokenError("report widget token expired")
    return claims
