"""One classifier judges every provider answer; the connection test and deauthorize use it through
the engine's client (retries, origin pinning, redaction) like syncs and actions do."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from cryptography.fernet import Fernet

from integrations.engine import registry
from integrations.engine.definition import RateLimitConfig
from integrations.engine.responses import Outcome, classify
from tests.engine.conftest import TOKEN, FakeProvider

LIMIT = RateLimitConfig(requests=10)


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "wait"),
    [
        (200, {}, Outcome.OK, None),
        (204, {}, Outcome.OK, None),
        (302, {"Location": "https://elsewhere.test/"}, Outcome.REDIRECT, None),
        (401, {}, Outcome.AUTH_FAILED, None),
        (403, {}, Outcome.AUTH_FAILED, None),
        (429, {"Retry-After": "7"}, Outcome.RETRY, 7.0),
        (503, {}, Outcome.RETRY, None),
        (500, {"Retry-After": "2"}, Outcome.RETRY, 2.0),
        (404, {}, Outcome.FATAL, None),
        (422, {"Retry-After": "2"}, Outcome.FATAL, None),
        (501, {}, Outcome.FATAL, None),
    ],
)
def test_classify(status: int, headers: dict[str, str], outcome: Outcome, wait: float | None) -> None:
    verdict = classify(httpx.Response(status, headers=headers), LIMIT)
    assert (verdict.outcome, verdict.wait) == (outcome, wait)


DEFINITION = """
name: typed-fake
provider:
  name: Fake
  environments:
    production: {{api: "https://fake.invalid/v1", deauthorize: "https://fake.invalid/v1/{deauthorize}"}}
auth: {{type: bearer, connect: [api_key, oauth], oauth: {{}}}}
rate_limit: {{requests: 6000, per_seconds: 60}}
pagination: {{type: none}}
test_endpoint: /{test}
"""


@pytest.fixture
def connect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_provider: FakeProvider) -> Iterator:
    """`connect(test=..., deauthorize=..., kind=...)`: a fresh `typed-fake` integration folder
    whose endpoints are FakeProvider routes, and a connection to it; returns the store."""
    from connections.models import Connection, ConnectionMetadata, Credentials
    from connections.store import open_store

    monkeypatch.setenv("SCREENSYNC_CONNECTIONS", str(tmp_path / "conn.sqlite"))
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY", Fernet.generate_key().decode())

    def make(test: str = "items", deauthorize: str = "items", kind: str = "api_key") -> object:
        folder = tmp_path / "integrations" / "typed_fake"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "definition.yaml").write_text(textwrap.dedent(DEFINITION.format(test=test, deauthorize=deauthorize)))
        monkeypatch.setenv(registry.PATH_ENV, str(folder.parent))
        registry.reload()
        store = open_store()
        store.add(Connection(connection_id="c1", integration="typed-fake", credential_kind=kind,
                             metadata=ConnectionMetadata(base_url=fake_provider.base)),
                  Credentials(token=TOKEN), replace=True)
        return store

    yield make
    monkeypatch.delenv(registry.PATH_ENV)
    registry.reload()


def test_the_connection_test_retries_a_transient_failure(connect, fake_provider: FakeProvider) -> None:
    from connections.provider_check import check_connection

    key = uuid4().hex
    store = connect(test=f"flaky?key={key}&fail=1&status=503")
    result = check_connection(store, "typed-fake", "c1")
    assert result.ok and result.status_code == 200, result.detail
    assert fake_provider.hits[f"flaky:{key}"] == 2  # one 503, then the retry
    assert f"Bearer {TOKEN}" in fake_provider.credentials  # the definition's auth type, via the engine


def test_the_connection_test_marks_a_refused_credential_invalid(connect) -> None:
    from connections.provider_check import check_connection

    store = connect(test="forbidden")
    result = check_connection(store, "typed-fake", "c1")
    assert not result.ok and result.status_code == 403 and "marked invalid" in result.detail
    assert store.get("typed-fake", "c1").status == "invalid"


def test_the_connection_test_follows_no_redirect_and_shows_no_token(connect) -> None:
    from connections.provider_check import check_connection

    store = connect(test="redirect")
    result = check_connection(store, "typed-fake", "c1")
    assert not result.ok and result.status_code == 302 and TOKEN not in result.detail
    assert store.get("typed-fake", "c1").status == "active"


def test_deauthorize_retries_through_the_engine_client(connect, fake_provider: FakeProvider) -> None:
    from connections.deauthorize import revoke

    key = uuid4().hex
    store = connect(deauthorize=f"flaky?key={key}&fail=2&status=502", kind="oauth")
    assert revoke("typed-fake", "c1", store=store).status == "revoked"
    assert fake_provider.hits[f"flaky:{key}"] == 3


def test_deauthorize_keeps_the_connection_when_the_provider_refuses(connect) -> None:
    from connections.deauthorize import revoke
    from connections.errors import ProviderCallFailed

    store = connect(deauthorize="invalid", kind="oauth")
    with pytest.raises(ProviderCallFailed, match="connection unchanged") as err:
        revoke("typed-fake", "c1", store=store)
    assert TOKEN not in str(err.value)
    assert store.get("typed-fake", "c1").status == "active"


def test_app_calls_go_through_the_engine_client_and_a_code_is_sent_once(connect) -> None:
    """OAuth token exchange and widget decrypt: a one-time code is never resent; a decrypt is retried."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from connections.errors import ProviderCallFailed
    from connections.provider_calls import post_for_json
    from integrations.engine.client_factory import ONE_TRY
    from tests.support.asgi_server import serve_asgi

    seen: list[dict] = []

    async def flaky(request: Request) -> JSONResponse:
        seen.append(await request.json())
        if len(seen) <= 2:  # the first two calls are answered 503
            return JSONResponse({"error": "busy"}, status_code=503)
        return JSONResponse({"access_token": "tok-from-app-call"})

    connect()  # registers the `typed-fake` integration
    with serve_asgi(Starlette(routes=[Route("/oauth/token", flaky, methods=["POST"])])) as base:
        secret = "client-secret-" + uuid4().hex
        with pytest.raises(ProviderCallFailed, match=r"token exchange at .* failed: .*gave up after 1 attempts.*HTTP 503") as err:
            post_for_json("typed-fake", "token exchange", f"{base}/oauth/token", {"code": "c1", "client_secret": secret},
                          retry=ONE_TRY)
        assert len(seen) == 1 and secret not in str(err.value)
        body = post_for_json("typed-fake", "token decrypt", f"{base}/oauth/token", {"token": "w"})
        assert body == {"access_token": "tok-from-app-call"} and len(seen) == 3  # a 503, then the retry
