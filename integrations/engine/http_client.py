"""The HTTP client every sync and action uses: auth → rate limiter → retries, with timeouts.

One httpx.Client per ProviderClient (keep-alive). Absolute URLs must stay on the API's
origin: a next link to another host is refused before anything, credentials included, is sent.
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from integrations.engine import malloc_tuning  # noqa: F401  (its thresholds follow slow_provider's finding)
from integrations.engine.auth import redact_text, redact_url
from integrations.engine.concurrency import controller_for
from integrations.engine.definition import ErrorsConfig, RateLimitConfig
from integrations.engine.errors import (
    AuthFailed,
    ForeignHostError,
    MalformedResponse,
    ProviderError,
    RetriesExhausted,
)
from integrations.engine.rate_limiter import limiter_for
from integrations.engine.responses import Outcome, classify
from integrations.engine.retries import RetryPolicy
from integrations.engine.slow_provider import note_answer

log = logging.getLogger("screensync.http")

MALFORMED_TRIES = 3  # a page that is garbled this many times in a row is not transient


@dataclass
class RequestStats:
    requests: int = 0  # every attempt sent
    retries: int = 0
    rate_limited: int = 0  # 429s seen
    waited_s: float = 0.0  # pacing + backoff
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, requests: int = 0, retries: int = 0, rate_limited: int = 0, waited_s: float = 0.0) -> None:
        """Counted from several fetch threads at once (fetch_ahead.py)."""
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.rate_limited += rate_limited
            self.waited_s += waited_s


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def message_at(body: Any, path: str | None) -> str:
    """The human message in an error body, per the definition's `errors.message_path`."""
    if path is None:
        return ""
    node = body
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return ""
        node = node[part]
    if isinstance(node, list):
        return "; ".join(str(x) for x in node)
    return str(node)


_ssl_lock = threading.Lock()
_ssl: list[ssl.SSLContext] = []  # made once per process


def _new_lock_in_child() -> None:
    """A process forked while the warm-up held the lock would wait for it forever."""
    global _ssl_lock
    _ssl_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)


def _ssl_context() -> ssl.SSLContext:
    """httpx's default verification context, made once per process: loading the CA bundle took
    ~50 ms per client, ~10% of a small connection's sync (bench/connection_overhead.py). Under a
    lock, so the syncs of a run starting together wait for one instead of each making its own."""
    with _ssl_lock:
        if not _ssl:
            _ssl.append(httpx.create_ssl_context())
        return _ssl[0]


def _warm_up() -> None:
    """The TLS context, and httpx's transport module (httpcore, imported at the first client)."""
    try:
        httpx.Client(verify=_ssl_context()).close()
    except Exception as exc:  # only an optimisation: the first client makes them, and says what is wrong
        log.debug("warming up the HTTP client failed: %s", exc)


# In the background from import on: a run's first clients waited 0.2-0.25 s for both on a loaded
# machine (every sync's first request of a `screensync sync` at once); loading the CA bundle lets
# go of the GIL, so the process's start-up (store, warehouse, stored positions) goes on meanwhile.
WARMING = threading.Thread(target=_warm_up, name="screensync-http-warm-up", daemon=True)
WARMING.start()


