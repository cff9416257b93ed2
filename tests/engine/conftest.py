"""Engine test helpers: a temp connection store and warehouse wired to the sandbox, and a
misbehaving fake provider on real loopback HTTP for the HTTP-layer tests."""

from __future__ import annotations

import asyncio
import base64
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from integrations.engine.definition import RateLimitConfig
from tests.support.asgi_server import serve_asgi
from tests.support.warehouse_target import WarehouseTarget

SANDBOX_KEY = {"checkr": "checkr", "checkr-partner-staging": "checkr_staging", "clearchecks": "clearchecks"}


@dataclass
class Env:
    store: Any
    db: WarehouseTarget  # a DuckDB file, or a DuckLake URL for `both_backends` tests (tests/support/warehouse_target.py)

    def connect(self, sandbox: Any, integration: str, connection_id: str, account: int = 0) -> str:
        """Store a connection for sandbox account #`account` (direct API key / api_token)."""
        from connections.models import Connection, ConnectionMetadata, Credentials

        section = sandbox.info[SANDBOX_KEY[integration]]
        acct = section["accounts"][account]
        token = acct.get("api_key") or acct.get("api_token")
        self.store.add(
            Connection(
                connection_id=connection_id,
                integration=integration,
                credential_kind="api_key",
                metadata=ConnectionMetadata(
                    base_url=section["base_url"],
                    environment="sandbox",
                    provider_account_id=acct.get("id") if "api_key" in acct else None,
                ),
            ),
            Credentials(token=token),
            replace=True,
        )
        return str(acct["id"])

    def sync(self, integration: str, connection_id: str, sync: str, **kw: Any) -> Any:
        from integrations.engine.sync_runner import run_sync
        from warehouse.loader import Warehouse

        with Warehouse(self.db) as wh:
            return run_sync(integration, connection_id, sync, warehouse=wh, store=self.store, **kw)

    def sync_all(self, integration: str, connection_id: str, **kw: Any) -> list[Any]:
        from integrations.engine.registry import get_integration

        return [
            self.sync(integration, connection_id, s.name, **kw) for s in get_integration(integration).definition.syncs
        ]

    def hours_pass(self, hours: float) -> None:
        """This machine's clock moves on for the warehouse (due-based re-polls): tests/support/clock.py."""
        from tests.support.clock import hours_pass

        hours_pass(self.db, hours)

    def exists(self) -> bool:
        """Has a writer created the warehouse yet (a lake's catalog always exists)?"""
        from warehouse.read import warehouse_exists

        return warehouse_exists(self.db)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        from warehouse.read import query

        return query(sql, path=self.db)

    def raws(self, schema: str, table: str, connection_id: str) -> dict[str, Any]:
        """id -> stored raw record, for rows not soft-deleted."""
        rows = self.rows(
            f"SELECT id, _raw FROM {schema}.{table} WHERE connection_id = '{connection_id}' AND _deleted_at IS NULL"
        )
        return {rid: orjson.loads(raw) for rid, raw in rows}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warehouse_target: WarehouseTarget) -> Iterator[Env]:
    from connections.store import open_store

    monkeypatch.setenv("SCREENSYNC_CONNECTIONS", str(tmp_path / "connections.sqlite"))
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY", Fernet.generate_key().decode())
    yield Env(store=open_store(), db=warehouse_target)


def without(record: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in keys}


def ratelimit_headers_config(
    requests: int, per_seconds: int, reset_format: Literal["iso8601", "epoch_seconds", "delta_seconds"] = "iso8601"
) -> RateLimitConfig:
    """A declared limit read from Checkr's header names (the fake provider and the sandbox send them)."""
    return RateLimitConfig(
        requests=requests,
        per_seconds=per_seconds,
        limit_header="X-Ratelimit-Limit",
        remaining_header="X-Ratelimit-Remaining",
        reset_header="X-Ratelimit-Reset",
        reset_format=reset_format,
    )


# ---- HTTP-layer tests: a misbehaving provider on real loopback HTTP ----
# Each route reproduces one thing real providers do (429s, 5xx bursts, cut-off bodies, garbled
# JSON, revoked keys, dishonest pagination). Per-`key` counters let a test script "fail N times,
# then succeed" without sharing state with other tests.

TOKEN = "sk_test_fake_provider_secret_123"
ITEMS = [{"id": f"item_{i:03d}", "n": i} for i in range(25)]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, "application/json")


