"""Credential injection for provider requests, chosen by the definition's auth type.

Kept as httpx.Auth objects so the token is added at send time and never appears in the
URL or parameters a caller builds, logs, or puts in an exception.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

import httpx

from integrations.engine.definition import AuthCommon, BasicAuth, BearerAuth, HeaderAuth, QueryAuth

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


class HeaderTokenAuth(httpx.Auth):
    """The token in a named header, with an optional prefix (`Authorization: Bearer`, `X-Api-Key`)."""

    def __init__(self, token: str, header: str, prefix: str = "") -> None:
        self._header = header
        self._value = f"{prefix}{token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._value
        yield request

    def __repr__(self) -> str:
        return f"HeaderTokenAuth({self._header}: ***)"


def _basic(config: BasicAuth, token: str) -> httpx.Auth:
    return BasicTokenAuth(token)


def _query(config: QueryAuth, token: str) -> httpx.Auth:
    return QueryTokenAuth(token, config.query_param)


def _bearer(config: BearerAuth, token: str) -> httpx.Auth:
    return HeaderTokenAuth(token, "Authorization", "Bearer ")


def _header(config: HeaderAuth, token: str) -> httpx.Auth:
    return HeaderTokenAuth(token, config.header, config.prefix)


# auth type (definition.AUTH_TYPES) -> how its credential is put on a request
AUTH_BUILDERS: dict[type[AuthCommon], Callable[[Any, str], httpx.Auth]] = {
    BasicAuth: _basic,
    QueryAuth: _query,
    BearerAuth: _bearer,
    HeaderAuth: _header,
}


def build_auth(config: AuthCommon, token: str) -> httpx.Auth:
    if not token:
        raise ValueError("empty credential: the connection has no token stored")
    return AUTH_BUILDERS[type(config)](config, token)


SECRET_QUERY_PARAMS = frozenset({"api_token", "access_token", "token", "client_secret", "code", "private_key"})


def redact_url(url: str | httpx.URL) -> str:
    """A URL safe for logs and errors: secret-looking query values replaced."""
    parts = urlsplit(str(url))
    if not parts.query:
        return str(url)
    query = [(k, REDACTED if k.lower() in SECRET_QUERY_PARAMS else v) for k, v in parse_qsl(parts.query, True)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, safe="*"), parts.fragment))


# --- redaction of every credential the process knows -------------------------------------------
#
# URL-shaped redaction alone missed secrets a provider echoed back in other shapes (a relative
# `/api/reports/all?...&api_token=...` in an error body). So two layers: every secret value this
# process has handled (the store remembers each token and app secret it decrypts) is replaced
# wherever it appears, and secret-named parameters are blanked in any shape (query, form, JSON).

_NAMES = SECRET_QUERY_PARAMS | {"access_code", "api_key", "source_token", "session"}
_PARAM_NAMES = "|".join(sorted(_NAMES, key=len, reverse=True))
_JSON_NAMES = "|".join(sorted(_NAMES - {"code", "session"}, key=len, reverse=True))  # "code" is often an error code
_PARAM_RE = re.compile(rf"(?i)(?<![A-Za-z0-9_])({_PARAM_NAMES})(=|%3D)([^&\s'\"<>#;,)\]}}]+)")
_JSON_RE = re.compile(rf'(?i)("(?:{_JSON_NAMES})"\s*:\s*")((?:[^"\\]|\\.)+)(")')


class SecretRedactor:
    """The credential values this process has seen, replaced wherever they appear in text.

    Values shorter than MIN_LENGTH are not remembered (they would blank ordinary words);
    at most MAX_VALUES are kept, oldest dropped first, so a long-running web app stays bounded.
    """

    MIN_LENGTH = 8
    MAX_VALUES = 4096

    def __init__(self) -> None:
        self._values: dict[str, None] = {}
        self._ordered: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def remember(self, *values: str | None) -> None:
        fresh = [v for v in values if v and len(v) >= self.MIN_LENGTH and v not in self._values]
        if not fresh:
            return
        with self._lock:
            for value in fresh:
                for form in {value, quote(value, safe=""), quote_plus(value, safe="")}:
                    self._values[form] = None
            while len(self._values) > self.MAX_VALUES:
                self._values.pop(next(iter(self._values)))
            # longest first, so a secret that contains another is blanked whole
            self._ordered = tuple(sorted(self._values, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for value in self._ordered:
            if value in text:
                text = text.replace(value, REDACTED)
        text = _PARAM_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        return _JSON_RE.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", text)


_REDACTOR = SecretRedactor()


def remember_secret(*values: str | None) -> None:
    """Tell the process-wide redactor about credential values (the store calls this on decrypt)."""
    _REDACTOR.remember(*values)


def redact_text(text: str) -> str:
    """`text` with every known credential and every secret-named parameter value replaced by ***."""
    return _REDACTOR.redact(text) if text else text


_STRUCTURED_ARGS = frozenset({"uvicorn.access"})


def _redacting_record_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name in _STRUCTURED_ARGS and isinstance(record.args, tuple):
            # formatters that unpack args (uvicorn's access log) keep their shape
            record.args = tuple(redact_text(a) if isinstance(a, str) else a for a in record.args)
        else:
            try:
                message = record.getMessage()
            except Exception:  # a broken format string: logging reports it at emit time, as usual
                return record
            record.msg, record.args = redact_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return record

    factory.screensync_redacting = True  # type: ignore[attr-defined]
    return factory


def install_log_redaction() -> None:
    """Redact every log record this process creates, whichever logger or handler (Prefect's API
    handler included) it goes to. Defence in depth: messages are redacted at their source too."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "screensync_redacting", False):
        logging.setLogRecordFactory(_redacting_record_factory(current))


install_log_redaction()