class ProviderClient:
    def __init__(
        self,
        *,
        integration: str,
        connection_id: str,
        api_base: str,
        auth: httpx.Auth | None,
        rate_limit: RateLimitConfig,
        credential_fingerprint: str,
        errors: ErrorsConfig,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = "screensync/0.1",
    ) -> None:
        self.integration = integration
        self.connection_id = connection_id
        self.api_base = api_base.rstrip("/")
        self.errors = errors
        self.retry = retry or RetryPolicy()
        self.rate_limit = rate_limit
        self.limiter = limiter_for(integration, credential_fingerprint, rate_limit)
        # how many requests of this credential may be in flight at once (fetch_ahead.py uses it)
        self.concurrency = controller_for(integration, credential_fingerprint, rate_limit.concurrency.max,
                                          rate_limit.concurrency.initial)
        self.stats = RequestStats()
        self._sleep = time.sleep  # one place to wait, so the retry loop stays easy to follow
        self._origin = _origin(self.api_base)
        self._http = httpx.Client(
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            transport=transport,
            verify=_ssl_context(),
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            follow_redirects=False,
        )

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def url_for(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            if _origin(path_or_url) != self._origin:
                raise ForeignHostError(
                    f"{self.integration} connection {self.connection_id!r}: refusing to follow "
                    f"{redact_url(path_or_url)}: it is not on the API origin {self.api_base}; nothing was sent"
                )
            return path_or_url
        return f"{self.api_base}/{path_or_url.lstrip('/')}"

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send with pacing and retries; return a response below 300 or raise an EngineError."""
        url = self.url_for(path_or_url)

        def shown() -> str:  # only when something goes wrong: parsing URLs again costs on every page
            # built before auth adds a token (query-token auth puts it in the URL)
            return redact_url(httpx.URL(url).copy_merge_params(params or {}))

        def what() -> str:
            return f"{self.integration} connection {self.connection_id!r}: {method} {shown()}"

        waited = 0.0
        last_error = ""
        attempt = 0
        while True:
            attempt += 1
            paced = self.limiter.acquire()
            self.stats.add(requests=1, waited_s=paced)
            sent = time.monotonic()
            try:
                response = self._http.request(method, url, params=params, json=json, data=data, headers=headers)
                response.read()
                # httpx keeps a response and its stream in a reference cycle, so a page's body
                # waited for the cycle collector; read and closed, the stream is not needed again
                response.stream = httpx.ByteStream(b"")
            except httpx.TransportError as exc:
                self.concurrency.congested(sent)
                last_error = f"{type(exc).__name__}: {scrub(str(exc)) or 'no detail'}"
                delay = self.retry.backoff(attempt)
            else:
                self.limiter.observe(response.status_code, response.headers)
                status = response.status_code
                verdict = classify(response, self.rate_limit)
                if verdict.outcome is Outcome.RETRY:
                    self.concurrency.congested(sent)
                else:
                    latency = time.monotonic() - sent
                    self.concurrency.answered(latency, limiter_wait_s=paced, started=sent)
                    note_answer(latency)
                if verdict.outcome is Outcome.OK:
                    return response
                if verdict.outcome is Outcome.AUTH_FAILED:
                    raise AuthFailed(self.integration, self.connection_id, status, self._message(response))
                if verdict.outcome is Outcome.REDIRECT:
                    where = redact_url(response.headers.get("Location", "")) or "nowhere"
                    raise ProviderError(
                        self.integration, self.connection_id, status, f"redirect to {where} not followed", shown()
                    )
                if verdict.outcome is Outcome.FATAL:
                    raise ProviderError(self.integration, self.connection_id, status, self._message(response), shown(),
                                        date=response.headers.get("date"))
                last_error = f"HTTP {status} {self._message(response)}".strip()
                delay = verdict.wait if verdict.wait is not None else self.retry.backoff(attempt)
                if status == 429:
                    self.stats.add(rate_limited=1)
                    self.limiter.pause_for(delay)  # everyone on this credential holds off, not just us
            if attempt >= self.retry.max_attempts or waited + delay > self.retry.max_total_wait:
                raise RetriesExhausted(what(), attempt, waited, last_error)
            log.info("%s: %s; retry %d in %.2fs", what(), last_error, attempt, delay)
            self.stats.add(retries=1, waited_s=delay)
            self._sleep(delay)
            waited += delay

    def _message(self, response: httpx.Response) -> str:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return scrub(response.text[:200])
        return scrub(message_at(body, self.errors.message_path)[:500])

    def get_json(self, path_or_url: str, *, params: dict[str, Any] | None = None) -> tuple[Any, httpx.Response]:
        """GET and parse. A body that is not JSON (garbled by a proxy, cut off) is fetched again
        a few times with backoff, like a 5xx: it is usually a transient upstream fault."""
        tries = min(MALFORMED_TRIES, self.retry.max_attempts)
        last = ""
        for attempt in range(1, tries + 1):
            response = self.request("GET", path_or_url, params=params)
            body, last = _parsed(response.content)
            if body is not _NOT_JSON:
                return body, response
            if attempt < tries:
                delay = self.retry.backoff(attempt)
                log.info(
                    "%s connection %r: malformed JSON from %s (%s); fetching again in %.2fs",
                    self.integration,
                    self.connection_id,
                    self._shown(path_or_url, params),
                    last,
                    delay,
                )
                self.stats.add(retries=1, waited_s=delay)
                self._sleep(delay)
        raise MalformedResponse(
            f"{self.integration} connection {self.connection_id!r}: {self._shown(path_or_url, params)}"
            f" returned a body that is not JSON {tries} times in a row ({last})"
        )

    def json_of(self, response: httpx.Response, path_or_url: str, *,
                params: dict[str, Any] | None = None) -> tuple[Any, httpx.Response]:
        """The body of a GET already answered (a page fetched ahead, kept as bytes until its turn:
        a parsed page is ~3x its JSON); one that is not JSON is fetched again as `get_json` does."""
        body, _ = _parsed(response.content)
        return (body, response) if body is not _NOT_JSON else self.get_json(path_or_url, params=params)

    def _shown(self, path_or_url: str, params: dict[str, Any] | None) -> str:
        return redact_url(httpx.URL(self.url_for(path_or_url)).copy_merge_params(params or {}))


class JSONConstant:
    """`NaN`/`Infinity` in a body: not JSON, so the record holding it is quarantined (orjson
    cannot serialise this), never stored as null or as text."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __str__(self) -> str:
        return self.token


_NOT_JSON = object()


def _parsed(content: bytes) -> tuple[Any, str]:
    """The body as JSON (NaN/Infinity kept as JSONConstant), else _NOT_JSON and orjson's reason."""
    try:
        return orjson.loads(content), ""
    except orjson.JSONDecodeError as exc:
        return lenient_json(content), str(exc)


def lenient_json(content: bytes) -> Any:
    """Python's parser, for a body orjson refused: it also reads lone surrogate escapes
    (`"\\ud800"`) and NaN, which are then quarantined with their record (validation.py)
    instead of failing the whole page. `_NOT_JSON` when it is not JSON at all."""
    try:
        return json.loads(content, parse_constant=JSONConstant)
    except (ValueError, RecursionError):
        return _NOT_JSON


_URL_RE = re.compile(r"https?://[^\s'\"<>]+")


def scrub(text: str) -> str:
    """Redact secret query values in any URL, and every known credential, in provider or transport messages."""
    return redact_text(_URL_RE.sub(lambda m: redact_url(m.group(0)), text))


class RedactingFilter(logging.Filter):
    """httpx logs every request's full URL at INFO, and query-token auth puts the token there."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(scrub(str(a)) if isinstance(a, str | httpx.URL) else a for a in args)
        record.msg = scrub(str(record.msg))
        return True


def install_redaction(*names: str) -> None:
    """Idempotent: put the redacting filter on each named logger once."""
    for name in names:
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())


install_redaction("httpx", "httpcore")
