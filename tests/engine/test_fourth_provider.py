"""Adding a provider is a new folder: no engine change. A small provider defined in a temp
folder (definition.yaml + models.py + a mapping function) syncs end to end over real HTTP."""

from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import pytest
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from integrations.engine import registry
from tests.support.asgi_server import serve_asgi

WIDGETS = [{"widget_id": f"w{i}", "label": f"Widget {i}", "grams": i * 10} for i in range(1, 8)]


def _widgets(request: Request) -> JSONResponse:
    if request.headers.get("x-api-key") != "k-123" and request.query_params.get("key") != "k-123":
        return JSONResponse({"message": "nope"}, status_code=401)
    cursor = int(request.query_params.get("cursor", "0"))
    size = int(request.query_params.get("limit", "3"))
    chunk = WIDGETS[cursor : cursor + size]
    nxt = cursor + size
    base = str(request.base_url).rstrip("/")
    return JSONResponse({
        "items": chunk,
        "total": len(WIDGETS),
        "next": f"{base}/api/widgets?cursor={nxt}&limit={size}" if nxt < len(WIDGETS) else None,
    })


DEFINITION = """
name: acme-widgets
provider:
  name: Acme Widgets
  environments:
    production: {api: "https://widgets.acme.test/api"}
auth: {type: query, query_param: key}
rate_limit: {requests: 600, per_seconds: 60}
pagination: {type: next_link, data_path: items, next_path: next, count_path: total, page_size_param: limit, page_size: 3}
errors: {message_path: message}
test_endpoint: /widgets
syncs:
  - name: widgets
    model: Widget
    table: widgets
    endpoint: /widgets
    track_deletes: true
    transform: mapping:widget_record
    frequency: every 1h
"""

MODELS = """
from integrations.engine.coercion import ProviderRecord

class Widget(ProviderRecord):
    id: str
    label: str
    grams: int
"""

MAPPING = """
def widget_record(raw):
    return {**raw, "id": raw["widget_id"]}
"""


@pytest.fixture
def acme_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "integrations" / "acme_widgets"
    folder.mkdir(parents=True)
    (folder / "definition.yaml").write_text(textwrap.dedent(DEFINITION))
    (folder / "models.py").write_text(textwrap.dedent(MODELS))
    (folder / "mapping.py").write_text(textwrap.dedent(MAPPING))
    monkeypatch.setenv(registry.PATH_ENV, str(folder.parent))
    registry.reload()
    yield folder
    monkeypatch.delenv(registry.PATH_ENV)
    registry.reload()


def test_a_fourth_provider_syncs_from_a_new_folder(acme_folder: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from connections.models import Connection, ConnectionMetadata, Credentials
    from connections.store import open_store
    from integrations.engine.sync_runner import run_sync
    from warehouse.loader import Warehouse

    monkeypatch.setenv("SCREENSYNC_CONNECTIONS", str(tmp_path / "conn.sqlite"))
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY", Fernet.generate_key().decode())
    app = Starlette(routes=[Route("/api/widgets", _widgets)])
    with serve_asgi(app) as base:
        store = open_store()
        store.add(
            Connection(connection_id="acme-1", integration="acme-widgets", credential_kind="api_key",
                       metadata=ConnectionMetadata(base_url=base)),
            Credentials(token="k-123"),
        )
        db = tmp_path / "wh.duckdb"
        with Warehouse(db) as wh:
            result = run_sync("acme-widgets", "acme-1", "widgets", warehouse=wh, store=store)
        assert result.ok, result.error
        assert (result.added, result.pages) == (7, 3)
        con = duckdb.connect(str(db), read_only=True)
        rows = con.execute("select id, label, grams from acme_widgets.widgets order by grams").fetchall()
        con.close()
        assert rows == [(w["widget_id"], w["label"], w["grams"]) for w in WIDGETS]
