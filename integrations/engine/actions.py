"""On-demand actions: one declared `ActionConfig` plus a typed input becomes one provider call.

Plain Python (no Prefect) so the CLI, tests and flows share one path. The order matters:
the input is validated and the connection's status checked *before* anything is sent, so a
bad form or a revoked connection never reaches the provider. Creating actions carry an
`Idempotency-Key` derived from the input, so a retried action (a Prefect retry, an operator
pressing "run" twice) never orders a check twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from pydantic import AfterValidator, BaseModel, ValidationError

from integrations.engine.auth import redact_text, remember_secret
from integrations.engine.client_factory import open_client
from integrations.engine.definition import ActionConfig
from integrations.engine.registry import Integration, get_integration

log = logging.getLogger("screensync.actions")

IDEMPOTENCY_HEADER = "Idempotency-Key"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


Email = Annotated[str, AfterValidator(_check_email)]
"""An email field for action inputs, with an error an operator can read (no regex in the message)."""
_SECRET_WORDS = ("token", "secret", "password", "api_key", "ssn")


class ActionError(Exception):
    """An action that could not be carried out; the message says why and names the input."""


class ActionInputError(ActionError, ValueError):
    """The input does not match the action's input model (nothing was sent)."""


class ConnectionRefused(ActionError):
    """The connection is revoked or invalid (nothing was sent)."""


class ActionFailed(ActionError):
    """The provider call (or a handler step) failed; `record` says what was attempted."""

    def __init__(self, message: str, record: ActionRecord) -> None:
        super().__init__(message)
        self.record = record


class ActionRecord(BaseModel):
    """What an action did, for the action log and the run's artifact (secrets redacted)."""

    action_id: str
    integration: str
    connection_id: str
    action: str
    method: str
    endpoint: str
    idempotency_key: str | None = None
    status: str  # "success" | "failed"
    started_at: datetime
    finished_at: datetime
    duration_s: float
    input: dict[str, Any]
    output: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class ActionContext:
    """What a custom handler (`ActionConfig.handler`) gets: the validated input and a ready client."""

    integration: Integration
    action: ActionConfig
    connection: Any
    connection_id: str
    input: BaseModel
    client: Any  # integrations.engine.http_client.ProviderClient
    store: Any
    idempotency_key: str | None
    # what the layer above lends a handler that must change the connection itself (Checkr's deauthorize
    # revokes the token and marks the connection): integrations do not import the connections package
    revoke: Callable[[], Any] | None = None

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        idempotent: bool = False,
    ) -> Any:
        """One provider call; returns the decoded JSON body."""
        headers = {IDEMPOTENCY_HEADER: self.idempotency_key} if (idempotent and self.idempotency_key) else None
        return response_json(self.client.request(method, path, json=json, data=data, params=params, headers=headers))


Handler = Callable[[ActionContext], Any]


def response_json(response: Any) -> Any:
    """The body of whatever the client returns (an httpx.Response or a (body, response) pair)."""
    if isinstance(response, tuple):
        return response[0]
    if hasattr(response, "json"):
        return response.json() if getattr(response, "content", b"") else {}
    return response


def idempotency_key(integration: str, connection_id: str, action: str, payload: BaseModel) -> str:
    """Same input, same key: Checkr then answers a repeat with the first result instead of acting again."""
    canonical = orjson.dumps(payload.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(b"\0".join([integration.encode(), connection_id.encode(), action.encode(), canonical]))
    return f"screensync-{digest.hexdigest()[:40]}"


def path_placeholders(endpoint: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(endpoint) if name]


def build_request(action: ActionConfig, payload: BaseModel) -> tuple[str, dict[str, Any]]:
    """(path, request kwargs) from the declared endpoint/method/body and the input's fields."""
    values = payload.model_dump(mode="json", exclude_none=True)
    names = path_placeholders(action.endpoint)
    missing = [n for n in names if n not in values]
    if missing:
        raise ActionInputError(
            f"action {action.name!r}: the endpoint needs {missing} but the input has no value for it"
        )
    path = action.endpoint.format(**{n: quote(str(values[n]), safe="") for n in names})
    rest = {k: v for k, v in values.items() if k not in names}
    if action.method in ("GET", "DELETE") or action.body == "none":
        return path, {"params": rest or None}
    if action.body == "form":
        return path, {"data": rest}
    return path, {"json": rest}


def validate_input(integ: Integration, action: ActionConfig, raw: BaseModel | dict[str, Any]) -> BaseModel:
    model = integ.model(action.input)
    data = raw.model_dump(mode="json") if isinstance(raw, BaseModel) else raw
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors())
        raise ActionInputError(f"{integ.name} action {action.name!r}: invalid input — {problems}") from None


