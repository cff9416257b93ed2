"""Paginators: dlt-shaped state machines, plus a checkpoint so a killed run resumes.

`iterate_pages` drives one and guards against providers that page forever: a next link
off the API origin, a URL requested twice, a page of ids seen before, or far more pages
than the declared total allows.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from integrations.engine.auth import SECRET_QUERY_PARAMS, redact_url
from integrations.engine.definition import (
    CursorPagination,
    NextLinkPagination,
    NoPagination,
    OffsetPagination,
    PageNumberPagination,
    PaginationCommon,
)
from integrations.engine.errors import MalformedResponse, PaginationLoopError, RunawayPaginationError
from integrations.engine.fetch_ahead import PagesAhead
from integrations.engine.http_client import ProviderClient
from integrations.engine.observed import provider_time

Request = tuple[str, dict[str, Any]]  # (path or absolute URL, query params)


@dataclass
class Page:
    number: int  # 1-based within this run (continues after a resume)
    url: str  # redacted
    records: list[Any]  # objects, normally; anything else is quarantined by validation
    total: int | None
    checkpoint: dict[str, Any] | None  # where the NEXT page starts; None after the last page
    observed_at: datetime | None = None  # when the provider produced it (its Date header): observed.py


_MISSING = object()


def _at(body: Any, path: str | None, *, missing: Any = None) -> Any:
    """The value at a dotted path (`meta.next`), or `missing` when the path is absent."""
    node = body
    for part in (path or "").split("."):
        if not part:
            continue
        if not isinstance(node, dict) or part not in node:
            return missing
        node = node[part]
    return node


def strip_secrets(url: str) -> str:
    """The URL without secret-looking query parameters (the auth layer adds its own)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [(k, v) for k, v in parse_qsl(parts.query, True) if k.lower() not in SECRET_QUERY_PARAMS]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))


class Paginator(Protocol):
    def init_request(self, path: str, params: dict[str, Any]) -> Request: ...
    def update_state(self, body: Any, records: list[Any]) -> None: ...
    def next_request(self) -> Request | None: ...
    def checkpoint(self) -> dict[str, Any] | None: ...
    def restore(self, checkpoint: dict[str, Any]) -> Request: ...
    def ahead(self, total: int | None, page_size: int, count: int) -> list[Request]: ...


def _last_page(total: int | None, page_size: int) -> int | None:
    return None if total is None else math.ceil(total / max(1, page_size))


class NextLinkPaginator:
    """The next page's absolute URL sits in the body (Checkr's `next_href`); it keeps the filters."""

    def __init__(self, config: NextLinkPagination) -> None:
        self.config = config
        self._next: str | None = None

    def init_request(self, path: str, params: dict[str, Any]) -> Request:
        params = dict(params)
        if self.config.page_size_param:
            params.setdefault(self.config.page_size_param, self.config.page_size)
        return path, params

    def update_state(self, body: Any, records: list[Any]) -> None:
        nxt = _at(body, self.config.next_path)
        # a provider echoing the token in its link must not get it into a stored checkpoint;
        # auth adds it back when the request is sent
        self._next = strip_secrets(str(nxt)) if nxt else None

    def next_request(self) -> Request | None:
        return (self._next, {}) if self._next else None

    def checkpoint(self) -> dict[str, Any] | None:
        return {"next_url": self._next} if self._next else None

    def restore(self, checkpoint: dict[str, Any]) -> Request:
        return str(checkpoint["next_url"]), {}

    def ahead(self, total: int | None, page_size: int, count: int) -> list[Request]:
        """The next link and the `count - 1` after it, numbered by the declared `page_param`, up to
        the last page the total implies; nothing when the link does not number its pages."""
        param, last = self.config.page_param, _last_page(total, page_size)
        if self._next is None or param is None or last is None:
            return []
        url = httpx.URL(self._next)
        number = url.params.get(param)
        if number is None or not number.isdigit():
            return []
        first = int(number)
        return [(str(url.copy_set_param(param, n)), {}) for n in range(first, min(last, first + count - 1) + 1)]


