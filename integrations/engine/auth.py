"""Credential injection for provider requests, chosen by the definition's auth type.

Kept as httpx.Auth objects so the token is added at send time and never appears in the
URL or parameters a caller builds, logs, or puts in an exception.
"""

from __future__ import annotations

import base64
from collections.abc import Generator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from integrations.engine.definition import AuthConfig

REDACTED = "***"


class BasicTokenAuth(httpx.Auth):
    """HTTP Basic with the token as username and an empty password (Checkr's scheme)."""

    def __init__(self, token: str) -> None:
        self._header = "Basic " + base64.b64encode(f"{token}:".encode()).decode()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "BasicTokenAuth(***)"


class QueryTokenAuth(httpx.Auth):
    """The token as a query parameter on every call (ClearChecks' `?api_token=`)."""

    def __init__(self, token: str, param: str) -> None:
        self._token = token
        self._param = param

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params({self._param: self._token})
        yield request

    def __repr__(self) -> str:
        return f"QueryTokenAuth({self._param}=***)"


def build_auth(config: AuthConfig, token: str) -> httpx.Auth:
    if not token:
        raise ValueError("empty credential: the connection has no token stored")
    if config.type == "basic":
        return BasicTokenAuth(token)
    return QueryTokenAuth(token, config.query_param)


SECRET_QUERY_PARAMS = frozenset({"api_token", "access_token", "token", "client_secret", "code", "private_key"})


def redact_url(url: str | httpx.URL) -> str:
    """A URL safe for logs and errors: secret-looking query values replaced."""
    parts = urlsplit(str(url))
    if not parts.query:
        return str(url)
    query = [(k, REDACTED if k.lower() in SECRET_QUERY_PARAMS else v) for k, v in parse_qsl(parts.query, True)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, safe="*"), parts.fragment))
