"""Webhook signatures, as the definition's `webhooks.signature` declares them, compared in constant time.

Which secret signs a delivery is declared per connect kind in `webhooks.signature.keys` (an app
secret name such as `client_secret`, or `token` for the credential of a direct connection whose
account matches the event's account). Verification reports *who* signed (a `Signer`), so routing
can insist that an event only affects connections whose own signing secret produced it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from connections.models import Connection
from connections.store import ConnectionStore
from integrations.engine.registry import get_integration
from integrations.engine.webhook_config import TOKEN_KEY, SignatureConfig, WebhooksConfig, read_event


class NoWebhooks(LookupError):
    """The integration's definition declares no `webhooks:` section."""


@dataclass(frozen=True)
class Signer:
    """The secret that produced a signature: an app secret (`source`, no connection) or the
    credential of one connection (`source` "token", `connection_id` set)."""

    source: str
    connection_id: str | None = None


def sign(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the body (the default scheme; tests sign deliveries with it)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhooks_config(integration: str) -> WebhooksConfig:
    config = get_integration(integration).definition.webhooks
    if config is None:
        raise NoWebhooks(f"{integration} declares no webhooks")
    return config


def signing_keys(integration: str) -> dict[str, str]:
    """Connect kind -> key source, for the kinds this integration connects with."""
    definition = get_integration(integration).definition
    keys = webhooks_config(integration).signature.keys
    return {kind: source for kind, source in keys.items() if kind in definition.auth.connect}


def signing_candidates(store: ConnectionStore, integration: str, event: dict[str, Any]) -> list[tuple[Signer, str]]:
    """(signer, secret) pairs that may have signed this event, per the definition's signature keys."""
    candidates: list[tuple[Signer, str]] = []
    app: dict[str, Any] | None = None
    account_id = read_event(webhooks_config(integration), event).account_id
    for kind, source in signing_keys(integration).items():
        if source == TOKEN_KEY:
            if not account_id:
                continue
            for conn in store.find_by_account(integration, account_id):
                if conn.credential_kind == kind:
                    token = store.credentials(integration, conn.connection_id).token.get_secret_value()
                    candidates.append((Signer(TOKEN_KEY, conn.connection_id), token))
        else:
            app = store.app_secrets(integration) if app is None else app
            if source in app:
                candidates.append((Signer(source), app[source].get_secret_value()))
    return candidates


def matching_signers(
    scheme: SignatureConfig, body: bytes, signature: str | None, candidates: list[tuple[Signer, str]]
) -> set[Signer]:
    """Every candidate whose secret produced `signature`; all are checked (no early exit)."""
    if not signature:
        return set()
    return {signer for signer, secret in candidates if scheme.matches(secret, body, signature)}


def signed_for(integration: str, connection: Connection, signers: set[Signer]) -> bool:
    """True when the event was signed with the secret this connection's kind is signed with:
    the app secret for partner (OAuth) connections, the connection's own key for direct ones."""
    source = signing_keys(integration).get(connection.credential_kind)
    if source is None:
        return False
    if source == TOKEN_KEY:
        return Signer(TOKEN_KEY, connection.connection_id) in signers
    return Signer(source) in signers