class PageNumberPaginator:
    """?page=N&per_page=M; stops at the last page, on an empty page, or when no next URL is given."""

    def __init__(self, config: PageNumberPagination) -> None:
        self.config = config
        self._path = ""
        self._params: dict[str, Any] = {}
        self._page = 1
        self._more = False
        self._last: int | None = None  # the last page number, when the body says

    def init_request(self, path: str, params: dict[str, Any]) -> Request:
        self._path = path
        self._params = dict(params)
        if self.config.page_size_param:
            self._params.setdefault(self.config.page_size_param, self.config.page_size)
        self._page = 1
        return self._request()

    def _request(self) -> Request:
        return self._path, {**self._params, self.config.page_param: self._page}

    def update_state(self, body: Any, records: list[Any]) -> None:
        more = bool(records)
        last_page = _at(body, self.config.last_page_path) if self.config.last_page_path else None
        if isinstance(last_page, int):
            self._last = last_page
            if self._page >= last_page:
                more = False
        if self.config.next_path and _at(body, self.config.next_path, missing=_MISSING) in (None, ""):
            more = False  # declared and empty: the provider says this was the last page
        self._more = more
        if more:
            self._page += 1

    def next_request(self) -> Request | None:
        return self._request() if self._more else None

    def checkpoint(self) -> dict[str, Any] | None:
        return {"path": self._path, "params": self._params, "page": self._page} if self._more else None

    def restore(self, checkpoint: dict[str, Any]) -> Request:
        self._path, self._params, self._page = checkpoint["path"], dict(checkpoint["params"]), int(checkpoint["page"])
        return self._request()

    def ahead(self, total: int | None, page_size: int, count: int) -> list[Request]:
        """The next page and the `count - 1` after it, up to the declared last page (else the total's)."""
        last = self._last if self._last is not None else _last_page(total, page_size)
        if not self._more or last is None:
            return []
        pages = range(self._page, min(last, self._page + count - 1) + 1)
        return [(self._path, {**self._params, self.config.page_param: n}) for n in pages]


class SinglePaginator:
    """One object (or one unpaged list), one request."""

    def __init__(self, config: PaginationCommon | None = None) -> None:
        self.config = config

    def init_request(self, path: str, params: dict[str, Any]) -> Request:
        return path, dict(params)

    def update_state(self, body: Any, records: list[Any]) -> None:
        return None

    def next_request(self) -> Request | None:
        return None

    def checkpoint(self) -> dict[str, Any] | None:
        return None

    def restore(self, checkpoint: dict[str, Any]) -> Request:
        raise ValueError("a single-object request has nothing to resume")

    def ahead(self, total: int | None, page_size: int, count: int) -> list[Request]:
        return []  # one request


def _normalized(url: str) -> str:
    """One spelling per page URL, so reordered query parameters still count as the same page."""
    parts = urlsplit(url)
    query = urlencode(sorted(parse_qsl(parts.query, True)))
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path, query, ""))


def _ids_digest(records: list[Any], primary_key: str) -> bytes | None:
    ids = [str(r[primary_key]) for r in records if isinstance(r, dict) and r.get(primary_key) is not None]
    if not ids:
        return None
    return hashlib.blake2b("\x1f".join(ids).encode(), digest_size=16).digest()


class OffsetPaginator:
    """?offset=N&limit=M; stops on a page shorter than asked, or at the declared total."""

    def __init__(self, config: OffsetPagination) -> None:
        self.config = config
        self._path = ""
        self._params: dict[str, Any] = {}
        self._offset = 0
        self._more = False

    def init_request(self, path: str, params: dict[str, Any]) -> Request:
        self._path, self._params, self._offset = path, dict(params), 0
        if self.config.page_size_param:
            self._params.setdefault(self.config.page_size_param, self.config.page_size)
        return self._request()

    def _request(self) -> Request:
        return self._path, {**self._params, self.config.offset_param: self._offset}

    def update_state(self, body: Any, records: list[Any]) -> None:
        asked = self._params.get(self.config.page_size_param or "", self.config.page_size)
        self._offset += len(records)
        total = _at(body, self.config.count_path) if self.config.count_path else None
        self._more = bool(records) and len(records) >= int(asked)
        if isinstance(total, int) and self._offset >= total:
            self._more = False

    def next_request(self) -> Request | None:
        return self._request() if self._more else None

    def checkpoint(self) -> dict[str, Any] | None:
        return {"path": self._path, "params": self._params, "offset": self._offset} if self._more else None

    def restore(self, checkpoint: dict[str, Any]) -> Request:
        self._path, self._params = checkpoint["path"], dict(checkpoint["params"])
        self._offset = int(checkpoint["offset"])
        return self._request()

    def ahead(self, total: int | None, page_size: int, count: int) -> list[Request]:
        return []  # not fetched ahead (no provider here pages by offset yet)


