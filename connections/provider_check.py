"""`connections test`: one cheap authenticated call proves a stored credential still works."""

from __future__ import annotations

import httpx
from pydantic import BaseModel

from connections.store import ConnectionStore, api_urls
from integrations.engine.auth import build_auth, redact_url
from integrations.engine.registry import get_integration

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class CheckResult(BaseModel):
    integration: str
    connection_id: str
    ok: bool
    status_code: int | None
    detail: str
    status: str  # the connection's status after the check


def check_connection(store: ConnectionStore, integration: str, connection_id: str) -> CheckResult:
    """GET the definition's test_endpoint. 401/403 marks the connection invalid; success re-activates it."""
    connection = store.get(integration, connection_id)
    definition = get_integration(integration).definition
    url = api_urls(connection)["api"].rstrip("/") + "/" + definition.test_endpoint.lstrip("/")
    token = store.credentials(integration, connection_id).token.get_secret_value()

    def result(ok: bool, code: int | None, detail: str) -> CheckResult:
        status = store.get(integration, connection_id).status
        return CheckResult(
            integration=integration, connection_id=connection_id, ok=ok, status_code=code, detail=detail, status=status
        )

    if connection.status == "revoked":
        return result(False, None, "the connection is revoked; reconnect the account")
    try:
        response = httpx.get(
            url, auth=build_auth(definition.auth, token), timeout=TIMEOUT, headers={"Accept": "application/json"}
        )
    except httpx.HTTPError as exc:
        return result(False, None, f"GET {redact_url(url)} failed: {type(exc).__name__}")
    where = f"GET {definition.test_endpoint}"
    if response.status_code in (401, 403):
        store.set_status(integration, connection_id, "invalid", f"provider answered {response.status_code} to {where}")
        return result(
            False,
            response.status_code,
            f"{where}: the provider refused the credential (HTTP {response.status_code}); marked invalid",
        )
    if not response.is_success:
        return result(False, response.status_code, f"{where} answered HTTP {response.status_code}")
    if connection.status == "invalid":
        store.set_status(integration, connection_id, "active", None)
    return result(True, response.status_code, f"{where} answered HTTP {response.status_code}")
