"""Validation of `POST /api/orders/new` bodies (shape from public client code; rules ASSUMED)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sandbox.clearchecks.catalogue import ADDON_NAMES, PACKAGES_BY_SKU

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
YesNo = Literal["Y", "N"]


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    report_sku: str
    applicant_emails: list[str] = Field(min_length=1, max_length=100)
    order_quantity: int | None = Field(None, ge=1)
    terms_agree: YesNo
    drug_test: YesNo = "N"
    drug_sku: str | None = None
    mvr: YesNo = "N"
    employment: YesNo = "N"
    education: YesNo = "N"
    blj: YesNo = "N"
    federal_criminal: YesNo = "N"
    include_monitoring: YesNo = "N"

    @field_validator("report_sku")
    @classmethod
    def _known_sku(cls, v: str) -> str:
        if v not in PACKAGES_BY_SKU:
            raise ValueError(f"unknown SKU {v!r}; known: {', '.join(PACKAGES_BY_SKU)}")
        return v

    @field_validator("applicant_emails")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        bad = [e for e in v if not EMAIL.match(e)]
        if bad:
            raise ValueError(f"not an email address: {bad[0]!r}")
        return v

    @model_validator(mode="after")
    def _agreed_and_counted(self) -> OrderRequest:
        if self.terms_agree != "Y":
            raise ValueError('terms_agree must be "Y" to place an order')
        if self.order_quantity is not None and self.order_quantity != len(self.applicant_emails):
            raise ValueError(
                f"order_quantity is {self.order_quantity} but {len(self.applicant_emails)} applicant_emails were given"
            )
        return self

    @property
    def addons(self) -> tuple[str, ...]:
        return tuple(a for a in ADDON_NAMES if getattr(self, a) == "Y")


class OrderError(ValueError):
    """A readable message naming the bad field(s)."""


def parse_order(body: Any) -> OrderRequest:
    if not isinstance(body, dict):
        raise OrderError("the body must be a JSON object")
    try:
        return OrderRequest.model_validate(body)
    except ValidationError as exc:
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"]) or "body"
            parts.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
        raise OrderError("; ".join(parts)) from None


class BillingUpdate(BaseModel):
    """`PUT /api/accounts/billing` (ASSUMED contract): any subset of these fields."""

    model_config = ConfigDict(extra="forbid")

    billing_email: str | None = None
    billing_plan: str | None = None
    vat_id: str | None = None
    card_token: str | None = None

    @field_validator("billing_email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and not EMAIL.match(v):
            raise ValueError(f"not an email address: {v!r}")
        return v

    @field_validator("card_token")
    @classmethod
    def _card(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"tok_[A-Za-z0-9_]{4,}", v):
            raise ValueError("must be a card token like tok_visa (raw card numbers are never accepted)")
        return v


def parse_billing(body: Any) -> BillingUpdate:
    if not isinstance(body, dict) or not body:
        raise OrderError("the body must be a non-empty JSON object")
    try:
        return BillingUpdate.model_validate(body)
    except ValidationError as exc:
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"]) or "body"
            msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
            parts.append(f"{where}: {msg}")
        raise OrderError("; ".join(parts)) from None
