"""Render Checkr JSON objects from compact facts at a given sandbox time.

Field names, order and JSON types follow tests/fixtures/checkr/ (Checkr's OpenAPI examples).
Every renderer is a pure function of its facts and `now`, so the list endpoints, `GET` by id,
`export()` and webhook payloads always agree.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sandbox.checkr.catalogue import COMPANIES, FIRST, LAST, MIDDLE, PLACES, SCREENINGS, SEGMENTS
from sandbox.checkr.ids import hex_token
from sandbox.checkr.timeline import CANCELED, CLEAR, INVITE_TTL


def ts(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def digest(*parts: object) -> bytes:
    return hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=32).digest()


class ReportFacts(NamedTuple):
    id: str
    candidate_id: str
    created: int
    done: int
    outcome: int
    package: str
    source: str


class InvitationFacts(NamedTuple):
    id: str
    candidate_id: str
    created: int
    package: str
    completes: int | None  # when the candidate finishes (and the report is created)
    expires: int | None  # None: never (staging) or completes first
    report_id: str | None
    deleted: int | None


class PackageFacts(NamedTuple):
    id: str
    slug: str
    name: str
    price: int
    screenings: list[tuple[str, str | None]]
    created: int
    deleted: int | None
    test: bool


def generated_candidate(
    seed: int, account: int, i: int, cid: str, created: int, report_ids: list[str]
) -> dict[str, Any]:
    h = digest(seed, "cand", account, i)
    first, last = FIRST[h[0] % len(FIRST)], LAST[h[1] % len(LAST)]
    middle = MIDDLE[h[2] % len(MIDDLE)]
    city, state, zipcode = PLACES[h[3] % len(PLACES)]
    dl_state = PLACES[h[4] % len(PLACES)][1]
    return {
        "id": cid,
        "object": "candidate",
        "uri": f"/v1/candidates/{cid}",
        "created_at": ts(created),
        "first_name": first,
        "middle_name": middle,
        "no_middle_name": middle is None,
        "last_name": last,
        "mother_maiden_name": LAST[h[5] % len(LAST)] if h[5] & 1 else None,
        "email": generated_email(first, last, account, i),
        "phone": f"555{int.from_bytes(h[6:10], 'big') % 10**7:07d}",
        "zipcode": zipcode,
        "dob": f"{1960 + h[10] % 40}-{1 + h[11] % 12:02d}-{1 + h[12] % 28:02d}",
        "ssn": f"XXX-XX-{int.from_bytes(h[13:15], 'big') % 10000:04d}",
        "driver_license_number": f"F{int.from_bytes(h[15:19], 'big') % 10**7:07d}",
        "driver_license_state": dl_state,
        "previous_driver_license_number": None,
        "previous_driver_license_state": None,
        "copy_requested": bool(h[19] & 1),
        "custom_id": f"emp-{account}-{i}" if h[20] % 3 == 0 else None,
        "report_ids": report_ids,
        "geo_ids": [],
        "adjudication": None,
        "postal_address": {
            "name": f"{first} {last}",
            "street": f"{1 + h[21] * 7} Main Street",
            "street2": None,
            "city": city,
            "state": state,
            "zipcode": zipcode,
        },
        "metadata": {},
    }


def generated_email(first: str, last: str, account: int, i: int) -> str:
    """The account and index are in the address so `?email=` finds a candidate without an index."""
    return f"{first}.{last}.{account}x{i}@example.com".lower()


def created_candidate(cid: str, created: int, body: dict[str, Any], report_ids: list[str]) -> dict[str, Any]:
    """A candidate made through `POST /v1/candidates`: what was sent, Checkr's defaults elsewhere."""
    middle = body.get("middle_name")
    address = body.get("postal_address") if isinstance(body.get("postal_address"), dict) else None
    return {
        "id": cid,
        "object": "candidate",
        "uri": f"/v1/candidates/{cid}",
        "created_at": ts(created),
        "first_name": body.get("first_name"),
        "middle_name": middle,
        "no_middle_name": bool(body.get("no_middle_name", False)),
        "last_name": body.get("last_name"),
        "mother_maiden_name": body.get("mother_maiden_name"),
        "email": body["email"],
        "phone": body.get("phone"),
        "zipcode": body.get("zipcode"),
        "dob": body.get("dob"),
        "ssn": f"XXX-XX-{str(body['ssn'])[-4:]}" if body.get("ssn") else None,
        "driver_license_number": body.get("driver_license_number"),
        "driver_license_state": body.get("driver_license_state"),
        "previous_driver_license_number": body.get("previous_driver_license_number"),
        "previous_driver_license_state": body.get("previous_driver_license_state"),
        "copy_requested": bool(body.get("copy_requested", False)),
        "custom_id": body.get("custom_id"),
        "report_ids": report_ids,
        "geo_ids": [],
        "adjudication": None,
        "postal_address": address,
        "metadata": body.get("metadata") if isinstance(body.get("metadata"), dict) else {},
    }


