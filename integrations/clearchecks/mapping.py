"""ClearChecks-only knowledge: status letters and the shape of its records.

Transforms take one raw provider record and return the model's input; they must be
pure and cheap (they run once per record on the sync's hot path).
"""

from __future__ import annotations

from typing import Any

# https://app.clearchecks.com/developers/docs: order/report status codes
STATUS_LETTERS: dict[str, str] = {
    "A": "applicant_info_requested",
    "P": "pending",
    "R": "pending",
    "C": "complete",
    "V": "pre_adverse_notice_sent",
    "X": "final_adverse_notice_sent",
}
TERMINAL_STATUS_LETTERS = frozenset({"C", "X"})


def readable_status(letter: str | None) -> str:
    if letter is None:
        return "unknown"
    return STATUS_LETTERS.get(letter, f"unknown:{letter}")


def _date(value: Any) -> Any:
    """ClearChecks wraps some dates as {"date": "..."} (Laravel Carbon); unwrap them."""
    if isinstance(value, dict):
        return value.get("date")
    return value


def account_record(raw: dict[str, Any]) -> dict[str, Any]:
    # `/api/accounts` describes the one account the token belongs to and carries no id:
    # a constant key gives exactly one row per connection.
    return {**raw, "id": str(raw.get("id") or "account")}


def report_record(raw: dict[str, Any]) -> dict[str, Any]:
    letter = raw.get("status")
    components = raw.get("reports") or {}
    applicant = raw.get("applicant") or {}
    return {
        **raw,
        "id": raw.get("report_key"),
        "status_code": letter,
        "status": readable_status(letter),
        "components": components,
        "component_statuses": {k: readable_status(v) for k, v in components.items()},
        "applicant_email": applicant.get("email") if isinstance(applicant, dict) else None,
        "order_date": _date(raw.get("order_date")),
        "completed_date": _date(raw.get("completed_date")),
    }


def package_record(raw: dict[str, Any]) -> dict[str, Any]:
    sku = raw.get("sku") or raw.get("report_sku")
    return {**raw, "id": sku, "sku": sku}


def invoice_record(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "id": str(raw.get("id")) if raw.get("id") is not None else None}
