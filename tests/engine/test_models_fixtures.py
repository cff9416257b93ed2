"""The record models accept the providers' published payloads, staging quirks included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrations.checkr import models as checkr
from integrations.clearchecks import mapping
from integrations.clearchecks import models as clearchecks

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load(rel: str) -> dict:
    return json.loads((FIXTURES / rel).read_text())


@pytest.mark.parametrize(
    ("model", "fixture"),
    [
        (checkr.Account, "checkr/generated/account.json"),
        (checkr.Candidate, "checkr/generated/candidate.json"),
        (checkr.Candidate, "checkr/verbatim/candidate_create_response.json"),
        (checkr.Report, "checkr/generated/report.json"),
        (checkr.Report, "checkr/verbatim/report_create_response_staging.json"),
        (checkr.Package, "checkr/generated/package.json"),
        (checkr.Invitation, "checkr/generated/invitation.json"),
        (checkr.Invitation, "checkr/verbatim/invitation_create_response.json"),
    ],
)
def test_checkr_payloads_validate(model: type, fixture: str) -> None:
    payload = load(fixture)
    record = model.model_validate(payload)
    assert record.id == payload["id"]


def test_staging_objects_and_null_screening_lists_are_accepted() -> None:
    payload = load("checkr/verbatim/report_create_response_staging.json")
    report = checkr.Report.model_validate({**payload, "county_criminal_search_ids": None})
    assert report.object == "test_report"
    assert report.county_criminal_search_ids == []
    legacy = load("checkr/verbatim/list_envelope_packages_legacy_test.json")["data"]
    assert {checkr.Package.model_validate(p).object for p in legacy} == {"test_package"}


def test_clearchecks_account_and_status_letters_map() -> None:
    account = clearchecks.Account.model_validate(mapping.account_record(load("clearchecks/account_response.json")))
    assert (account.id, account.company_name) == ("account", "Warner Bros. Cartoons")
    status = load("clearchecks/report_status_response_example.json")
    record = mapping.report_record({"report_key": "k1", **status, "order_date": {"date": "2026-01-02 03:04:05.000000"}})
    report = clearchecks.Report.model_validate(record)
    assert (report.status_code, report.status) == ("P", "pending")
    assert report.component_statuses["drug_status"] == "complete"
    assert [mapping.readable_status(x) for x in "APRCVX"] == [
        "applicant_info_requested", "pending", "pending", "complete", "pre_adverse_notice_sent",
        "final_adverse_notice_sent"]
    assert mapping.readable_status("Q") == "unknown:Q"