class CursorPaginator:
    """An opaque cursor from the body sent back as a parameter, with the first request's filters."""

    def __init__(self, config: CursorPagination) -> None:
        self.config = config
        self._path = ""
        self._params: dict[str, Any] = {}
        self._cursor: str | None = None

    def init_request(self, path: str, params: dict[str, Any]) -> Request:
        self._path, self._params, self._cursor = path, dict(params), None
        if self.config.page_size_param:
            self._params.setdefault(self.config.page_size_param, self.config.page_size)
        return self._path, dict(self._params)

    def update_state(self, body: Any, records: list[Any]) -> None:
        cursor = _at(body, self.config.cursor_path)
        more = _at(body, self.config.has_more_path, missing=True) if self.config.has_more_path else True
        self._cursor = str(cursor) if cursor not in (None, "") and more is not False and records else None

    def next_request(self) -> Request | None:
        return (self._path, {**self._params, self.config.cursor_param: self._cursor}) if self._cursor else None

    def checkpoint(self) -> dict[str, Any] | None:
        return {"path": self._path, "params": self._params, "cursor": self._cursor} if self._cursor else None

    def restore(self, checkpoint: dict[str, Any]) -> Request:
        self._path, self._params, self._cursor = checkpoint["path"], dict(checkpoint["params"]), checkpoint["cursor"]
        return self._path, {**self._params, self.config.cursor_param: self._cursor}

    def ahead(self, total: int | None, page_size: int, count: int) -> list[Request]:
        return []  # each cursor comes with the page before it


# pagination config class (definition.PAGINATION_TYPES) -> its state machine
PAGINATORS: dict[type[PaginationCommon], Callable[[Any], Paginator]] = {
    NextLinkPagination: NextLinkPaginator,
    PageNumberPagination: PageNumberPaginator,
    OffsetPagination: OffsetPaginator,
    CursorPagination: CursorPaginator,
    NoPagination: SinglePaginator,
}


def make_paginator(config: PaginationCommon, *, single: bool = False) -> Paginator:
    return SinglePaginator(config) if single else PAGINATORS[type(config)](config)


def extract_records(body: Any, config: PaginationCommon, *, single: bool, where: str) -> list[Any]:
    """The records of one response; `where` (integration, connection, redacted URL) prefixes errors."""
    if single:
        inner = _at(body, config.data_path) if config.data_path else None
        obj = inner if isinstance(inner, dict) else body
        if not isinstance(obj, dict):
            raise MalformedResponse(f"{where}: expected one JSON object, got {type(obj).__name__}")
        return [obj]
    records = body if config.data_path is None else _at(body, config.data_path)
    if not isinstance(records, list):
        raise MalformedResponse(
            f"{where}: expected a list at {config.data_path or '(the body)'!r}, got {type(records).__name__}"
        )
    # an item that is not an object is quarantined by validation with its raw JSON, like any bad
    # record: failing the page for it would lose every other record on it
    return records


