"""Connect sessions: the platform's backend authorises each connect flow, as Nango's do.

A connect link carries a token `cs1.<payload>.<mac>`: the payload is a `ConnectSession` (one
integration, one connection id, reconnect / account-change permissions, an expiry) and the MAC
is an HMAC-SHA256 under a sub-key of the store's encryption key. Whoever can mint one already
holds that key (the platform's backend, `screensync connections connect-link`) or the platform
API secret (`POST /connect-sessions`); the web app verifies it before it writes anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, ValidationError

from common import settings
from connections.errors import ConnectionsError, InvalidConnectLink
from connections.models import ConnectSession
from connections.store import ConnectionStore, open_store
from integrations.engine.registry import get_integration

TOKEN_PREFIX = "cs1"
MAC_LABEL = "screensync connect session v1"
DEFAULT_TTL_SECONDS = 600
MAX_TTL_SECONDS = 7 * 86400
_TTL_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConnectLink(BaseModel):
    url: str
    token: str
    expires_at: int


def parse_ttl(text: str) -> int:
    """'90s', '10m', '2h', '1d' or plain seconds -> seconds (1 s to 7 days)."""
    match = _TTL_RE.match(text or "")
    if not match:
        raise ConnectionsError(f"--ttl {text!r} must look like 600, 90s, 10m, 2h or 1d")
    seconds = int(match.group(1)) * _TTL_UNITS[match.group(2)]
    if not 1 <= seconds <= MAX_TTL_SECONDS:
        raise ConnectionsError(f"--ttl {text!r} must be between 1 second and 7 days")
    return seconds


def connect_kind(integration: str) -> str:
    """'oauth' or 'widget': how customers connect this integration through the web app."""
    connect = get_integration(integration).definition.auth.connect
    for kind in ("oauth", "widget"):
        if kind in connect:
            return kind
    raise ConnectionsError(
        f"{integration} connects only with an API key (`screensync connections add`); it has no connect link"
    )


def check_public_url(url: str) -> str:
    """The URL customers and providers reach the web app at: https (http only on loopback), no query."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or parts.query or parts.fragment:
        raise ConnectionsError(f"public URL {url!r} must look like https://connect.example.com[/prefix]")
    if parts.scheme == "http" and not is_loopback(host):
        raise ConnectionsError(f"public URL {url!r} must use https (plain http is allowed only on loopback)")
    return url.strip().rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configured_public_url() -> str | None:
    value = settings.public_url()
    return check_public_url(value) if value else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, signed: str) -> bytes:
    return hmac.new(key, signed.encode(), hashlib.sha256).digest()


def mint(
    store: ConnectionStore,
    integration: str,
    connection_id: str,
    *,
    reconnect: bool = False,
    allow_account_change: bool = False,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
) -> tuple[str, ConnectSession]:
    """A signed token for one connect flow; nothing is written until someone opens it."""
    connect_kind(integration)
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ConnectionsError("a connect session lives between 1 second and 7 days")
    try:
        session = ConnectSession(
            session_id=secrets.token_urlsafe(18),
            integration=integration,
            connection_id=connection_id,
            reconnect=reconnect,
            allow_account_change=allow_account_change,
            expires_at=int(time.time()) + ttl_seconds,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConnectionsError(f"cannot mint a connect session: {problems}") from None
    signed = f"{TOKEN_PREFIX}.{_b64(session.model_dump_json().encode())}"
    return f"{signed}.{_b64(_mac(store.derived_keys(MAC_LABEL)[0], signed))}", session


def verify(store: ConnectionStore, token: str, *, now: float | None = None) -> ConnectSession:
    """The session a genuine, unexpired token carries; InvalidConnectLink otherwise (nothing written)."""
    prefix, _, rest = (token or "").partition(".")
    payload, _, mac = rest.partition(".")
    if prefix != TOKEN_PREFIX or not payload or not mac or len(token) > 2048:
        raise InvalidConnectLink("this page needs a connect link from your platform (it has no valid session)")
    signed = f"{prefix}.{payload}"
    try:
        given = _unb64(mac)
    except ValueError:
        raise InvalidConnectLink("the connect link's signature is malformed") from None
    if not _signed_by_any(store, signed, given) and not (store.reload_keys() and _signed_by_any(store, signed, given)):
        raise InvalidConnectLink("the connect link is not genuine (bad signature)")
    try:
        session = ConnectSession.model_validate_json(_unb64(payload))
    except (ValueError, ValidationError):
        raise InvalidConnectLink("the connect link's session is malformed") from None
    if session.expires_at < (time.time() if now is None else now):
        raise InvalidConnectLink("this connect link has expired; ask your platform for a new one")
    return session


def _signed_by_any(store: ConnectionStore, signed: str, given: bytes) -> bool:
    matched = False
    for key in store.derived_keys(MAC_LABEL):
        matched |= hmac.compare_digest(_mac(key, signed), given)
    return matched


def link_url(public_url: str | None, integration: str, token: str) -> str:
    """`{public_url}/connect/{integration}?session=...` (a root-relative path without a public URL)."""
    base = check_public_url(public_url) if public_url else ""
    return f"{base}/connect/{integration}?{urlencode({'session': token})}"


def create_connect_link(
    integration: str,
    connection_id: str,
    *,
    reconnect: bool = False,
    allow_account_change: bool = False,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    public_url: str | None = None,
    store: ConnectionStore | None = None,
) -> ConnectLink:
    """What the platform's backend calls to send one customer into one connect flow.

    `public_url` defaults to SCREENSYNC_PUBLIC_URL; the link is single-browser and expires.
    """
    public = check_public_url(public_url) if public_url else configured_public_url()
    if public is None:
        raise ConnectionsError(
            f"no public URL for the connect web app: set {settings.PUBLIC_URL_ENV} (e.g. https://connect.example.com)"
            " or pass --public-url"
        )
    token, session = mint(
        store or open_store(),
        integration,
        connection_id,
        reconnect=reconnect,
        allow_account_change=allow_account_change,
        ttl_seconds=ttl_seconds,
    )
    return ConnectLink(url=link_url(public, integration, token), token=token, expires_at=session.expires_at)
