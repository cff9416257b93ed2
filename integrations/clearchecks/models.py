"""ClearChecks record models. Only `/api/accounts`, orders and report status are documented
publicly; the list, invoice and package shapes are assumptions (docs/providers/clearchecks.md).
"""

from __future__ import annotations

from typing import Any

from integrations.engine.coercion import ProviderRecord, Timestamp


class ClearChecksRecord(ProviderRecord):
    """Strict, per the engine's one rule of what is coerced and what is rejected (engine/coercion.py)."""


class Account(ClearChecksRecord):
    id: str  # "account": the body has no id, and there is one account per connection
    first_name: str | None = None
    last_name: str | None = None
    company_name: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None


class Applicant(ClearChecksRecord):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None


class Report(ClearChecksRecord):
    id: str  # the report_key
    report_key: str
    order_id: str | None = None
    report_sku: str | None = None
    status_code: str  # the provider's letter: A, P, R, C, V, X
    status: str  # readable: applicant_info_requested, pending, complete, pre_adverse_notice_sent, ...
    components: dict[str, str] = {}  # per-component letters, e.g. {"drug_status": "C"}
    component_statuses: dict[str, str] = {}  # the same, readable
    flagged_for_end_user_review: bool | None = None
    applicant: Applicant | None = None
    applicant_email: str | None = None
    order_date: Timestamp | None = None
    completed_date: Timestamp | None = None
    price: int | None = None  # cents
    currency: str = "usd"
    team_id: int | str | None = None


class Package(ClearChecksRecord):
    id: str  # the SKU
    sku: str
    name: str | None = None
    price: int | None = None  # cents
    currency: str = "usd"
    components: list[str] = []


class Invoice(ClearChecksRecord):
    id: str
    number: str | None = None
    status: str | None = None
    period_start: Timestamp | None = None
    period_end: Timestamp | None = None
    issued_at: Timestamp | None = None
    amount: int  # cents
    currency: str = "usd"
    line_items: list[dict[str, Any]] = []
