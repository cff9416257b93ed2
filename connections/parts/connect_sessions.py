"""Part 3 of the store: connect sessions (a verified link bound to one browser), their single-use
OAuth/widget states, and the one result each may store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from connections.models import Connection, ConnectSession, Credentials


@runtime_checkable
class ConnectSessionStore(Protocol):
    def begin_connect(
        self,
        session: ConnectSession,
        purpose: str,
        *,
        browser_hash: str,
        state: str,
        state_ttl: float,
        settings: Mapping[str, str],
    ) -> None: ...
    def take_state(self, state: str, purpose: str, *, browser_hash: str) -> tuple[ConnectSession, dict[str, str]]: ...
    def complete_connect(
        self, session: ConnectSession, connection: Connection, credentials: Credentials
    ) -> Connection: ...
