"""The `webhooks:` section of a definition, and the one reader of an event that it drives.

A provider's webhook vocabulary is data: which header carries the signature and how it is made,
which secret signs for each connect kind, where an event keeps its id, type, time and account,
which event types are lifecycle events (credentialed, deauthorized) and which object events
upsert which sync's table. Generic code (connections/webhooks, the webhook sink) reads events
only through `read_event`, so nothing provider-named lives there. A `hook` ("module:function",
`event -> [(sync, object, time | None)]`) is for object events data cannot describe.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TOKEN_KEY = "token"  # a signing key source: the connection's own credential (direct API keys)
ConnectKind = Literal["api_key", "oauth", "widget"]
EventKind = Literal["credentialed", "deauthorized", "object", "ignored"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignatureConfig(_Strict):
    """How a delivery is signed: an HMAC of the raw body, in `header`, optionally after `prefix`."""

    header: str = Field(min_length=1)
    algorithm: Literal["hmac-sha256", "hmac-sha512"] = "hmac-sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""  # e.g. "sha256=" when the provider prepends the scheme
    # the secret that signs, per connect kind: an app secret name, or "token" (the connection's credential)
    keys: dict[ConnectKind, str]

    def sign(self, secret: str, body: bytes) -> str:
        digest = hmac.new(secret.encode(), body, getattr(hashlib, self.algorithm.removeprefix("hmac-"))).digest()
        text = digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode()
        return self.prefix + text

    def matches(self, secret: str, body: bytes, given: str) -> bool:
        """Constant-time comparison (hex is compared case-insensitively)."""
        expected, given = self.sign(secret, body), given.strip()
        if self.encoding == "hex":
            expected, given = expected.lower(), given.lower()
        return hmac.compare_digest(expected.encode(), given.encode())


class EventPaths(_Strict):
    """Dotted paths into an event body."""

    id: str = "id"
    type: str = "type"
    occurred_at: str | None = None  # when the change happened (orders versions of a record)
    account_id: str | None = None  # the provider account the event is about
    object: str = "data.object"  # the record an object event carries


class LifecycleEvent(_Strict):
    """Event types that change a connection: credentialed marks it so; deauthorized revokes it."""

    types: list[str] = Field(min_length=1)
    token: str | None = None  # path of the token the event names (found by token, else by account)


class LifecycleConfig(_Strict):
    credentialed: LifecycleEvent | None = None
    deauthorized: LifecycleEvent | None = None


class ObjectRoute(_Strict):
    """Object events (by type prefix or exact types) whose object is upserted through `sync`."""

    sync: str
    prefix: str | None = None
    types: list[str] = []
    min_fields: int = 0  # fewer fields: a stub reference, not a record; nothing is upserted

    @model_validator(mode="after")
    def _one_selector(self) -> ObjectRoute:
        if bool(self.prefix) == bool(self.types):
            raise ValueError(f"webhooks.objects for sync {self.sync!r}: give exactly one of prefix or types")
        return self

    def takes(self, event_type: str) -> bool:
        return event_type.startswith(self.prefix) if self.prefix else event_type in self.types


class WebhooksConfig(_Strict):
    signature: SignatureConfig
    event: EventPaths = EventPaths()
    lifecycle: LifecycleConfig = LifecycleConfig()
    objects: list[ObjectRoute] = []
    hook: str | None = None  # "module:function" for object events data cannot describe (replaces `objects`)

    def route_for(self, event_type: str) -> ObjectRoute | None:
        return next((r for r in self.objects if r.takes(event_type)), None)

    def kind(self, event_type: str) -> EventKind:
        life = self.lifecycle
        if life.credentialed and event_type in life.credentialed.types:
            return "credentialed"
        if life.deauthorized and event_type in life.deauthorized.types:
            return "deauthorized"
        if self.hook or self.route_for(event_type) is not None:
            return "object"
        return "ignored"


class WebhookEvent(BaseModel):
    """What generic code needs from one event, read through the definition's paths."""

    model_config = ConfigDict(frozen=True)

    id: str | None
    type: str | None
    kind: EventKind
    account_id: str | None
    token: str | None  # deauthorized: the token it names, when the definition says where


def value_at(body: Any, path: str | None) -> Any:
    """The value at a dotted path, or None when any step is missing."""
    if not path:
        return None
    node = body
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def event_time(value: Any) -> datetime | None:
    """An ISO-8601 time with a zone; a malformed one fails the event, loudly."""
    if not isinstance(value, str) or not value:
        return None
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else None


def read_event(config: WebhooksConfig, event: dict[str, Any]) -> WebhookEvent:
    paths = config.event
    event_type = _text(value_at(event, paths.type))
    kind = config.kind(event_type) if event_type else "ignored"
    deauth = config.lifecycle.deauthorized
    token = _text(value_at(event, deauth.token)) if kind == "deauthorized" and deauth else None
    return WebhookEvent(
        id=_text(value_at(event, paths.id)),
        type=event_type,
        kind=kind,
        account_id=_text(value_at(event, paths.account_id)),
        token=token,
    )


def object_items(config: WebhooksConfig, event: dict[str, Any]) -> list[tuple[str, dict[str, Any], datetime | None]]:
    """(sync, object, when it was true) for each record an object event carries, per `objects:`."""
    event_type = _text(value_at(event, config.event.type)) or ""
    route = config.route_for(event_type)
    obj = value_at(event, config.event.object)
    if route is None or not isinstance(obj, dict) or len(obj) < route.min_fields:
        return []
    return [(route.sync, obj, event_time(value_at(event, config.event.occurred_at)))]
