"""Auth and pagination configs typed by `type`: each type with only its fields, found in a registry,
and the new types (bearer / header auth, offset / cursor pagination) over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from pydantic import TypeAdapter, ValidationError

from integrations.engine.auth import AUTH_BUILDERS, build_auth
from integrations.engine.definition import (
    AUTH_TYPES,
    PAGINATION_TYPES,
    AuthConfig,
    CursorPagination,
    ErrorsConfig,
    OffsetPagination,
    PaginationConfig,
)
from integrations.engine.http_client import ProviderClient
from integrations.engine.paginators import PAGINATORS, iterate_pages
from integrations.engine.retries import RetryPolicy
from tests.engine.conftest import ITEMS, TOKEN, FakeProvider, ratelimit_headers_config

ALL_IDS = [r["id"] for r in ITEMS]
AUTH = TypeAdapter(AuthConfig)
PAGING = TypeAdapter(PaginationConfig)


def client_with(provider: FakeProvider, auth: dict[str, Any]) -> ProviderClient:
    return ProviderClient(
        integration="fakeprov",
        connection_id="conn-typed",
        api_base=f"{provider.base}/v1",
        auth=build_auth(AUTH.validate_python(auth), TOKEN),
        rate_limit=ratelimit_headers_config(6000, 60),
        credential_fingerprint=uuid4().hex,
        errors=ErrorsConfig(message_path="error"),
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=3),
    )


@pytest.fixture
def client(fake_provider: FakeProvider) -> Iterator[ProviderClient]:
    with client_with(fake_provider, {"type": "bearer"}) as c:
        yield c


def ids(pages: list) -> list[str]:
    return [r["id"] for p in pages for r in p.records]


def test_every_registered_type_has_its_builder_and_paginator() -> None:
    assert set(AUTH_TYPES.values()) == set(AUTH_BUILDERS)
    assert set(PAGINATION_TYPES.values()) == set(PAGINATORS)
    for name, cls in {**AUTH_TYPES, **PAGINATION_TYPES}.items():
        assert cls.model_fields["type"].annotation.__args__ == (name,)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("auth", "sent"),
    [
        ({"type": "bearer"}, ("authorization", f"Bearer {TOKEN}")),
        ({"type": "header", "header": "X-Api-Key", "prefix": "key "}, ("x-api-key", f"key {TOKEN}")),
    ],
)
def test_header_credentials_are_sent_and_accepted(fake_provider: FakeProvider, auth: dict, sent: tuple) -> None:
    with client_with(fake_provider, auth) as c:
        body, response = c.get_json("/items", params={"key": uuid4().hex})
        assert response.status_code == 200 and len(body["data"]) == 5
        assert sent[0] in response.request.headers and response.request.headers[sent[0]] == sent[1]
        assert TOKEN not in str(response.request.url)
        assert "***" in repr(c._http.auth) and TOKEN not in repr(c._http.auth)


def test_a_field_of_another_type_is_refused_with_its_name() -> None:
    with pytest.raises(ValidationError, match="query_param"):
        AUTH.validate_python({"type": "basic", "query_param": "k"})
    with pytest.raises(ValidationError, match="last_page_path"):
        PAGING.validate_python({"type": "next_link", "next_path": "next", "last_page_path": "p"})
    with pytest.raises(ValidationError, match="header"):
        AUTH.validate_python({"type": "header"})


def test_an_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ValidationError) as err:
        AUTH.validate_python({"type": "digest"})
    assert "'basic', 'query', 'bearer', 'header'" in str(err.value)
    with pytest.raises(ValidationError) as err:
        PAGING.validate_python({"type": "link_header"})
    assert "'next_link', 'page_number', 'offset', 'cursor', 'none'" in str(err.value)


def test_offsets_are_walked_to_the_total_and_resume(client: ProviderClient) -> None:
    config = OffsetPagination(type="offset", data_path="results", count_path="total", page_size=10)
    pages = list(iterate_pages(client, config, "/offset", {"key": uuid4().hex}))
    assert ids(pages) == ALL_IDS and [len(p.records) for p in pages] == [10, 10, 5]
    assert pages[-1].checkpoint is None
    rest = list(iterate_pages(client, config, "/offset", resume=pages[0].checkpoint))
    assert [p.number for p in rest] == [2, 3] and ids(rest) == ALL_IDS[10:]


def test_an_offset_list_without_a_total_stops_at_the_short_page(client: ProviderClient) -> None:
    config = OffsetPagination(type="offset", data_path="results", page_size=7)
    pages = list(iterate_pages(client, config, "/offset"))
    assert ids(pages) == ALL_IDS and [len(p.records) for p in pages] == [7, 7, 7, 4]


@pytest.mark.parametrize("has_more_path", [None, "meta.has_more"])
def test_cursors_are_sent_back_with_the_filters_and_resume(client: ProviderClient, has_more_path: str | None) -> None:
    config = CursorPagination(type="cursor", data_path="items", cursor_path="meta.next_cursor", cursor_param="after",
                              has_more_path=has_more_path, page_size=10)
    pages = list(iterate_pages(client, config, "/cursored", {"status": "clear"}))
    assert ids(pages) == ALL_IDS and len(pages) == 3 and pages[-1].checkpoint is None
    assert pages[0].checkpoint is not None and pages[0].checkpoint["params"]["status"] == "clear"
    rest = list(iterate_pages(client, config, "/cursored", resume=pages[1].checkpoint))
    assert [p.number for p in rest] == [3] and ids(rest) == ALL_IDS[20:]


CURSOR_PROVIDER = """
name: cursor-fake
provider:
  name: Cursor fake
  environments:
    production: {api: "https://fake.invalid/v1"}
