"""Part 4 of the store: the durable webhook inbox (bodies encrypted, one row per event id)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class WebhookInboxStore(Protocol):
    def record_event(
        self, integration: str, event_id: str, event_type: str, account_id: str | None, body: bytes
    ) -> tuple[bool, str]: ...
    def set_event_status(self, integration: str, event_id: str, status: str, detail: str | None = None) -> None: ...
    def set_event_statuses(self, updates: list[tuple[str, str, str, str | None]]) -> None: ...
    def events(
        self, status: str | None = None, integration: str | None = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]: ...
    def claim_events(
        self, limit: int, integration: str | None = None, *, lease_seconds: float = 300.0
    ) -> list[dict[str, Any]]: ...
    def event_body(self, integration: str, event_id: str) -> bytes: ...
