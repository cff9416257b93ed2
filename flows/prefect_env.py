"""Prefect settings this project always runs with, and a clear error when the API is unreachable.

Kept free of Prefect imports: the defaults must be in the environment before Prefect reads it.
"""

from __future__ import annotations

import logging
import os

DEFAULTS = {
    # no internet here, and no telemetry anywhere
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    # engine, warehouse and connection logs show up in the run's logs in the UI
    "PREFECT_LOGGING_EXTRA_LOGGERS": "screensync",
    # the same loggers also run outside flow runs (CLI syncs, webhooks): those lines stay local, quietly
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}


ENGINE_LOGGER = "screensync"
LOG_LEVEL_ENV = "SCREENSYNC_LOG_LEVEL"


def apply_defaults() -> None:
    from common.private_files import restrict_new_files

    restrict_new_files()  # Prefect's database (logs, artifacts) and the warehouse: owner-only
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    # Prefect gives extra loggers its handlers but not a level, so they would inherit the root
    # logger's WARNING and a run's Logs tab would miss the engine's INFO lines (connection, model,
    # pages, counts). A level set beforehand (the demo's own process quiets them) is kept.
    engine = logging.getLogger(ENGINE_LOGGER)
    if engine.level == logging.NOTSET:
        engine.setLevel(os.environ.get(LOG_LEVEL_ENV, "INFO").upper())


class PrefectUnreachable(RuntimeError):
    """The configured Prefect API does not answer."""


def api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def check_api_reachable(timeout: float = 5.0) -> str:
    """The API URL if `/health` answers; PrefectUnreachable naming the URL and the fix otherwise."""
    import httpx

    url = api_url()
    if not url:
        raise PrefectUnreachable(
            "PREFECT_API_URL is not set. Start a server with `prefect server start` and run "
            "`prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api` (or export it)."
        )
    try:
        response = httpx.get(url.rstrip("/") + "/health", timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise PrefectUnreachable(
            f"the Prefect API at {url} is unreachable ({type(exc).__name__}). Is `prefect server start` "
            "running, and does PREFECT_API_URL point at it?"
        ) from None
    return url
