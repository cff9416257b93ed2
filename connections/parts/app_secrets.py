"""Part 2 of the store: each integration's platform (app) secrets and non-secret app settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from pydantic import SecretStr


@runtime_checkable
class AppSecretStore(Protocol):
    def set_app_secrets(
        self,
        integration: str,
        secrets: Mapping[str, str],
        *,
        base_url: str | None = None,
        environment: str | None = None,
    ) -> None: ...
    def app_secrets(self, integration: str) -> dict[str, SecretStr]: ...
    def app_settings(self, integration: str) -> dict[str, str | None]: ...