# screening type -> (field, is_list)
_SCREENING_FIELDS: dict[str, tuple[str, bool]] = {
    "ssn_trace": ("ssn_trace_id", False),
    "sex_offender_search": ("sex_offender_search_id", False),
    "national_criminal_search": ("national_criminal_search_id", False),
    "global_watchlist_search": ("global_watchlist_search_id", False),
    "federal_criminal_search": ("federal_criminal_search_id", False),
    "county_criminal_search": ("county_criminal_search_ids", True),
    "state_criminal_search": ("state_criminal_searches", True),
    "motor_vehicle_report": ("motor_vehicle_report_id", False),
    "drug_screening": ("drug_screening_id", False),
    "facis_search": ("facis_search_id", False),
    "professional_license_verification": ("professional_license_verification_ids", True),
}
_SCALAR_IDS = [
    "ssn_trace_id",
    "arrest_search_id",
    "drug_alcohol_clearinghouse_id",
    "drug_screening_id",
    "facis_search_id",
    "federal_criminal_search_id",
    "federal_district_criminal_search_id",
    "federal_civil_search_id",
    "federal_district_civil_search_id",
    "global_watchlist_search_id",
    "sex_offender_search_id",
    "national_criminal_search_id",
]
_LIST_IDS_A = ["county_criminal_search_ids"]
_SCALAR_IDS_B = ["occupational_health_screening_id"]
_LIST_IDS_B = ["personal_reference_verification_ids", "professional_reference_verification_ids"]
_SCALAR_IDS_C = ["motor_vehicle_report_id"]
_LIST_IDS_C = [
    "professional_license_verification_ids",
    "state_criminal_searches",
    "international_criminal_searches_v2_ids",
    "international_adverse_media_search_ids",
]
_SCALAR_IDS_D = [
    "international_global_watchlist_search_id",
    "international_education_verification_id",
    "international_employment_verification_id",
    "international_identity_document_validation_id",
]


