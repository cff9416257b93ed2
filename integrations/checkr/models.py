"""Checkr record models: the typed columns analysts get (every other field stays in `_raw`).

Field names follow Checkr's public API (OpenAPI spec v1). Unknown fields are ignored here,
not lost: the engine stores each record's original JSON beside the typed columns.
Money is integer cents plus a currency, as Checkr sends it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BeforeValidator

from integrations.engine.coercion import Day, ProviderRecord, Timestamp

T = TypeVar("T")


def _null_is_empty(value: Any) -> Any:
    """Checkr sends `null` for screening-id arrays a package lacks (staging samples show it)."""
    return [] if value is None else value


# A list field that reads `null` as empty. Only list fields pay for the check (a "*" validator
# ran for every field of every record: a quarter of the validation time of a full sync).
NullableList = Annotated[list[T], BeforeValidator(_null_is_empty)]


class CheckrRecord(ProviderRecord):
    """Strict, per the engine's one rule of what is coerced and what is rejected (engine/coercion.py)."""


class WorkLocation(CheckrRecord):
    country: str | None = None
    state: str | None = None
    city: str | None = None


class Company(CheckrRecord):
    name: str | None = None
    dba_name: str | None = None
    city: str | None = None
    state: str | None = None
    zipcode: str | None = None
    industry: str | None = None


class Account(CheckrRecord):
    id: str
    object: Literal["account"] = "account"
    name: str | None = None
    uri_name: str | None = None
    created_at: Timestamp | None = None
    api_authorized: bool | None = None
    authorized: bool | None = None
    purpose: str | None = None
    billing_email: str | None = None
    available_screenings: NullableList[str] = []
    company: Company | None = None
    geos_required: bool | None = None
    segmentation_enabled: bool | None = None


class Candidate(CheckrRecord):
    id: str
    object: Literal["candidate", "test_candidate"] = "candidate"
    uri: str | None = None
    created_at: Timestamp
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    zipcode: str | None = None
    dob: Day | None = None
    custom_id: str | None = None
    adjudication: str | None = None
    report_ids: NullableList[str] = []
    geo_ids: NullableList[str] = []
    metadata: dict[str, Any] | None = None


class Report(CheckrRecord):
    id: str
    object: Literal["report", "test_report"] = "report"
    uri: str | None = None
    candidate_id: str
    package: str | None = None
    program_id: str | None = None
    status: Literal["pending", "complete", "suspended", "dispute", "canceled"]
    result: Literal["clear", "consider"] | None = None
    adjudication: str | None = None
    assessment: str | None = None
    source: str | None = None
    includes_canceled: bool | None = None
    archived: bool | None = None
    created_at: Timestamp
    completed_at: Timestamp | None = None
    revised_at: Timestamp | None = None
    upgraded_at: Timestamp | None = None
    estimated_completion_time: Timestamp | None = None
    turnaround_time: int | None = None  # seconds, as Checkr reports it
    work_locations: NullableList[WorkLocation] = []
    segment_stamps: NullableList[str] = []
    geo_ids: NullableList[str] = []
    county_criminal_search_ids: NullableList[str] = []


class Screening(CheckrRecord):
    type: str
    subtype: str | None = None


class Package(CheckrRecord):
    id: str
    object: Literal["package", "test_package"] = "package"
    uri: str | None = None
    name: str
    slug: str
    price: int | None = None  # cents
    currency: str = "usd"  # Checkr prices are US cents; kept explicit for the unified views
    created_at: Timestamp | None = None
    deleted_at: Timestamp | None = None
    apply_url: str | None = None
    screenings: NullableList[Screening] = []


class Invitation(CheckrRecord):
    id: str
    object: Literal["invitation", "test_invitation"] = "invitation"
    uri: str | None = None
    status: Literal["pending", "completed", "expired"]
    candidate_id: str
    package: str | None = None
    report_id: str | None = None
    invitation_url: str | None = None
    created_at: Timestamp
    expires_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    deleted_at: Timestamp | None = None
    archived: bool | None = None
    tags: NullableList[str] = []


class InvoiceLineItem(CheckrRecord):
    description: str | None = None
    package: str | None = None
    quantity: int | None = None
    unit_price: int | None = None  # cents
    amount: int | None = None  # cents


class Invoice(CheckrRecord):
    """ASSUMED contract: Checkr publishes no invoices API (see docs/providers/checkr.md)."""

    id: str
    object: Literal["invoice"] = "invoice"
    uri: str | None = None
    number: str | None = None
    status: str | None = None
    currency: str = "usd"
    amount: int  # cents
    period_start: Timestamp | None = None
    period_end: Timestamp | None = None
    created_at: Timestamp
    due_at: Timestamp | None = None
    line_items: NullableList[InvoiceLineItem] = []
