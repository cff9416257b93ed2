"""Connections: the encrypted credential store, connect flows, deauthorization and webhooks.

Plain Python (no Prefect): the engine, flows, CLI and the connect web app all call in here.
The functions below are the entry points flows use; they open the store from the environment.
"""

from __future__ import annotations

from connections.deauthorize import mark_invalid, revoke
from connections.errors import ConnectionNotFound, ConnectionsError, NoSecretKey

__all__ = ["ConnectionNotFound", "ConnectionsError", "NoSecretKey", "mark_invalid", "revoke"]