def report(
    seed: int,
    f: ReportFacts,
    now: int,
    screenings: list[tuple[str, str | None]],
    object_name: str,
    first_eta: int | None = None,
    dispute: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Pending until `done`; then complete (clear/consider) or canceled.

    Optional steps (`lifecycle.py`): until `first_eta` the ETA shown is that too-early estimate;
    within `dispute` = (opened, resolved) the status is `dispute`, after it the report is complete
    again, revised (`revised_at`) to clear.
    """
    h = digest(seed, "rep", f.id)
    done = now >= f.done
    canceled = done and f.outcome == CANCELED
    disputed = dispute is not None and dispute[0] <= now < dispute[1]
    revised = dispute is not None and now >= dispute[1]
    complete = done and not canceled
    clear = f.outcome == CLEAR or revised
    eta = first_eta if first_eta is not None and now < first_eta else f.done - f.done % 3600 + 3600
    city, state, _zip = PLACES[h[0] % len(PLACES)]
    ids: dict[str, Any] = {}
    for stype, _sub in screenings:
        fieldname, is_list = _SCREENING_FIELDS.get(stype, (None, False))
        if fieldname is None:
            continue
        sid = hex_token(seed, "scr", f.id, stype)
        ids[fieldname] = [sid] if is_list else sid
    drug = None
    if "drug_screening_id" in ids:
        drug = {
            "id": ids["drug_screening_id"],
            "status": "clear" if complete else "pending",
            "result": "clear" if complete else None,
            "disposition": "negative" if complete else None,
            "mro_notes": None,
            "analytes": [{"name": "Marijuana", "disposition": "negative", "specimen_type": "urine"}]
            if complete
            else [],
            "events": [{"type": "status_update", "text": "Specimen Sent to Lab", "created_at": ts(f.created + 3600)}],
            "screening_pass_expires_at": ts(f.created + 14 * 86400),
            "appointment_id": hex_token(seed, "appt", f.id),
        }
    out: dict[str, Any] = {
        "id": f.id,
        "object": object_name,
        "uri": f"/v1/reports/{f.id}",
        "status": "dispute" if disputed else "complete" if complete else "canceled" if canceled else "pending",
        "result": ("clear" if clear else "consider") if complete else None,
        "includes_canceled": canceled,
        "created_at": ts(f.created),
        "completed_at": ts(f.done) if complete else None,
        "revised_at": ts(dispute[1]) if revised and dispute is not None else None,
        "upgraded_at": None,
        "turnaround_time": f.done - f.created if complete else None,
        "package": f.package,
        "adjudication": None,
        "assessment": ("eligible" if clear else "review") if complete else None,
        "source": f.source,
        "segment_stamps": [SEGMENTS[h[1] % len(SEGMENTS)]],
        "work_locations": [{"country": "US", "state": state, "city": city}],
        "estimated_completion_time": ts(eta),
        "candidate_story_ids": [],
        "candidate_id": f.candidate_id,
        "drug_screening": drug,
    }
    for group, is_list in (
        (_SCALAR_IDS, False),
        (_LIST_IDS_A, True),
        (_SCALAR_IDS_B, False),
        (_LIST_IDS_B, True),
        (_SCALAR_IDS_C, False),
        (_LIST_IDS_C, True),
        (_SCALAR_IDS_D, False),
    ):
        for key in group:
            out[key] = ids.get(key, [] if is_list else None)
    out["document_ids"] = []
    out["geo_ids"] = []
    out["program_id"] = None
    out["archived"] = False
    return out


def invitation(f: InvitationFacts, now: int, base_apply: str) -> dict[str, Any]:
    completed = f.completes is not None and now >= f.completes
    expired = not completed and f.expires is not None and now >= f.expires
    return {
        "id": f.id,
        "object": "invitation",
        "uri": f"/v1/invitations/{f.id}",
        "invitation_url": f"{base_apply}/invite/{f.id[:12]}/{f.package}",
        "status": "completed" if completed else "expired" if expired else "pending",
        "created_at": ts(f.created),
        "expires_at": ts(f.created + INVITE_TTL),
        "completed_at": ts(f.completes) if completed and f.completes is not None else None,
        "deleted_at": ts(f.deleted) if f.deleted is not None else None,
        "package": f.package,
        "candidate_id": f.candidate_id,
        "report_id": f.report_id if completed else None,
        "tags": [],
        "archived": False,
        "archived_info": None,
    }


def package(f: PackageFacts, base_apply: str, account_uri_name: str) -> dict[str, Any]:
    return {
        "id": f.id,
        "object": "test_package" if f.test else "package",
        "uri": f"/v1/packages/{f.id}",
        "apply_url": f"{base_apply}/apply/{account_uri_name}/{f.id[:12]}",
        "created_at": ts(f.created),
        "deleted_at": ts(f.deleted) if f.deleted is not None else None,
        "name": f.name,
        "slug": f.slug,
        "price": f.price,
        "screenings": [{"type": t, "subtype": s} for t, s in f.screenings],
    }


def account(seed: int, index: int, account_id: str, name: str, created: int, authorized: bool) -> dict[str, Any]:
    h = digest(seed, "acct", index)
    city, state, zipcode = PLACES[h[0] % len(PLACES)]
    slug = name.lower().replace(" ", "-")
    domain = slug.replace("-", "") + ".example.com"
    return {
        "id": account_id,
        "object": "account",
        "account_deauthorization": None,
        "adverse_action_email": f"adverse@{domain}",
        "api_authorized": True,
        "authorized": authorized,
        "available_screenings": SCREENINGS,
        "billing_email": f"billing@{domain}",
        "company": {
            "name": name,
            "dba_name": name.split()[0],
            "street": f"{100 + h[1]} Market St",
            "city": city,
            "state": state,
            "zipcode": zipcode,
            "phone": f"206-555-{int.from_bytes(h[2:4], 'big') % 10000:04d}",
            "website": f"https://{domain}",
            "industry": "48-49",
            "incorporation_state": "DE",
            "incorporation_type": "llc",
            "tax_id": None,  # write-only in Checkr's API: never echoed back
        },
        "compliance_contact_email": f"compliance@{domain}",
        "created_at": ts(created),
        "default_compliance_city": city,
        "default_compliance_state": state,
        "geos_required": False,
        "name": name,
        "purpose": "employment",
        "segmentation_enabled": bool(h[4] & 1),
        "support_email": f"support@{domain}",
        "support_phone": None,
        "technical_contact_email": f"it@{domain}",
        "uri": f"/v1/accounts/{account_id}",
        "uri_name": slug,
    }


def account_name(index: int, staging: bool) -> str:
    name = COMPANIES[index % len(COMPANIES)]
    return f"{name} (staging)" if staging else name
