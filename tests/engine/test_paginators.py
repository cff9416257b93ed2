"""Paginators and iterate_pages: state machines, resume, and the guards against dishonest paging."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from integrations.engine.definition import (
    NextLinkPagination,
    NoPagination,
    PageNumberPagination,
)
from integrations.engine.errors import (
    ForeignHostError,
    MalformedResponse,
    PaginationLoopError,
    RunawayPaginationError,
)
from integrations.engine.http_client import ProviderClient
from integrations.engine.paginators import (
    NextLinkPaginator,
    PageNumberPaginator,
    SinglePaginator,
    iterate_pages,
    make_paginator,
    strip_secrets,
)
from tests.engine.conftest import ITEMS, TOKEN, FakeProvider
from tests.engine.test_http_client import make_client

LINKED = NextLinkPagination(type="next_link", data_path="data", next_path="next_href", count_path="count", page_size=10)
NUMBERED = PageNumberPagination(
    type="page_number",
    data_path="data",
    next_path="next_page_url",
    count_path="total",
    last_page_path="last_page",
    page_size=10,
)
ALL_IDS = [r["id"] for r in ITEMS]


@pytest.fixture
def client(fake_provider: FakeProvider) -> Iterator[ProviderClient]:
    with make_client(fake_provider) as c:
        yield c


def ids(pages: list) -> list[str]:
    return [r["id"] for p in pages for r in p.records]


# ---- state machines on their own ----


def test_make_paginator_picks_by_type() -> None:
    assert isinstance(make_paginator(LINKED), NextLinkPaginator)
    assert isinstance(make_paginator(NUMBERED), PageNumberPaginator)
    assert isinstance(make_paginator(LINKED, single=True), SinglePaginator)
    assert isinstance(make_paginator(NoPagination(type="none")), SinglePaginator)


def test_next_link_state_machine() -> None:
    p = NextLinkPaginator(LINKED)
    assert p.init_request("/candidates", {"include": "reports"}) == (
        "/candidates",
        {"include": "reports", "per_page": 10},
    )
    p.update_state({"data": [{"id": 1}], "next_href": "https://api.x/v1/candidates?page=2"}, [{"id": 1}])
    assert p.next_request() == ("https://api.x/v1/candidates?page=2", {})
    assert p.checkpoint() == {"next_url": "https://api.x/v1/candidates?page=2"}
    p.update_state({"data": [], "next_href": None}, [])
    assert p.next_request() is None and p.checkpoint() is None
    assert NextLinkPaginator(LINKED).restore({"next_url": "https://api.x/v1/c?page=7"}) == (
        "https://api.x/v1/c?page=7",
        {},
    )


def test_page_number_state_machine_stops_at_last_page() -> None:
    p = PageNumberPaginator(NUMBERED)
    assert p.init_request("/reports/all", {"status": "x"}) == (
        "/reports/all",
        {"status": "x", "per_page": 10, "page": 1},
    )
    p.update_state({"data": [{"id": 1}], "last_page": 2, "next_page_url": "u"}, [{"id": 1}])
    assert p.next_request() == ("/reports/all", {"status": "x", "per_page": 10, "page": 2})
    saved = p.checkpoint()
    assert saved == {"path": "/reports/all", "params": {"status": "x", "per_page": 10}, "page": 2}
    p.update_state({"data": [{"id": 2}], "last_page": 2, "next_page_url": "u"}, [{"id": 2}])
    assert p.next_request() is None and p.checkpoint() is None
    assert PageNumberPaginator(NUMBERED).restore(saved) == ("/reports/all", {"status": "x", "per_page": 10, "page": 2})


@pytest.mark.parametrize(
    ("body", "records"),
    [
        ({"data": [], "last_page": 9, "next_page_url": "u"}, []),  # an empty page
        ({"data": [{"id": 1}], "next_page_url": None}, [{"id": 1}]),  # next URL declared and empty
    ],
)
def test_page_number_stops_on_empty_page_or_missing_next(body: dict, records: list) -> None:
    p = PageNumberPaginator(NUMBERED)
    p.init_request("/r", {})
    p.update_state(body, records)
    assert p.next_request() is None


def test_single_has_nothing_to_resume() -> None:
    p = SinglePaginator()
    assert p.init_request("/account", {}) == ("/account", {})
    p.update_state({"id": "a"}, [{"id": "a"}])
    assert p.next_request() is None and p.checkpoint() is None
    with pytest.raises(ValueError, match="nothing to resume"):
        p.restore({})


def test_strip_secrets_drops_tokens_but_keeps_filters() -> None:
    url = "https://api.x/v1/c?created_after=2024-01-01&api_token=sk_1&page=2"
    assert strip_secrets(url) == "https://api.x/v1/c?created_after=2024-01-01&page=2"
    assert strip_secrets("https://api.x/v1/c") == "https://api.x/v1/c"


# ---- iterate_pages over real HTTP ----


def test_next_links_are_followed_to_the_end(client: ProviderClient) -> None:
    pages = list(iterate_pages(client, LINKED, "/linked"))
    assert [p.number for p in pages] == [1, 2, 3]
    assert ids(pages) == ALL_IDS
    assert all(p.total == 25 for p in pages)
    assert pages[0].checkpoint == {"next_url": pages[1].url, "page_number": 1}
    assert pages[-1].checkpoint is None


def test_a_run_resumes_from_a_checkpoint(client: ProviderClient) -> None:
    first = next(iter(iterate_pages(client, LINKED, "/linked")))
    rest = list(iterate_pages(client, LINKED, "/linked", resume=first.checkpoint))
    assert [p.number for p in rest] == [2, 3]
    assert ids([first, *rest]) == ALL_IDS


def test_page_numbers_are_walked_to_the_last_page(client: ProviderClient, fake_provider: FakeProvider) -> None:
    pages = list(iterate_pages(client, NUMBERED, "/numbered", {"key": uuid4().hex}))
    assert ids(pages) == ALL_IDS and len(pages) == 3
    resumed = list(iterate_pages(client, NUMBERED, "/numbered", resume=pages[0].checkpoint))
    assert [p.number for p in resumed] == [2, 3] and ids(resumed) == ALL_IDS[10:]


def test_page_numbers_without_hints_stop_at_the_empty_page(client: ProviderClient) -> None:
    config = PageNumberPagination(type="page_number", data_path="data", page_size=10)
    pages = list(iterate_pages(client, config, "/numbered-open"))
    assert ids(pages) == ALL_IDS and len(pages) == 4 and pages[-1].records == []


def test_a_single_object(client: ProviderClient) -> None:
    (page,) = iterate_pages(client, LINKED, "/account", single=True)
    assert page.records == [{"id": "acct_1", "name": "Fake"}] and page.checkpoint is None


def test_a_foreign_next_link_is_refused_and_never_requested(
    client: ProviderClient, foreign_provider: FakeProvider
) -> None:
    before = sum(foreign_provider.hits.values())
    with pytest.raises(ForeignHostError, match=r"fakeprov connection 'conn-1'.*not on the API origin"):
        list(iterate_pages(client, LINKED, "/foreign", {"to": foreign_provider.base}))
    assert sum(foreign_provider.hits.values()) == before
    assert client.stats.requests == 1


def test_a_next_link_back_to_an_earlier_page_is_a_loop(client: ProviderClient) -> None:
    seen = []
    with pytest.raises(PaginationLoopError, match="already fetched in this run"):
        for page in iterate_pages(client, LINKED, "/looping"):
            seen.append(page.number)
    assert seen == [1, 2, 3] and client.stats.requests == 3  # page 2 is not asked for again


def test_a_page_repeating_earlier_ids_is_a_loop(client: ProviderClient) -> None:
    seen = []
    with pytest.raises(PaginationLoopError, match="repeats the ids of an earlier page"):
        for page in iterate_pages(client, LINKED, "/same-ids"):
            seen.append(page.number)
    assert seen == [1]


def test_far_more_pages_than_the_count_allows_is_a_runaway(client: ProviderClient) -> None:
    seen = []
    with pytest.raises(RunawayPaginationError, match=r"page 7 of a list that declares 25 records \(6 pages at most\)"):
        for page in iterate_pages(client, LINKED, "/runaway"):
            seen.append(page.number)
    assert seen == [1, 2, 3, 4, 5, 6]


def test_no_list_at_the_data_path_is_malformed(client: ProviderClient) -> None:
    with pytest.raises(MalformedResponse, match=r"fakeprov connection 'conn-1': .*/v1/wrong-shape.*list at 'data'"):
        list(iterate_pages(client, LINKED, "/wrong-shape"))


def test_echoed_tokens_stay_out_of_checkpoints(fake_provider: FakeProvider) -> None:
    with make_client(fake_provider, query_auth=True) as c:
        pages = list(iterate_pages(c, LINKED, "/echo-token"))
    assert ids(pages) == ALL_IDS
    for page in pages:
        assert TOKEN not in repr(page.checkpoint) and TOKEN not in page.url
    assert fake_provider.credentials[-1] == TOKEN  # auth still sent it on every page
