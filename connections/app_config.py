"""The platform's per-integration app config (secrets + base-URL override) as connect flows need it."""

from __future__ import annotations

from pydantic import SecretStr

from connections.errors import AppSecretsMissing
from connections.store import ConnectionStore
from integrations.engine.registry import get_integration, provider_urls


def require_app_secrets(store: ConnectionStore, integration: str, names: list[str]) -> dict[str, SecretStr]:
    secrets = store.app_secrets(integration)
    missing = [n for n in names if n not in secrets]
    if missing:
        raise AppSecretsMissing(integration, missing)
    return secrets


def app_urls(store: ConnectionStore, integration: str) -> tuple[dict[str, str], dict[str, str | None]]:
    """(provider URLs for the app's environment and base-URL override, those settings)."""
    settings = store.app_settings(integration)
    definition = get_integration(integration).definition
    urls = provider_urls(definition, environment=settings["environment"], base_url=settings["base_url"])
    return urls, settings
