"""Checkr on-demand actions: the input forms operators fill in and the typed answers they get.

Declared in definition.yaml (`actions:`); checkr-partner-staging reuses them by reference.
Inputs forbid unknown fields so a typo in a form or an API call is an error, not a silent drop.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from integrations.checkr.models import Candidate, Invitation, Package, Report
from integrations.engine.actions import ActionContext, ActionInputError, Email


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkLocationInput(_Input):
    country: str = Field("US", min_length=2, max_length=2, description="ISO country code")
    state: str | None = Field(None, min_length=2, max_length=2, description="two-letter state code")
    city: str | None = None


class CreateCandidateInput(_Input):
    """Only the email is required (the invitation flow collects the rest from the candidate)."""

    email: Email = Field(description="the candidate's email")
    first_name: str | None = None
    middle_name: str | None = None
    no_middle_name: bool | None = None
    last_name: str | None = None
    phone: str | None = None
    zipcode: str | None = Field(None, pattern=r"^\d{5}$")
    dob: date | None = None
    custom_id: str | None = None
    work_locations: list[WorkLocationInput] = []


class InviteCandidateInput(_Input):
    """Trigger a background check: Checkr emails the candidate an invitation for `package`."""

    candidate_id: str = Field(min_length=1)
    package: str = Field(min_length=1, description="package slug, e.g. driver_pro")
    node: str | None = Field(None, description="custom id of the node; required when the account has nodes")
    work_locations: list[WorkLocationInput] = Field(min_length=1)
    tags: list[str] = []


class ReportStatusInput(_Input):
    report_id: str = Field(min_length=1)


class ReportStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    candidate_id: str
    package: str | None = None
    status: str
    result: str | None = None
    adjudication: str | None = None
    completed_at: str | None = None

    @classmethod
    def from_report(cls, report: Report) -> ReportStatus:
        done = report.completed_at.isoformat() if report.completed_at else None
        return cls(
            id=report.id,
            candidate_id=report.candidate_id,
            package=report.package,
            status=report.status,
            result=report.result,
            adjudication=report.adjudication,
            completed_at=done,
        )


class ListPackagesInput(_Input):
    per_page: int = Field(100, ge=1, le=100)


class PackageList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    count: int | None = None
    data: list[Package]


class EmbedsSessionInput(_Input):
    scopes: list[str] = Field(default_factory=lambda: ["order"], min_length=1)
    direct: bool = Field(False, description="true for direct customers (not through a partner application)")


class EmbedsSessionToken(BaseModel):
    model_config = ConfigDict(extra="ignore")

    token: str


class DeauthorizeInput(_Input):
    confirm: bool = Field(description="must be true: the customer will have to reconnect")
    reason: str = "deauthorized by an operator"

    @field_validator("confirm")
    @classmethod
    def _must_confirm(cls, value: bool) -> bool:
        if not value:
            raise ValueError("set confirm to true to deauthorize: the customer will have to reconnect")
        return value


class DeauthorizeResult(BaseModel):
    connection_id: str
    status: str


def invite_candidate(ctx: ActionContext) -> Invitation:
    """Checkr refuses an invitation without a node when the account has a hierarchy: check first."""
    payload: InviteCandidateInput = ctx.input  # type: ignore[assignment]
    if payload.node is None and _account_has_nodes(ctx):
        raise ActionInputError("node: this Checkr account has nodes, so an invitation needs one (give its custom id)")
    body = payload.model_dump(mode="json", exclude_none=True)
    return Invitation.model_validate(ctx.send("POST", "/invitations", json=body, idempotent=True))


def _account_has_nodes(ctx: ActionContext) -> bool:
    """Nango's check: an error (or an empty list) from GET /nodes means no hierarchy."""
    from integrations.engine.errors import AuthFailed, ProviderError

    try:
        body: Any = ctx.send("GET", "/nodes", params={"page": 1, "per_page": 1})
    except AuthFailed:
        raise
    except ProviderError:
        return False
    return bool(body.get("data")) if isinstance(body, dict) else False


def report_status(ctx: ActionContext) -> ReportStatus:
    payload: ReportStatusInput = ctx.input  # type: ignore[assignment]
    body = ctx.send("GET", f"/reports/{quote(payload.report_id, safe='')}")
    return ReportStatus.from_report(Report.model_validate(body))


def deauthorize(ctx: ActionContext) -> DeauthorizeResult:
    """Revoke the partner token at Checkr and mark the connection revoked (the connections package does
    both, lent by the caller as `ctx.revoke`)."""
    if ctx.revoke is None:
        raise RuntimeError("deauthorize needs the caller to lend it the connections package's revoke")
    connection = ctx.revoke()
    return DeauthorizeResult(connection_id=ctx.connection_id, status=str(connection.status))


__all__ = [
    "Candidate",
    "CreateCandidateInput",
    "DeauthorizeInput",
    "DeauthorizeResult",
    "EmbedsSessionInput",
    "EmbedsSessionToken",
    "Invitation",
    "InviteCandidateInput",
    "ListPackagesInput",
    "PackageList",
    "ReportStatus",
    "ReportStatusInput",
    "WorkLocationInput",
]
