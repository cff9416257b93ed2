"""Declared actions become the right request, and bad input is refused naming the field."""

from __future__ import annotations

import pytest

from integrations.engine.actions import (
    ActionInputError,
    build_request,
    idempotency_key,
    redact,
    validate_input,
)
from integrations.engine.registry import get_integration


def _validated(integration: str, action: str, raw: dict):
    integ = get_integration(integration)
    config = integ.definition.action(action)
    return config, validate_input(integ, config, raw)


def test_create_candidate_posts_json_without_empty_fields() -> None:
    config, payload = _validated("checkr", "create_candidate", {"email": "a@example.com", "first_name": "Ann"})
    path, kwargs = build_request(config, payload)
    assert (config.method, path) == ("POST", "/candidates")
    assert kwargs == {"json": {"email": "a@example.com", "first_name": "Ann", "work_locations": []}}
    assert config.idempotent


def test_path_placeholders_come_from_the_input_and_are_escaped() -> None:
    config, payload = _validated("clearchecks", "get_report_widget_token", {"report_key": "ab/c d"})
    path, kwargs = build_request(config, payload)
    assert path == "/report/ab%2Fc%20d/widget-token"
    assert kwargs == {"params": None}


def test_get_actions_send_the_remaining_input_as_query_parameters() -> None:
    config, payload = _validated("checkr", "list_packages", {"per_page": 10})
    assert build_request(config, payload) == ("/packages", {"params": {"per_page": 10}})


def test_idempotency_key_is_stable_for_the_same_input_and_differs_otherwise() -> None:
    _, one = _validated(
        "checkr",
        "invite_candidate",
        {"candidate_id": "c1", "package": "basic", "work_locations": [{"country": "US", "state": "CA"}]},
    )
    _, same = _validated(
        "checkr",
        "invite_candidate",
        {"work_locations": [{"state": "CA", "country": "US"}], "package": "basic", "candidate_id": "c1"},
    )
    _, other = _validated(
        "checkr",
        "invite_candidate",
        {"candidate_id": "c2", "package": "basic", "work_locations": [{"country": "US", "state": "CA"}]},
    )
    key = idempotency_key("checkr", "conn-1", "invite_candidate", one)
    assert key == idempotency_key("checkr", "conn-1", "invite_candidate", same)
    assert key != idempotency_key("checkr", "conn-1", "invite_candidate", other)
    assert key != idempotency_key("checkr", "conn-2", "invite_candidate", one)


@pytest.mark.parametrize(
    ("integration", "action", "raw", "field"),
    [
        ("checkr", "create_candidate", {"email": "not-an-email"}, "email"),
        ("checkr", "create_candidate", {"email": "a@example.com", "surname": "x"}, "surname"),
        (
            "checkr",
            "invite_candidate",
            {"candidate_id": "c1", "package": "basic", "work_locations": []},
            "work_locations",
        ),
        ("checkr", "deauthorize", {"confirm": False}, "confirm"),
        (
            "clearchecks",
            "create_order",
            {"report_sku": "HIRE1", "applicant_emails": ["x"], "terms_agree": "Y"},
            "applicant_emails",
        ),
        ("clearchecks", "create_order", {"report_sku": "HIRE1", "applicant_emails": ["a@b.co"]}, "terms_agree"),
    ],
)
def test_invalid_input_is_refused_naming_the_field(integration: str, action: str, raw: dict, field: str) -> None:
    integ = get_integration(integration)
    with pytest.raises(ActionInputError, match=field):
        validate_input(integ, integ.definition.action(action), raw)


def test_secret_looking_values_are_redacted_for_logs_and_artifacts() -> None:
    assert redact(
        {"token": "s3cret", "report_token": "jwt", "nested": [{"api_key": "k", "id": 1}], "status": "ok"}
    ) == {"token": "***", "report_token": "***", "nested": [{"api_key": "***", "id": 1}], "status": "ok"}