def iterate_pages(
    client: ProviderClient,
    config: PaginationCommon,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    single: bool = False,
    resume: dict[str, Any] | None = None,
    primary_key: str = "id",
    reader_waiting: Callable[[], bool] | None = None,
) -> Iterator[Page]:
    """Pages of a list (or the one object), each with the checkpoint to resume after it.

    `reader_waiting` says whether whoever takes the pages found none ready last time it asked:
    pages are fetched ahead only then (the provider, not the reader, is the slow side).

    Raises PaginationError subclasses instead of paging forever or following a link off the
    API origin; the page that revealed the problem is not yielded, so it is never committed.
    """
    paginator = make_paginator(config, single=single)
    request: Request | None = paginator.restore(resume) if resume else paginator.init_request(path, params or {})
    ahead = PagesAhead(client.concurrency, lambda target, query: client.request("GET", target, params=query or None))
    try:
        yield from _pages(client, config, paginator, request, ahead, single=single, resume=resume,
                          primary_key=primary_key, reader_waiting=reader_waiting or _always)
    finally:
        ahead.close()


def _page_key(client: ProviderClient, target: str, query: dict[str, Any] | None) -> tuple[str, str]:
    """The URL as we build it, before auth adds any token (safe to remember and to show), and its
    one spelling (reordered query parameters are the same page)."""
    url = str(httpx.URL(client.url_for(target)).copy_merge_params(query or {}))
    return url, _normalized(url)


def _always() -> bool:
    return True


def _pages(client: ProviderClient, config: PaginationCommon, paginator: Paginator, request: Request | None,
           ahead: PagesAhead, *, single: bool, resume: dict[str, Any] | None, primary_key: str,
           reader_waiting: Callable[[], bool]) -> Iterator[Page]:
    seen_urls: set[str] = set()
    seen_id_pages: set[bytes] = set()  # a digest per page, not its ids: flat memory on long lists
    number = int((resume or {}).get("page_number", 0))
    who = f"{client.integration} connection {client.connection_id!r}"
    largest = 0  # most records seen on one page
    while request is not None:
        target, query = request
        url, key = _page_key(client, target, query)
        shown = redact_url(url)
        if key in seen_urls:
            raise PaginationLoopError(
                f"{who}: page {shown} was already fetched in this run: the provider's pagination loops"
            )
        seen_urls.add(key)
        body, response = client.json_of(ahead.get(key, target, query), target, params=query or None)
        records = extract_records(body, config, single=single, where=f"{who}: {shown}")
        digest = _ids_digest(records, primary_key)
        if digest is not None and not single:
            if digest in seen_id_pages:
                raise PaginationLoopError(
                    f"{who}: page {shown} repeats the ids of an earlier page: the provider's pagination loops"
                )
            seen_id_pages.add(digest)
        total = _at(body, config.count_path) if config.count_path and isinstance(body, dict) else None
        total = total if isinstance(total, int) else None
        number += 1
        largest = max(largest, len(records))
        declared = config.expected_page_size()
        # a provider may cap per_page below what we asked: judge by the pages it really sends
        page_size = max(1, min(declared, largest) if largest else declared) if declared else max(1, largest)
        if total is not None and not single and declared is not None:
            allowed = math.ceil(total / page_size) + 3
            if number > allowed:
                raise RunawayPaginationError(
                    f"{who}: page {number} of a list that declares {total} records ({allowed} pages at most): stopping"
                )
        paginator.update_state(body, records)
        nxt = paginator.next_request()
        if nxt is not None:
            client.url_for(nxt[0])  # raises ForeignHostError before the next page is due
            # numbered pages of a known total: fetch them ahead, unless the reader (validation and the
            # warehouse) is behind anyway. A provider answering in milliseconds would then only add
            # threads parsing beside the writer: CPU lost to the GIL and a malloc arena each, for no
            # speed (docs/benchmarks.md). Pages already in flight are kept, never re-fetched.
            if ahead.enabled and not single and reader_waiting():
                upcoming = [(_page_key(client, t, q)[1], t, q) for t, q in
                            paginator.ahead(total, page_size, client.concurrency.ceiling)]
                ahead.expect([u for u in upcoming if u[0] not in seen_urls])
        checkpoint = paginator.checkpoint()
        if checkpoint is not None:
            checkpoint["page_number"] = number
        yield Page(number=number, url=shown, records=records, total=total, checkpoint=checkpoint,
                   observed_at=provider_time(response))
        request = nxt