auth: {type: bearer}
rate_limit: {requests: 6000, per_seconds: 60}
pagination: {type: cursor, data_path: items, cursor_path: meta.next_cursor, cursor_param: after,
             has_more_path: meta.has_more, page_size: 10}
test_endpoint: /account
syncs:
  - {name: items, model: Item, table: items, endpoint: /cursored, params: {status: clear}, frequency: every 1h,
     track_deletes: true}
"""

ITEM_MODEL = """
from integrations.engine.coercion import ProviderRecord

class Item(ProviderRecord):
    id: str
    n: int
"""


def test_a_bearer_cursor_provider_syncs_from_its_folder_alone(tmp_path, monkeypatch, fake_provider) -> None:
    import duckdb
    from cryptography.fernet import Fernet

    from connections.models import Connection, ConnectionMetadata, Credentials
    from connections.store import open_store
    from integrations.engine import registry
    from integrations.engine.sync_runner import run_sync
    from warehouse.loader import Warehouse

    folder = tmp_path / "integrations" / "cursor_fake"
    folder.mkdir(parents=True)
    (folder / "definition.yaml").write_text(CURSOR_PROVIDER)
    (folder / "models.py").write_text(ITEM_MODEL)
    monkeypatch.setenv(registry.PATH_ENV, str(folder.parent))
    monkeypatch.setenv("SCREENSYNC_CONNECTIONS", str(tmp_path / "conn.sqlite"))
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY", Fernet.generate_key().decode())
    registry.reload()
    try:
        store = open_store()
        store.add(Connection(connection_id="k1", integration="cursor-fake", credential_kind="api_key",
                             metadata=ConnectionMetadata(base_url=fake_provider.base)), Credentials(token=TOKEN))
        db = tmp_path / "wh.duckdb"
        with Warehouse(db) as wh:
            result = run_sync("cursor-fake", "k1", "items", warehouse=wh, store=store)
        assert result.ok, result.error
        assert (result.added, result.pages) == (25, 3)
        con = duckdb.connect(str(db), read_only=True)
        rows = con.execute("select id, n from cursor_fake.items order by n").fetchall()
        con.close()
        assert rows == [(r["id"], r["n"]) for r in ITEMS]
    finally:
        monkeypatch.delenv(registry.PATH_ENV)
        registry.reload()