def redact(value: Any) -> Any:
    """Drop secret-looking values (tokens handed back to the caller) before anything is logged or stored."""
    if isinstance(value, dict):
        return {k: ("***" if any(w in k.lower() for w in _SECRET_WORDS) and v else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def usable_connection(store: Any, integration: str, connection_id: str, *, allow_invalid: bool = False) -> Any:
    """The stored connection, or ConnectionRefused when it must not be used."""
    try:
        connection = store.get(integration, connection_id)
    except KeyError as exc:
        raise ConnectionRefused(f"no {integration} connection {connection_id!r}") from exc
    if connection is None:
        raise ConnectionRefused(f"no {integration} connection {connection_id!r}")
    allowed = {"active", "invalid"} if allow_invalid else {"active"}
    if connection.status not in allowed:
        reason = getattr(connection, "status_reason", "") or "no reason recorded"
        raise ConnectionRefused(
            f"{integration} connection {connection_id!r} is {connection.status} ({reason}); nothing was sent. "
            "Reconnect the account first."
        )
    return connection


def run_action(
    integration: str,
    connection_id: str,
    action_name: str,
    payload: BaseModel | dict[str, Any],
    *,
    store: Any,
    retry: Any = None,
    revoke: Callable[[], Any] | None = None,
) -> tuple[BaseModel, ActionRecord]:
    """Validate, check the connection, call the provider, return (typed output, record).

    Raises ActionInputError / ConnectionRefused before sending anything, and ActionFailed
    (carrying the record, chained to the provider error) when the call itself failed.
    """
    integ = get_integration(integration)
    action = integ.definition.action(action_name)
    started, t0 = datetime.now(UTC), time.monotonic()
    validated = validate_input(integ, action, payload)
    connection = usable_connection(store, integration, connection_id)
    key = idempotency_key(integration, connection_id, action_name, validated) if action.idempotent else None
    token = store.credentials(integration, connection_id).token.get_secret_value()
    remember_secret(token)
    output_model = integ.model(action.output)
    log.info("action %s/%s %s starting", integration, connection_id, action_name)
    try:
        with open_client(integ, connection, token, retry=retry) as client:
            ctx = ActionContext(integ, action, connection, connection_id, validated, client, store, key, revoke)
            if action.handler:
                handler: Handler = integ.resolve(action.handler)
                body = handler(ctx)
            else:
                path, kwargs = build_request(action, validated)
                body = ctx.send(action.method, path, idempotent=action.idempotent, **kwargs)
        output = body if isinstance(body, output_model) else output_model.model_validate(body)
    except Exception as exc:
        error = redact_text(f"{type(exc).__name__}: {exc}")
        log.warning("action %s/%s %s failed: %s", integration, connection_id, action_name, error)
        record = _record(integ, action, connection_id, key, validated, started, t0, None, error)
        raise ActionFailed(f"{integration} action {action_name!r} on {connection_id!r} failed: {redact_text(str(exc))}", record) from exc
    log.info("action %s/%s %s done", integration, connection_id, action_name)
    return output, _record(integ, action, connection_id, key, validated, started, t0, output, None)


def _record(
    integ: Integration,
    action: ActionConfig,
    connection_id: str,
    key: str | None,
    validated: BaseModel,
    started: datetime,
    t0: float,
    output: BaseModel | None,
    error: str | None,
) -> ActionRecord:
    return ActionRecord(
        action_id=uuid.uuid4().hex,
        integration=integ.name,
        connection_id=connection_id,
        action=action.name,
        method=action.method,
        endpoint=action.endpoint,
        idempotency_key=key,
        status="success" if error is None else "failed",
        started_at=started,
        finished_at=datetime.now(UTC),
        duration_s=round(time.monotonic() - t0, 3),
        input=redact(validated.model_dump(mode="json")),
        output=redact(output.model_dump(mode="json")) if output is not None else None,
        error=error,
    )
