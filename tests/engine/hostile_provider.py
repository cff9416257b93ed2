"""A hostile provider: Checkr's shapes on real loopback HTTP, with one thing wrong at a time.

Serves `/v1/account`, `/v1/candidates` (newest first, `include=reports`, `created_after`,
`next_href`, `count`), `/v1/candidates/{id}`, `/v1/reports/{id}`, `/v1/packages(/{id})`,
`/v1/invitations(/{id})` and `/v1/invoices`, so the real `checkr` definition syncs from it
through a connection's base-URL override. A test sets the fault attributes (one at a time),
runs syncs, and compares the warehouse with `truth()` — what the provider holds without
faults. Bodies are written with Python's `json` (`ensure_ascii`), the only way to send a lone
surrogate escape such as `"\\ud800"`, which Python's parser accepts and orjson rejects.
"""

from __future__ import annotations

import base64
import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.asgi_server import serve_asgi

TOKEN = "hostile_test_key_0123456789"
CONN = "hostile-1"  # the connection tests store for it
EPOCH = datetime(2024, 3, 1, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Faults:
    """What to break. Every field off is a well-behaved provider."""

    runaway: bool = False  # pages keep coming after the last one (the declared count stays)
    non_object_at: int | None = None  # this position of the candidates list is not an object
    surrogate_id: str | None = None  # this candidate's first_name is a lone surrogate
    huge_id: str | None = None  # this candidate's first_name is `huge_bytes` long
    huge_bytes: int = 8 * 1024 * 1024
    missing_created_every: int | None = None  # every Nth candidate lacks its required created_at
    epoch_id: str | None = None  # this candidate's created_at is an integer epoch
    empty_id_at: int | None = None  # this position of the candidates list has id ""
    nan_id: str | None = None  # this candidate carries `"score": NaN` (not JSON; Python's json writes it)
    bigint_id: str | None = None  # this candidate's report has a turnaround_time beyond 64 bits
    broken_packages: set[str] = field(default_factory=set)  # these packages lack their required name
    non_object_package: bool = False  # the packages list ends with a bare string
    latency_s: float = 0.0  # added to every list page


class HostileProvider:
    def __init__(self, candidates: int = 300, packages: int = 12) -> None:
        self.faults = Faults()
        self.n_candidates = candidates
        self.n_packages = packages
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self.base = ""
        self.app = Starlette(
            routes=[
                Route("/v1/account", self.account),
                Route("/v1/candidates", self.candidates),
                Route("/v1/candidates/{id}", self.candidate),
                Route("/v1/reports/{id}", self.report),
                Route("/v1/packages", self.packages),
                Route("/v1/packages/{id}", self.package),
                Route("/v1/invitations", self.empty_list),
                Route("/v1/invoices", self.empty_list),
            ]
        )

    # ---- the truth ------------------------------------------------------------------------
    def candidate_ids(self) -> list[str]:
        return [f"cand_{i:04d}" for i in range(self.n_candidates)]

    def _report(self, i: int) -> dict[str, Any]:
        created = EPOCH + timedelta(minutes=i)
        return {
            "id": f"rep_{i:04d}", "object": "report", "candidate_id": f"cand_{i:04d}", "package": "basic",
            "status": "complete", "result": "clear", "created_at": _iso(created),
            "completed_at": _iso(created + timedelta(hours=2)),
        }

    def _candidate(self, i: int, *, faults: bool = True) -> Any:
        rec: dict[str, Any] = {
            "id": f"cand_{i:04d}", "object": "candidate", "created_at": _iso(EPOCH + timedelta(minutes=i)),
            "first_name": f"First{i}", "last_name": f"Last{i}", "email": f"c{i}@example.com",
            "report_ids": [f"rep_{i:04d}"],
        }
        if not faults:
            return rec
        f = self.faults
        if f.surrogate_id == rec["id"]:
            rec["first_name"] = "\ud800"
        if f.huge_id == rec["id"]:
            rec["first_name"] = "x" * f.huge_bytes
        if f.missing_created_every and (i + 1) % f.missing_created_every == 0:
            del rec["created_at"]
        if f.epoch_id == rec["id"]:
            rec["created_at"] = int((EPOCH + timedelta(minutes=i)).timestamp())
        if f.nan_id == rec["id"]:
            rec["score"] = float("nan")
        return rec

    def truth(self) -> dict[str, dict[str, Any]]:
        """What the provider holds, without faults: candidates (reports stripped) and reports by id."""
        cands = {f"cand_{i:04d}": self._candidate(i, faults=False) for i in range(self.n_candidates)}
        reports = {f"rep_{i:04d}": self._report(i) for i in range(self.n_candidates)}
        return {"candidates": cands, "reports": reports}

    def _package(self, i: int) -> dict[str, Any]:
        pid = f"pkg_{i:02d}"
        rec = {"id": pid, "object": "package", "name": f"Package {i}", "slug": f"package_{i}", "price": 1000 + i}
        if pid in self.faults.broken_packages:
            del rec["name"]
        return rec

    # ---- HTTP -----------------------------------------------------------------------------
    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()

    def _count(self, key: str) -> None:
        with self._lock:
            self.hits[key] = self.hits.get(key, 0) + 1

    @staticmethod
    def _json(body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body).encode(), status, media_type="application/json")

    def _guard(self, request: Request, key: str) -> Response | None:
        self._count(key)
        if not self._authorized(request):
            return self._json({"error": "Bad authentication error"}, 401)
        return None

    async def account(self, request: Request) -> Response:
        return self._guard(request, "account") or self._json({"id": "acct_hostile", "object": "account",
                                                               "name": "Hostile Inc"})

    async def empty_list(self, request: Request) -> Response:
        return self._guard(request, request.url.path) or self._json({"data": [], "next_href": None, "count": 0})

    def _with_reports(self, request: Request, i: int, rec: Any) -> Any:
        if isinstance(rec, dict) and "reports" in request.query_params.get("include", ""):
            report = self._report(i)
            if self.faults.bigint_id == rec["id"]:
                report["turnaround_time"] = 2**70
            rec = {**rec, "reports": [report]}
        return rec

    async def candidates(self, request: Request) -> Response:
        denied = self._guard(request, "candidates")
        if denied:
            return denied
        if self.faults.latency_s:
            import asyncio

            await asyncio.sleep(self.faults.latency_s)
        q = request.query_params
        page, per_page = int(q.get("page", "1")), int(q.get("per_page", "100"))
        after = q.get("created_after")
        order = list(range(self.n_candidates - 1, -1, -1))  # newest first, as Checkr lists
        if after:
            cutoff = datetime.fromisoformat(after.replace("Z", "+00:00"))
            order = [i for i in order if EPOCH + timedelta(minutes=i) > cutoff]
        count = len(order)
        last_page = max(1, math.ceil(count / per_page))
        start = (page - 1) * per_page
        data: list[Any] = []
        for pos in range(start, min(start + per_page, count)):
            i = order[pos]
            rec = self._with_reports(request, i, self._candidate(i))
            if self.faults.non_object_at == pos:
                rec = "not-a-candidate"
            if self.faults.empty_id_at == pos and isinstance(rec, dict):
                rec = {**rec, "id": ""}
            data.append(rec)
        if self.faults.runaway and page > last_page:
            data = [{**self._candidate(0, faults=False), "id": f"cand_extra_{page}_{j}"} for j in range(per_page)]
        more = page < last_page or self.faults.runaway
        nxt = str(request.url.include_query_params(page=page + 1, per_page=per_page)) if more else None
        return self._json({"object": "list", "data": data, "next_href": nxt, "count": count})

    async def candidate(self, request: Request) -> Response:
        denied = self._guard(request, "candidate")
        if denied:
            return denied
        cid = request.path_params["id"]
        if cid not in self.candidate_ids():
            return self._json({"error": "Not found"}, 404)
        i = int(cid.split("_")[1])
        return self._json(self._with_reports(request, i, self._candidate(i)))

    async def report(self, request: Request) -> Response:
        denied = self._guard(request, "report")
        if denied:
            return denied
        rid = request.path_params["id"]
        i = int(rid.split("_")[1]) if rid.startswith("rep_") and rid[4:].isdigit() else -1
        if not 0 <= i < self.n_candidates:
            return self._json({"error": "Not found"}, 404)
        return self._json(self._report(i))

    async def packages(self, request: Request) -> Response:
        denied = self._guard(request, "packages")
        if denied:
            return denied
        data: list[Any] = [self._package(i) for i in range(self.n_packages)]
        if self.faults.non_object_package:
            data.append("not-a-package")
        return self._json({"object": "list", "data": data, "next_href": None, "count": len(data)})

    async def package(self, request: Request) -> Response:
        denied = self._guard(request, "package")
        if denied:
            return denied
        pid = request.path_params["id"]
        ids = {f"pkg_{i:02d}": i for i in range(self.n_packages)}
        if pid not in ids:
            return self._json({"error": "Not found"}, 404)
        return self._json(self._package(ids[pid]))


@contextmanager
def serve_hostile(**kw: Any) -> Iterator[HostileProvider]:
    provider = HostileProvider(**kw)
    with serve_asgi(provider.app) as base:
        provider.base = base
        yield provider


def add_connection(store: Any, base: str, *, integration: str = "checkr", connection_id: str = CONN) -> None:
    """Store a connection of `integration` whose API is the hostile provider at `base`."""
    from connections.models import Connection, ConnectionMetadata, Credentials

    store.add(
        Connection(connection_id=connection_id, integration=integration, credential_kind="api_key",
                   metadata=ConnectionMetadata(base_url=base, environment="sandbox")),
        Credentials(token=TOKEN),
    )
