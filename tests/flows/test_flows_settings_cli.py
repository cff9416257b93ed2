"""Prefect settings (no telemetry), the unreachable-API error, and the prefect-yaml / serve commands."""

from __future__ import annotations

import os

import pytest
import typer
from typer.testing import CliRunner

import flows  # noqa: F401  (applies the defaults)
from flows.cli import register
from flows.prefect_env import PrefectUnreachable, check_api_reachable
from tests.support.asgi_server import free_port


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_telemetry_is_off_and_engine_logs_reach_prefect() -> None:
    from prefect.settings import get_current_settings

    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert get_current_settings().server.analytics_enabled is False
    assert "screensync" in os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"]


def test_an_unreachable_api_is_a_clear_error_naming_the_url() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = f"http://127.0.0.1:{free_port()}/api"
    with temporary_settings({PREFECT_API_URL: url}), pytest.raises(PrefectUnreachable, match="prefect server start"):
        check_api_reachable(timeout=2)
    with temporary_settings({PREFECT_API_URL: url}):
        result = CliRunner().invoke(_app(), ["serve", "-d", "sync-checkr"])
    assert result.exit_code == 2
    assert url in result.output and "unreachable" in result.output


def test_prefect_yaml_check_passes_on_the_committed_file() -> None:
    result = CliRunner().invoke(_app(), ["prefect-yaml", "--check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
