"""Connections: the encrypted credential store, connect flows, deauthorization and webhooks.

Plain Python (no Prefect): the engine, flows, CLI and the connect web app all call in here.
`revoke` and `mark_invalid` are the entry points flows use; they open the store from the
environment. They are loaded on first use so `import connections.models` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connections.deauthorize import mark_invalid, revoke
    from connections.errors import ConnectionNotFound, ConnectionsError, NoSecretKey

_LAZY = {
    "mark_invalid": "connections.deauthorize",
    "revoke": "connections.deauthorize",
    "ConnectionNotFound": "connections.errors",
    "ConnectionsError": "connections.errors",
    "NoSecretKey": "connections.errors",
}

__all__ = ["ConnectionNotFound", "ConnectionsError", "NoSecretKey", "mark_invalid", "revoke"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'connections' has no attribute {name!r}")