class CutOffResponse(Response):
    """Announces the full Content-Length, sends half, then stops: a connection dropped mid-body."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})


class FakeProvider:
    """The app plus what it saw: hits per route key, and the credentials that came with them."""

    def __init__(self, window_limit: int = 10, window_s: float = 2.0) -> None:
        self.hits: Counter[str] = Counter()
        self.credentials: list[str] = []
        self.lock = threading.Lock()
        self.window_limit, self.window_s = window_limit, window_s
        self._windows: dict[float, int] = {}
        self.limited_429s = 0
        self.base = ""  # set once serving
        self.app = Starlette(routes=[Route("/v1/{name}", self.dispatch, methods=["GET", "POST"])])

    def count(self, request: Request) -> int:
        """Hits so far for this route + `key`, this one included."""
        key = f"{request.path_params['name']}:{request.query_params.get('key', '')}"
        with self.lock:
            self.hits[key] += 1
            auth = request.headers.get("authorization") or request.query_params.get("api_token") or ""
            self.credentials.append(auth)
            return self.hits[key]

    def authorized(self, request: Request) -> bool:
        basic = "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()
        return (
            request.headers.get("authorization") in (basic, f"Bearer {TOKEN}")
            or request.headers.get("x-api-key") == f"key {TOKEN}"
            or request.query_params.get("api_token") == TOKEN
        )

    async def dispatch(self, request: Request) -> Response:
        name = request.path_params["name"]
        n = self.count(request)
        if not self.authorized(request):
            return _json({"error": "Bad authentication error"}, 401)
        handler = getattr(self, f"r_{name.replace('-', '_')}", None)
        if handler is None:
            # echoes the URL (token included, as some providers do): the client must redact it
            return _json({"error": f"no route for {request.url}"}, 404)
        return await handler(request, n)

    # ---- plain answers ----
    async def r_items(self, request: Request, n: int) -> Response:
        return _json({"data": ITEMS[:5], "count": 5})

    async def r_account(self, request: Request, n: int) -> Response:
        return _json({"id": "acct_1", "name": "Fake"})

    async def r_forbidden(self, request: Request, n: int) -> Response:
        return _json({"error": "This token lacks the candidates scope"}, 403)

    async def r_invalid(self, request: Request, n: int) -> Response:
        return _json({"error": ["email is invalid", "zipcode is required"]}, 422)

    async def r_redirect(self, request: Request, n: int) -> Response:
        return Response(b"", 302, {"Location": f"http://elsewhere.invalid/login?api_token={TOKEN}"})

    async def r_wrong_shape(self, request: Request, n: int) -> Response:
        return _json({"data": {"id": "not-a-list"}})

    # ---- retryable trouble, `fail` times then fine ----
    def _fails(self, request: Request, n: int) -> bool:
        return n <= int(request.query_params.get("fail", "1"))

    async def r_flaky(self, request: Request, n: int) -> Response:
        status = int(request.query_params.get("status", "503"))
        return _json({"error": "upstream down"}, status) if self._fails(request, n) else _json({"data": ITEMS[:2]})

    async def r_retry_after(self, request: Request, n: int) -> Response:
        if self._fails(request, n):
            return _json({"error": "slow down"}, 429, {"Retry-After": "1"})
        return _json({"data": ITEMS[:2]})

    async def r_retry_after_date(self, request: Request, n: int) -> Response:
        if self._fails(request, n):
            return _json({"error": "slow down"}, 429, {"Retry-After": formatdate(time.time() + 2, usegmt=True)})
        return _json({"data": ITEMS[:2]})

    async def r_window_used_up(self, request: Request, n: int) -> Response:
        """Checkr-style: 429, nothing remaining, ISO reset (to the second) just ahead."""
        if self._fails(request, n):
            reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.floor(time.time()) + 1))
            headers = {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": reset, "X-Ratelimit-Limit": "600"}
            return _json({"error": "Too Many Requests"}, 429, headers)
        return _json({"data": ITEMS[:2]})

    async def r_burst_429(self, request: Request, n: int) -> Response:
        """429 with quota left and the window's reset a minute away: not a reason to wait a minute."""
        if self._fails(request, n):
            reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
            headers = {"X-Ratelimit-Remaining": "500", "X-Ratelimit-Reset": reset, "X-Ratelimit-Limit": "600"}
            return _json({"error": "Too Many Requests"}, 429, headers)
        return _json({"data": ITEMS[:2]})

    async def r_cut_off(self, request: Request, n: int) -> Response:
        body = orjson.dumps({"data": ITEMS})
        return (
            CutOffResponse(body, 200, media_type="application/json")
            if self._fails(request, n)
            else _json({"data": ITEMS})
        )

    async def r_garbled(self, request: Request, n: int) -> Response:
        if self._fails(request, n):
            return Response(b'{"data": [{"id": "a"},, <!-- proxy error -->', 200, media_type="application/json")
        return _json({"data": ITEMS[:3]})

    async def r_slow(self, request: Request, n: int) -> Response:
        await asyncio.sleep(float(request.query_params.get("seconds", "3")))
        return _json({"data": []})

    # ---- a short fixed window, like the providers' per-minute ones but quick to test ----
    async def r_windowed(self, request: Request, n: int) -> Response:
        now = time.time()
        start = now - (now % self.window_s)
        with self.lock:
            used = self._windows.get(start, 0) + 1
            self._windows[start] = used
        remaining = max(0, self.window_limit - used)
        headers = {
            "X-Ratelimit-Limit": str(self.window_limit),
            "X-Ratelimit-Remaining": str(remaining),
            "X-Ratelimit-Reset": f"{start + self.window_s:.3f}",
        }
        if used > self.window_limit:
            with self.lock:
                self.limited_429s += 1
            return _json({"error": "Too Many Requests"}, 429, headers)
        return _json({"data": [{"id": f"w{n}"}]}, 200, headers)

    # ---- pagination: next links (Checkr-like) ----
    def _page(self, request: Request, pages: int, per: int = 10) -> tuple[int, list[dict[str, Any]]]:
        page = int(request.query_params.get("page", "1"))
        return page, ITEMS[(page - 1) * per : page * per] if page <= pages else []

    def _link(self, request: Request, page: int) -> str:
        return str(request.url.remove_query_params("api_token").include_query_params(page=page))

    async def r_linked(self, request: Request, n: int) -> Response:
        page, data = self._page(request, 3)
        nxt = self._link(request, page + 1) if page < 3 else None
        return _json({"data": data, "next_href": nxt, "count": len(ITEMS)})

    async def r_echo_token(self, request: Request, n: int) -> Response:
        """Next links that carry the caller's api_token, as some providers' do."""
        page, data = self._page(request, 3)
        nxt = str(request.url.include_query_params(page=page + 1)) if page < 3 else None
        return _json({"data": data, "next_href": nxt, "count": len(ITEMS)})

    async def r_foreign(self, request: Request, n: int) -> Response:
        foreign = request.query_params["to"]
        return _json({"data": ITEMS[:10], "next_href": f"{foreign}/v1/linked?page=2", "count": len(ITEMS)})

    async def r_looping(self, request: Request, n: int) -> Response:
        """Page 3's next link is page 2's URL again."""
        page, data = self._page(request, 3)
        return _json({"data": data, "next_href": self._link(request, 2 if page == 3 else page + 1), "count": 25})

    async def r_same_ids(self, request: Request, n: int) -> Response:
        page = int(request.query_params.get("page", "1"))
        return _json({"data": ITEMS[:10], "next_href": self._link(request, page + 1), "count": 25})

    async def r_runaway(self, request: Request, n: int) -> Response:
        page = int(request.query_params.get("page", "1"))
        data = [{"id": f"r_{page}_{i}"} for i in range(10)]
        return _json({"data": data, "next_href": self._link(request, page + 1), "count": 25})

    # ---- pagination: page numbers (ClearChecks-like) ----
    async def r_numbered(self, request: Request, n: int) -> Response:
        per = int(request.query_params.get("per_page", "10"))
        page = int(request.query_params.get("page", "1"))
        last = math.ceil(len(ITEMS) / per)
        data = ITEMS[(page - 1) * per : page * per]
        nxt = str(request.url.include_query_params(page=page + 1)) if page < last else None
        body = {"data": data, "total": len(ITEMS), "last_page": last, "next_page_url": nxt, "current_page": page}
        return _json(body)

    # ---- pagination: offsets and opaque cursors ----
    async def r_offset(self, request: Request, n: int) -> Response:
        start, limit = int(request.query_params.get("offset", "0")), int(request.query_params.get("limit", "10"))
        return _json({"results": ITEMS[start : start + limit], "total": len(ITEMS)})

    async def r_cursored(self, request: Request, n: int) -> Response:
        """The cursor is the next index, base64-wrapped so it is opaque; filters must come back with it."""
        if request.query_params.get("status") != "clear":
            return _json({"error": "filter lost"}, 422)
        start = int(base64.b64decode(request.query_params["after"]).decode()) if "after" in request.query_params else 0
        limit = int(request.query_params.get("limit", "10"))
        end = start + limit
        more = end < len(ITEMS)
        cursor = base64.b64encode(str(end).encode()).decode() if more else None
        return _json({"items": ITEMS[start:end], "meta": {"next_cursor": cursor, "has_more": more}})

    async def r_numbered_open(self, request: Request, n: int) -> Response:
        """No last_page, no next URL: only an empty page says the list is over."""
        per = int(request.query_params.get("per_page", "10"))
        page = int(request.query_params.get("page", "1"))
        return _json({"data": ITEMS[(page - 1) * per : page * per]})


@pytest.fixture
def hostile(env: Env) -> Iterator[Any]:
    """A hostile Checkr-shaped provider (tests/engine/hostile_provider.py) and a `checkr` connection to it."""
    from tests.engine.hostile_provider import add_connection, serve_hostile

    with serve_hostile() as provider:
        add_connection(env.store, provider.base)
        yield provider


@pytest.fixture(scope="module")
def fake_provider() -> Iterator[FakeProvider]:
    """One FakeProvider per test module, serving on a free loopback port."""
    provider = FakeProvider()
    with serve_asgi(provider.app) as base:
        provider.base = base
        yield provider


@pytest.fixture(scope="module")
def foreign_provider() -> Iterator[FakeProvider]:
    """A second origin: a next link pointing here must never be requested."""
    provider = FakeProvider()
    with serve_asgi(provider.app) as base:
        provider.base = base
        yield provider
