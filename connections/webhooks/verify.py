"""Webhook signatures: hex HMAC-SHA256 of the raw body, compared in constant time.

Which secret signs a delivery is declared per connect kind in the definition's
`auth.webhook_signing` (an app secret name such as `client_secret`, or `token` for the API key of
a direct connection whose account matches the event's `account_id`).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from connections.store import ConnectionStore
from integrations.engine.registry import get_integration

SIGNATURE_HEADER = "X-Checkr-Signature"


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(body: bytes, signature: str | None, secrets: list[str]) -> bool:
    """True when any candidate secret produced `signature`; every candidate is checked (no early exit)."""
    if not signature:
        return False
    given = signature.strip().lower().encode()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign(secret, body).encode(), given)
    return matched


def signing_secrets(store: ConnectionStore, integration: str, event: dict[str, Any]) -> list[str]:
    """The secrets that may have signed this event, per the definition's webhook_signing."""
    signing = get_integration(integration).definition.auth.webhook_signing
    candidates: list[str] = []
    app: dict[str, Any] | None = None
    account_id = event.get("account_id")
    for kind, source in signing.items():
        if source == "token":
            if not isinstance(account_id, str) or not account_id:
                continue
            for conn in store.find_by_account(integration, account_id):
                if conn.credential_kind == kind:
                    candidates.append(store.credentials(integration, conn.connection_id).token.get_secret_value())
        else:
            app = store.app_secrets(integration) if app is None else app
            if source in app:
                candidates.append(app[source].get_secret_value())
    return candidates
