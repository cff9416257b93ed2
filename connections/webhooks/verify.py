"""Webhook signatures: hex HMAC-SHA256 of the raw body, compared in constant time.

Which secret signs a delivery is declared per connect kind in the definition's
`auth.webhook_signing` (an app secret name such as `client_secret`, or `token` for the API key of
a direct connection whose account matches the event's `account_id`). Verification reports *who*
signed (a `Signer`), so routing can insist that an event only affects connections whose own
signing secret produced it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from connections.models import Connection
from connections.store import ConnectionStore
from integrations.engine.registry import get_integration

SIGNATURE_HEADER = "X-Checkr-Signature"
TOKEN_SOURCE = "token"


@dataclass(frozen=True)
class Signer:
    """The secret that produced a signature: an app secret (`source`, no connection) or the
    credential of one connection (`source` "token", `connection_id` set)."""

    source: str
    connection_id: str | None = None


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signing_candidates(store: ConnectionStore, integration: str, event: dict[str, Any]) -> list[tuple[Signer, str]]:
    """(signer, secret) pairs that may have signed this event, per the definition's webhook_signing."""
    signing = get_integration(integration).definition.auth.webhook_signing
    candidates: list[tuple[Signer, str]] = []
    app: dict[str, Any] | None = None
    account_id = event.get("account_id")
    for kind, source in signing.items():
        if source == TOKEN_SOURCE:
            if not isinstance(account_id, str) or not account_id:
                continue
            for conn in store.find_by_account(integration, account_id):
                if conn.credential_kind == kind:
                    token = store.credentials(integration, conn.connection_id).token.get_secret_value()
                    candidates.append((Signer(TOKEN_SOURCE, conn.connection_id), token))
        else:
            app = store.app_secrets(integration) if app is None else app
            if source in app:
                candidates.append((Signer(source), app[source].get_secret_value()))
    return candidates


def matching_signers(body: bytes, signature: str | None, candidates: list[tuple[Signer, str]]) -> set[Signer]:
    """Every candidate whose secret produced `signature`; all are checked (no early exit)."""
    if not signature:
        return set()
    given = signature.strip().lower().encode()
    return {signer for signer, secret in candidates if hmac.compare_digest(sign(secret, body).encode(), given)}


def signed_for(integration: str, connection: Connection, signers: set[Signer]) -> bool:
    """True when the event was signed with the secret this connection's kind is signed with:
    the app secret for partner (OAuth) connections, the connection's own key for direct ones."""
    source = get_integration(integration).definition.auth.webhook_signing.get(connection.credential_kind)
    if source is None:
        return False
    if source == TOKEN_SOURCE:
        return Signer(TOKEN_SOURCE, connection.connection_id) in signers
    return Signer(source) in signers
