"""The connect flows' own calls to a provider (OAuth token exchange, widget decrypt), made through
the engine's client so they are classified, paced, pinned to their URL's origin and redacted."""

from __future__ import annotations

from typing import Any

from connections.errors import ProviderCallFailed
from integrations.engine.auth import redact_url
from integrations.engine.client_factory import INTERACTIVE_RETRY, app_client
from integrations.engine.errors import AuthFailed, EngineError, ProviderError
from integrations.engine.registry import get_integration
from integrations.engine.retries import RetryPolicy


def post_for_json(integration: str, what: str, url: str, payload: dict[str, Any], *,
                  retry: RetryPolicy = INTERACTIVE_RETRY) -> Any:
    """POST `payload` as JSON and return the parsed answer; ProviderCallFailed naming `what` otherwise."""
    try:
        with app_client(get_integration(integration), url, retry=retry) as client:
            response = client.request("POST", url, json=payload)
        return response.json()
    except (AuthFailed, ProviderError) as exc:
        raise ProviderCallFailed(f"{what} at {redact_url(url)} answered HTTP {exc.status_code}") from None
    except EngineError as exc:
        raise ProviderCallFailed(f"{what} at {redact_url(url)} failed: {exc}") from None
    except ValueError:
        raise ProviderCallFailed(f"{what} at {redact_url(url)} answered with a body that is not JSON") from None
