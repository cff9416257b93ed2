"""Provider account-creation widgets: the page's data, then the server-side token decrypt.

Everything provider-specific is data: URL keys and field names in the definition's `auth.widget`,
the page (which calls the provider's JavaScript) in the integration's folder.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template

from connections.app_config import app_urls, require_app_secrets
from connections.errors import ConnectionsError, ProviderCallFailed
from connections.models import ConnectionMetadata, Credentials
from connections.provider_calls import post_for_json
from connections.store import ConnectionStore
from integrations.engine.auth import redact_url
from integrations.engine.definition import WidgetConfig
from integrations.engine.registry import get_integration

STATE_TTL_SECONDS = 1800  # a person fills the provider's sign-up form in between


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


def check_ready(store: ConnectionStore, integration: str) -> None:
    """Fail before anything is written when the platform's app secrets are missing."""
    config = widget_config(integration)
    require_app_secrets(store, integration, [config.page_secret, *config.decrypt_secrets])


def render_page(store: ConnectionStore, integration: str, connection_id: str, state: str, post_url: str) -> str:
    """The connect page of an opened connect session; `post_url` comes from the configured public URL."""
    config = widget_config(integration)
    secrets = require_app_secrets(store, integration, [config.page_secret, *config.decrypt_secrets])
    urls, _ = app_urls(store, integration)
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


def decrypt_token(
    store: ConnectionStore, integration: str, widget_token: str, settings: dict[str, str]
) -> tuple[Credentials, ConnectionMetadata]:
    """Decrypt the widget's token at the provider into the customer's credential."""
    config = widget_config(integration)
    if not widget_token:
        raise ProviderCallFailed("the widget returned no token")
    secrets = require_app_secrets(store, integration, config.decrypt_secrets)
    urls, _ = app_urls(store, integration)
    url = urls[config.decrypt_url]
    payload = {config.decrypt_token_field: widget_token}
    payload.update({name: secrets[name].get_secret_value() for name in config.decrypt_secrets})
    body = post_for_json(integration, "token decrypt", url, payload)
    try:
        credential = body[config.result_field]
    except (KeyError, TypeError):
        raise ProviderCallFailed(f"token decrypt at {redact_url(url)} returned no {config.result_field}") from None
    metadata = ConnectionMetadata(environment=settings.get("environment"), base_url=settings.get("base_url"))
    return Credentials(token=str(credential)), metadata
