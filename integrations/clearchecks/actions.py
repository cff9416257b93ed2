"""ClearChecks on-demand actions: order checks, read a report's status, hand out widget tokens, update billing.

Order and status shapes follow the public samples; billing update is an ASSUMED contract
(`PUT /api/accounts/billing`, see docs/operations.md) to confirm with ClearChecks.
ClearChecks documents no idempotency key, so `create_order` is not retried blindly: the
flow runs it with no task retries.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, model_validator

from integrations.clearchecks.mapping import readable_status
from integrations.engine.actions import ActionContext, Email

YesNo = Literal["Y", "N"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Output(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateOrderInput(_Input):
    """One order for one or more applicants; ClearChecks emails each applicant for their details."""

    report_sku: str = Field(min_length=1, description="package SKU, e.g. HIRE1, HIRE3, EE6")
    applicant_emails: list[Email] = Field(min_length=1, max_length=100)
    drug_test: YesNo = "N"
    drug_sku: str | None = None
    mvr: YesNo = "N"
    employment: YesNo = "N"
    education: YesNo = "N"
    blj: YesNo = "N"
    federal_criminal: YesNo = "N"
    include_monitoring: YesNo = "N"
    terms_agree: Literal["Y"] = Field(description="the platform agrees to ClearChecks' terms for this order")


class OrderedApplicant(_Output):
    report_key: str
    email: str | None = None


class CreateOrderResult(_Output):
    applicants: list[OrderedApplicant]


class ReportKeyInput(_Input):
    report_key: str = Field(min_length=1)


class ReportStatus(_Output):
    report_key: str
    status_code: str
    status: str
    flagged_for_end_user_review: bool | None = None
    components: dict[str, str] = {}


class WidgetToken(_Output):
    report_token: str


class UpdateBillingInput(_Input):
    """Any subset of the billing fields; card details only as a processor token (tok_...), never a number."""

    billing_email: Email | None = None
    billing_plan: str | None = None
    vat_id: str | None = None
    card_token: str | None = Field(None, pattern=r"^tok_[A-Za-z0-9_]{4,}$", description="e.g. tok_visa")

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateBillingInput:
        if not self.model_dump(exclude_none=True):
            raise ValueError("give at least one of billing_email, billing_plan, vat_id, card_token")
        return self


class BillingResult(_Output):
    billing_email: str | None = None
    billing_plan: str | None = None
    vat_id: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None


def report_status(ctx: ActionContext) -> ReportStatus:
    """The status answer has no key and only letters: add both so the result reads on its own."""
    payload: ReportKeyInput = ctx.input  # type: ignore[assignment]
    body = ctx.send("GET", f"/reports/{quote(payload.report_key, safe='')}/status")
    letter = str(body.get("status", ""))
    return ReportStatus(
        report_key=payload.report_key,
        status_code=letter,
        status=readable_status(letter),
        flagged_for_end_user_review=body.get("flagged_for_end_user_review"),
        components=body.get("reports") or {},
    )
