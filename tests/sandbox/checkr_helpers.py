"""Shared bits for the Checkr sandbox tests: a webhook receiver on a real port and a few small helpers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.support.asgi_server import serve_asgi

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checkr"


def fixture(kind: str, name: str) -> Any:
    return json.loads((FIXTURES / kind / f"{name}.json").read_text())


class Receiver:
    """Records every POST; answers `fail_first` requests with 500 first (to exercise retries)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.url = ""

    async def hook(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        with self.lock:
            self.calls.append((dict(request.headers), body))
            if len(self.calls) <= self.fail_first:
                return PlainTextResponse("try again", status_code=500)
        return PlainTextResponse("ok")

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.calls]

    def wait_for(self, pred: Callable[[list[dict[str, Any]]], bool], what: str) -> list[dict[str, Any]]:
        """Delivery is asynchronous: wait until the condition holds (a generous deadline, not a timing check)."""
        deadline = time.monotonic() + 20
        while not pred(self.events()):
            assert time.monotonic() < deadline, f"never received {what}; got {[e['type'] for e in self.events()]}"
            time.sleep(0.02)
        return self.events()


@contextmanager
def receiver(fail_first: int = 0) -> Iterator[Receiver]:
    rec = Receiver(fail_first)
    app = Starlette(routes=[Route("/hook", rec.hook, methods=["POST"])])
    with serve_asgi(app) as base:
        rec.url = f"{base}/hook"
        yield rec


def control(server: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{server.info['control_url']}{path}", timeout=30, **kwargs)


def api(section: dict[str, Any], account: int = 0) -> httpx.Client:
    """A client for one sandbox account, authenticated the Checkr way (key as Basic username)."""
    key = section["accounts"][account]["api_key"]
    return httpx.Client(base_url=section["base_url"] + "/v1", auth=(key, ""), timeout=30)


def all_pages(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    url: str | None = client.build_request("GET", path, params={"per_page": 100, **params}).url.__str__()
    while url:
        body = client.get(url).raise_for_status().json()
        out += body["data"]
        url = body["next_href"]
    return out
