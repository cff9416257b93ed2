"""One connect flow from link to stored connection, whatever the provider's kind (OAuth or widget).

open_link: a verified connect session is bound to the opening browser (a random secret the web
app keeps in a cookie; the store keeps its hash) and given a single-use state. finish_*: the state
is accepted only from that browser, the credential is obtained from the provider, and the store
saves it as far as the session allows (reconnect, account change). Nothing is written for a
request that carries no genuine link, state and cookie.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from connections import oauth, widget
from connections.app_config import app_urls
from connections.connect_sessions import connect_kind, verify
from connections.crypto import sha256_hex
from connections.errors import InvalidConnectLink, WrongBrowser
from connections.models import Connection, ConnectionMetadata, ConnectSession, Credentials
from connections.store import ConnectionStore

STATE_TTL = {"oauth": oauth.STATE_TTL_SECONDS, "widget": widget.STATE_TTL_SECONDS}
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


@dataclass(frozen=True)
class Opened:
    session: ConnectSession
    kind: str  # "oauth" or "widget"
    state: str
    browser_secret: str  # the cookie value binding the flow to this browser


def session_for(store: ConnectionStore, integration: str, token: str | None) -> ConnectSession:
    """The session of a genuine, unexpired link for this integration; InvalidConnectLink otherwise."""
    session = verify(store, token or "")
    if session.integration != integration:
        raise InvalidConnectLink(f"this connect link is for {session.integration}, not {integration}")
    return session


def session_id_of(state: str) -> str:
    """States are `<session id>.<random>`: the id names the cookie to check, the rest is the secret."""
    return state.partition(".")[0]


def open_link(store: ConnectionStore, session: ConnectSession, browser_secret: str | None) -> Opened:
    kind = connect_kind(session.integration)
    (oauth.check_ready if kind == "oauth" else widget.check_ready)(store, session.integration)
    if not browser_secret or not _SECRET_RE.match(browser_secret):
        browser_secret = secrets.token_urlsafe(32)
    state = f"{session.session_id}.{secrets.token_urlsafe(32)}"
    _, settings = app_urls(store, session.integration)
    store.begin_connect(
        session,
        kind,
        browser_hash=sha256_hex(browser_secret),
        state=state,
        state_ttl=STATE_TTL[kind],
        settings={k: v for k, v in settings.items() if v is not None},
    )
    return Opened(session=session, kind=kind, state=state, browser_secret=browser_secret)


def _take(store: ConnectionStore, state: str, kind: str, browser_secret: str | None) -> tuple[ConnectSession, dict]:
    if not browser_secret:
        raise WrongBrowser(
            "this connection was not started in this browser (no connect cookie); open your connect link here"
        )
    return store.take_state(state, kind, browser_hash=sha256_hex(browser_secret))


def _save(
    store: ConnectionStore, session: ConnectSession, kind: str, got: tuple[Credentials, ConnectionMetadata]
) -> Connection:
    credentials, metadata = got
    connection = Connection(
        connection_id=session.connection_id,
        integration=session.integration,
        credential_kind=kind,  # type: ignore[arg-type]
        metadata=metadata,
    )
    return store.complete_connect(session, connection, credentials)


def finish_oauth(store: ConnectionStore, state: str, browser_secret: str | None, code: str) -> Connection:
    session, settings = _take(store, state, "oauth", browser_secret)
    return _save(store, session, "oauth", oauth.exchange_code(store, session.integration, code, settings))


def finish_widget(
    store: ConnectionStore, integration: str, state: str, browser_secret: str | None, widget_token: str
) -> Connection:
    session, settings = _take(store, state, "widget", browser_secret)
    if session.integration != integration:
        raise InvalidConnectLink(f"this state belongs to a {session.integration} connection, not {integration}")
    return _save(store, session, "widget", widget.decrypt_token(store, integration, widget_token, settings))
