"""Definitions are data validated up front: bad ones fail at load time naming the problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from integrations.engine import registry
from integrations.engine.definition import IntegrationDefinition
from integrations.engine.registry import DefinitionError, get_integration, provider_urls


def test_builtin_integrations_load_and_resolve_every_model() -> None:
    names = set(registry.all_integrations())
    assert {"checkr", "checkr-partner-staging", "clearchecks"} <= names
    checkr = get_integration("checkr").definition
    assert {s.name for s in checkr.syncs} == {"account", "candidates", "reports", "packages", "invitations", "invoices"}
    assert checkr.sync("candidates").mode == "incremental"
    assert checkr.sync("candidates").embedded[0].table == "reports"
    assert checkr.sync("reports").repoll is not None
    assert checkr.sync("packages").track_deletes and checkr.sync("invitations").track_deletes
    cc = get_integration("clearchecks").definition
    assert {s.name for s in cc.syncs} == {"account", "reports", "report_status", "packages", "invoices"}
    assert cc.sync("report_status").repoll is not None and cc.sync("report_status").repoll.merge
    assert cc.auth.type == "query" and cc.pagination.type == "page_number"


def test_partner_staging_reuses_checkr_syncs_and_models_by_reference() -> None:
    checkr = get_integration("checkr")
    staging = get_integration("checkr-partner-staging")
    assert staging.definition.syncs == checkr.definition.syncs
    # the very same model classes, not copies
    assert staging.model("Report") is checkr.model("Report")
    assert staging.definition.provider.default_environment == "staging"
    assert "production" not in staging.definition.provider.environments
    assert staging.definition.auth.connect == ["oauth"]
    assert staging.definition.schema_name == "checkr_partner_staging"
    # nothing copied: the staging folder holds only its definition
    folder = Path(registry.BUILTIN_DIR) / "checkr_partner_staging"
    assert sorted(p.name for p in folder.iterdir() if p.suffix in {".py", ".yaml"}) == ["__init__.py", "definition.yaml"]


def test_base_url_override_replaces_origin_of_every_url() -> None:
    d = get_integration("checkr").definition
    urls = provider_urls(d, base_url="http://127.0.0.1:9999")
    assert urls["api"] == "http://127.0.0.1:9999/v1"
    assert urls["authorize"] == "http://127.0.0.1:9999/authorize/{client_id}/signup"
    assert urls["token"] == "http://127.0.0.1:9999/oauth/tokens"
    assert provider_urls(d)["api"] == "https://api.checkr.com/v1"
    assert provider_urls(d, environment="staging")["api"] == "https://api.checkr-staging.com/v1"


@pytest.mark.parametrize("origin", ["http://example.com", "http://10.0.0.5:8000"])
def test_plain_http_is_refused_off_loopback(origin: str) -> None:
    with pytest.raises(DefinitionError, match="must use https"):
        provider_urls(get_integration("checkr").definition, base_url=origin)


def test_unknown_environment_is_named() -> None:
    with pytest.raises(DefinitionError, match="unknown environment 'moon'"):
        provider_urls(get_integration("checkr").definition, environment="moon")


def _base(**over: object) -> dict:
    d = {
        "name": "x",
        "provider": {"name": "X", "environments": {"production": {"api": "https://x.test/api"}}},
        "auth": {"type": "basic"},
        "rate_limit": {"requests": 10},
        "pagination": {"type": "none"},
        "test_endpoint": "/me",
        "syncs": [{"name": "things", "model": "Thing", "table": "things", "endpoint": "/things",
                   "frequency": "every 1h"}],
    }
    d.update(over)
    return d


def test_schema_rejects_incremental_without_cursor() -> None:
    bad = _base(syncs=[{"name": "s", "model": "M", "table": "t", "endpoint": "/t", "mode": "incremental",
                        "frequency": "every 1h"}])
    with pytest.raises(ValueError, match="needs a cursor"):
        IntegrationDefinition.model_validate(bad)


def test_schema_rejects_delete_tracking_on_a_repoll_and_typos() -> None:
    repoll = {"table": "t", "state_field": "s", "terminal_states": ["done"], "endpoint": "/t/{id}"}
    bad = _base(syncs=[{"name": "s", "model": "M", "table": "t", "mode": "repoll", "repoll": repoll,
                        "track_deletes": True, "frequency": "every 1h"}])
    with pytest.raises(ValueError, match="not a repoll"):
        IntegrationDefinition.model_validate(bad)
    incremental = _base(syncs=[{"name": "s", "model": "M", "table": "t", "endpoint": "/t", "mode": "incremental",
                                "cursor": {"field": "c", "param": "p"}, "track_deletes": True,
                                "frequency": "every 1h", "sweep": "every 1d"}])
    assert IntegrationDefinition.model_validate(incremental).syncs[0].track_deletes  # on its sweeps
    with pytest.raises(ValueError, match="paginaton"):
        IntegrationDefinition.model_validate({**_base(), "paginaton": {}})


def test_schema_rejects_a_sweep_outside_an_incremental_sync() -> None:
    bad = _base(syncs=[{"name": "s", "model": "M", "table": "t", "endpoint": "/t", "frequency": "every 1h",
                        "sweep": "every 1d"}])
    with pytest.raises(ValueError, match="a full sync has none"):
        IntegrationDefinition.model_validate(bad)


def test_schema_rejects_a_reference_nothing_can_fetch_by_id() -> None:
    bad = _base(syncs=[
        {"name": "a", "model": "M", "table": "a", "endpoint": "/a", "frequency": "every 1h",
         "references": [{"field": "b_id", "table": "b"}]},
        {"name": "b", "model": "M", "table": "b", "endpoint": "/b", "frequency": "every 1h"},
    ])
    with pytest.raises(ValueError, match="reference 'b_id' names table 'b', which no sync can fetch by id"):
        IntegrationDefinition.model_validate(bad)
    bad["syncs"][1]["refetch"] = {"endpoint": "/b/{id}"}
    assert IntegrationDefinition.model_validate(bad).fetcher_for("b")[0].name == "b"  # type: ignore[index]


def test_a_reference_to_a_field_the_model_lacks_fails_at_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "acme_refs"
    folder.mkdir()
    (folder / "definition.yaml").write_text(textwrap.dedent("""
        name: acme-refs
        extends: checkr
        syncs:
          - name: invitations
            model: Invitation
            table: invitations
            endpoint: /invitations
            frequency: every 1h
            references: [{field: report, table: reports}]
          - name: reports
            model: Report
            table: reports
            endpoint: /reports
            frequency: every 1h
            refetch: {endpoint: "/reports/{id}"}
    """))
    monkeypatch.setenv(registry.PATH_ENV, str(tmp_path))
    registry.reload()
    try:
        with pytest.raises(DefinitionError, match="reference 'report' is not a field of Invitation"):
            registry.get_integration("acme-refs")
    finally:
        monkeypatch.delenv(registry.PATH_ENV)
        registry.reload()


def test_external_folder_with_a_missing_model_fails_at_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "acme"
    folder.mkdir()
    (folder / "definition.yaml").write_text(textwrap.dedent("""
        name: acme
        provider: {name: Acme, environments: {production: {api: "https://acme.test/api"}}}
        auth: {type: basic}
        rate_limit: {requests: 10}
        pagination: {type: none}
        test_endpoint: /me
        syncs:
          - {name: things, model: Thing, table: things, endpoint: /things, frequency: every 1h}
    """))
    (folder / "models.py").write_text("from pydantic import BaseModel\nclass Other(BaseModel):\n    id: str\n")
    monkeypatch.setenv(registry.PATH_ENV, str(tmp_path))
    registry.reload()
    try:
        with pytest.raises(DefinitionError, match="'Thing' not found"):
            registry.all_integrations()
    finally:
        monkeypatch.delenv(registry.PATH_ENV)
        registry.reload()
