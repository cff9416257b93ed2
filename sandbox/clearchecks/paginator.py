"""The list envelope, ASSUMED to be Laravel's LengthAwarePaginator (`{"data": [...]}` is all the evidence).

`next_page_url` and friends keep `per_page` but never echo `api_token`: clients add their
token to every call anyway, and a credential in a body ends up in logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 1000


class PageParamError(ValueError):
    """A bad `page`/`per_page`; the message names the parameter."""


@dataclass(frozen=True)
class PageRequest:
    page: int
    per_page: int
    explicit_per_page: bool

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def _positive_int(name: str, raw: str | None, default: int, maximum: int | None = None) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PageParamError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise PageParamError(f"{name} must be at least 1, got {value}")
    if maximum is not None and value > maximum:
        raise PageParamError(f"{name} must be at most {maximum}, got {value}")
    return value


def parse_page_request(query: dict[str, str]) -> PageRequest:
    return PageRequest(
        page=_positive_int("page", query.get("page"), 1),
        per_page=_positive_int("per_page", query.get("per_page"), DEFAULT_PER_PAGE, MAX_PER_PAGE),
        explicit_per_page=bool(query.get("per_page")),
    )


def page_url(path: str, req: PageRequest, page: int) -> str:
    params: dict[str, int] = {"page": page}
    if req.explicit_per_page:
        params["per_page"] = req.per_page
    return f"{path}?{urlencode(params)}"


def envelope(path: str, req: PageRequest, data: list[dict[str, Any]], total: int) -> dict[str, Any]:
    last_page = max(1, -(-total // req.per_page))
    start = req.offset
    shown = len(data)
    return {
        "current_page": req.page,
        "data": data,
        "first_page_url": page_url(path, req, 1),
        "from": start + 1 if shown else None,
        "last_page": last_page,
        "last_page_url": page_url(path, req, last_page),
        "next_page_url": page_url(path, req, req.page + 1) if req.page < last_page else None,
        "path": path,
        "per_page": req.per_page,
        "prev_page_url": page_url(path, req, req.page - 1) if req.page > 1 else None,
        "to": start + shown if shown else None,
        "total": total,
    }
