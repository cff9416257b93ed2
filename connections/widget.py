"""Provider account-creation widgets: the page's data, then the server-side token decrypt.

Everything provider-specific is data: URL keys and field names in the definition's `auth.widget`,
the page (which calls the provider's JavaScript) in the integration's folder.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template

import httpx

from connections.app_config import app_urls, require_app_secrets
from connections.errors import ConnectionsError, ProviderCallFailed
from connections.models import Connection, ConnectionMetadata, Credentials
from connections.store import ConnectionStore
from integrations.engine.auth import redact_url
from integrations.engine.definition import WidgetConfig
from integrations.engine.registry import get_integration

STATE_TTL_SECONDS = 1800  # a person fills the provider's sign-up form in between
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class WidgetNotSupported(ConnectionsError):
    pass


def widget_config(integration: str) -> WidgetConfig:
    definition = get_integration(integration).definition
    if "widget" not in definition.auth.connect or definition.auth.widget is None:
        raise WidgetNotSupported(f"{integration} has no connect widget (connect: {definition.auth.connect})")
    return definition.auth.widget


def _js(value: str) -> str:
    """A JSON string literal safe inside an inline <script>."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(store: ConnectionStore, integration: str, connection_id: str, post_url: str) -> str:
    """The connect page with a fresh state bound to (integration, connection_id)."""
    config = widget_config(integration)
    Connection(connection_id=connection_id, integration=integration)  # validates the id up front
    secrets = require_app_secrets(store, integration, [config.page_secret, *config.decrypt_secrets])
    urls, settings = app_urls(store, integration)
    state = store.issue_state(
        integration, connection_id, "widget", STATE_TTL_SECONDS, {k: v for k, v in settings.items() if v is not None}
    )
    integ = get_integration(integration)
    page = Path(integ.folder, config.page)
    if not page.is_file():
        raise WidgetNotSupported(f"{integration}: connect page template {page} is missing")
    return Template(page.read_text()).substitute(
        title=html.escape(integ.definition.provider.name),
        connection_id=html.escape(connection_id),
        script_url=html.escape(urls[config.script_url], quote=True),
        page_secret_js=_js(secrets[config.page_secret].get_secret_value()),
        post_url_js=_js(post_url),
        state_js=_js(state),
    )


def complete(store: ConnectionStore, integration: str, state: str, widget_token: str) -> Connection:
    """Validate the state, decrypt the widget token at the provider, store the resulting credential."""
    config = widget_config(integration)
    state_integration, connection_id, extra = store.consume_state(state, "widget")
    if state_integration != integration:
        raise ConnectionsError("this state was issued for another integration")
    if not widget_token:
        raise ProviderCallFailed("the widget returned no token")
    secrets = require_app_secrets(store, integration, config.decrypt_secrets)
    urls, _ = app_urls(store, integration)
    url = urls[config.decrypt_url]
    payload = {config.decrypt_token_field: widget_token}
    payload.update({name: secrets[name].get_secret_value() for name in config.decrypt_secrets})
    try:
        response = httpx.post(url, json=payload, timeout=TIMEOUT, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ProviderCallFailed(f"token decrypt at {redact_url(url)} failed: {type(exc).__name__}") from None
    if not response.is_success:
        raise ProviderCallFailed(f"token decrypt at {redact_url(url)} answered HTTP {response.status_code}")
    try:
        credential = response.json()[config.result_field]
    except (ValueError, KeyError, TypeError):
        raise ProviderCallFailed(f"token decrypt at {redact_url(url)} returned no {config.result_field}") from None
    connection = Connection(
        connection_id=connection_id,
        integration=integration,
        credential_kind="widget",
        metadata=ConnectionMetadata(environment=extra.get("environment"), base_url=extra.get("base_url")),
    )
    return store.add(connection, Credentials(token=str(credential)), replace=True)
