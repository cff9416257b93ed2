"""`connections test`: one cheap authenticated call proves a stored credential still works.

The call goes through the engine's client (pacing on the credential's shared limiter, a few
retries, redaction) and its answer is judged by the engine's one classifier.
"""

from __future__ import annotations

from pydantic import BaseModel

from connections.store import ConnectionStore
from integrations.engine.client_factory import INTERACTIVE_RETRY, open_client
from integrations.engine.errors import AuthFailed, EngineError, ProviderError
from integrations.engine.registry import get_integration


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
    integ = get_integration(integration)
    endpoint = integ.definition.test_endpoint
    where = f"GET {endpoint}"

    def result(ok: bool, code: int | None, detail: str) -> CheckResult:
        status = store.get(integration, connection_id).status
        return CheckResult(
            integration=integration, connection_id=connection_id, ok=ok, status_code=code, detail=detail, status=status
        )

    if connection.status == "revoked":
        return result(False, None, "the connection is revoked; reconnect the account")
    token = store.credentials(integration, connection_id).token.get_secret_value()
    try:
        with open_client(integ, connection, token, retry=INTERACTIVE_RETRY) as client:
            response = client.request("GET", endpoint)
    except AuthFailed as exc:
        store.set_status(integration, connection_id, "invalid", f"provider answered {exc.status_code} to {where}")
        return result(
            False,
            exc.status_code,
            f"{where}: the provider refused the credential (HTTP {exc.status_code}); marked invalid",
        )
    except ProviderError as exc:
        return result(False, exc.status_code, f"{where} answered HTTP {exc.status_code}")
    except EngineError as exc:  # retries exhausted: unreachable, or a provider in trouble
        return result(False, None, str(exc))
    if connection.status == "invalid":
        store.set_status(integration, connection_id, "active", None)
    return result(True, response.status_code, f"{where} answered HTTP {response.status_code}")
