"""One applicant report: its generated facts and how it looks at a given sandbox time.

A report's facts (SKU, applicant, when the applicant answers, when each component finishes,
how it ends) are fixed when it is generated or ordered; its status letters are a pure
function of the clock, so the list, status, full-report and export views always agree.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox.clearchecks.catalogue import ADDON_NAMES, CURRENCY, PACKAGES_BY_SKU, components_for, price_for
from sandbox.clock import iso

FIRST_NAMES = (
    "Ava", "Liam", "Maya", "Noah", "Zoe", "Ethan", "Isla", "Lucas", "Mia", "Omar",
    "Priya", "Diego", "Hana", "Kofi", "Lena", "Marco", "Nia", "Owen", "Rosa", "Sami",
)  # fmt: skip
LAST_NAMES = (
    "Garcia", "Nguyen", "Smith", "Okafor", "Kowalski", "Haddad", "Tanaka", "Rossi", "Silva", "Jensen",
    "Murphy", "Patel", "Cohen", "Dubois", "Mensah", "Larsen", "Ibrahim", "Novak", "Reyes", "Walsh",
)  # fmt: skip
PLACES = (
    ("CO", "Arapahoe", "Greenwood Village", "80111"), ("CA", "Los Angeles", "Burbank", "91505"),
    ("TX", "Travis", "Austin", "78701"), ("NY", "Kings", "Brooklyn", "11201"), ("IL", "Cook", "Chicago", "60601"),
    ("WA", "King", "Seattle", "98101"), ("FL", "Orange", "Orlando", "32801"), ("GA", "Fulton", "Atlanta", "30303"),
)  # fmt: skip
SKU_WEIGHTS = (("HIRE1", 30), ("HIRE3", 35), ("HIRE7", 10), ("EE6", 20), ("MVR1", 5))
ADDON_SHARE = {"drug_test": 0.3, "mvr": 0.15, "employment": 0.1, "education": 0.1, "blj": 0.1, "federal_criminal": 0.1}
ADVERSE_FINAL_AFTER = 7 * 86400  # a pre-adverse notice (V) becomes final (X) after a week


@dataclass(frozen=True, slots=True)
class ReportFacts:
    report_key: str
    order_id: str
    team_id: str
    sku: str
    addons: tuple[str, ...]
    first_name: str
    last_name: str
    email: str
    order_ts: int
    info_ts: int | None  # when the applicant supplied their details; None: never (stays "A")
    component_done: tuple[tuple[str, int], ...]  # (component key, finish epoch), first one = completion
    fate: str  # "C", "V" or "X": the letter once complete
    flagged: bool
    price: int

    @property
    def complete_ts(self) -> int | None:
        return self.component_done[0][1] if self.info_ts is not None else None


def rng_for(seed: int, account: int, index: int) -> random.Random:
    return random.Random((seed * 1_000_003 + account) * 4_294_967_311 + index)


def draw_sku(rng: random.Random) -> str:
    roll = rng.random() * sum(w for _, w in SKU_WEIGHTS)
    for sku, weight in SKU_WEIGHTS:
        roll -= weight
        if roll < 0:
            return sku
    return SKU_WEIGHTS[-1][0]


def make_facts(
    rng: random.Random,
    *,
    report_key: str,
    order_id: str,
    team_id: str,
    sku: str,
    addons: tuple[str, ...],
    first_name: str,
    last_name: str,
    email: str,
    order_ts: int,
    fate_roll: float | None = None,
) -> ReportFacts:
    """Draw the timeline: applicant answers in 1-72 h, components finish within 1-10 days after that."""
    roll = rng.random() if fate_roll is None else fate_roll
    info_ts = None if roll < 0.03 else order_ts + rng.randint(3600, 72 * 3600)
    fate = "V" if roll < 0.08 else "X" if roll < 0.11 else "C"
    turnaround = int(86400 * (1 + 9 * rng.random() ** 2.5))
    keys = components_for(sku, addons)
    base = info_ts if info_ts is not None else order_ts
    fractions = sorted(rng.uniform(0.2, 1.0) for _ in keys[1:])
    # the headline component (first) finishes last: its time is the report's completion
    done = [(keys[0], base + turnaround)]
    done += [(k, base + int(turnaround * f)) for k, f in zip(keys[1:], fractions, strict=True)]
    flagged = fate != "C" or rng.random() < 0.05
    return ReportFacts(
        report_key=report_key,
        order_id=order_id,
        team_id=team_id,
        sku=sku,
        addons=addons,
        first_name=first_name,
        last_name=last_name,
        email=email,
        order_ts=order_ts,
        info_ts=info_ts,
        component_done=tuple(done),
        fate=fate,
        flagged=flagged,
        price=price_for(sku, addons),
    )


def generate_facts(
    seed: int, account: int, index: int, *, report_key: str, order_id: str, team_id: str, order_ts: int
) -> ReportFacts:
    rng = rng_for(seed, account, index)
    sku = draw_sku(rng)
    addons = tuple(a for a in ADDON_NAMES if rng.random() < ADDON_SHARE[a])
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = f"{first}.{last}.{account}x{index}@example.com".lower()
    return make_facts(
        rng,
        report_key=report_key,
        order_id=order_id,
        team_id=team_id,
        sku=sku,
        addons=addons,
        first_name=first,
        last_name=last,
        email=email,
        order_ts=order_ts,
    )


def letters_at(facts: ReportFacts, now: int) -> tuple[str, dict[str, str]]:
    """Overall letter and per-component letters at `now`.

    A until the applicant answers; P until the first component finishes, R (still pending)
    after; then C, or V (pre-adverse) turning X (final adverse) a week later.
    """
    if facts.info_ts is None or now < facts.info_ts:
        return "A", {k: "P" for k, _ in facts.component_done}
    comps = {k: ("C" if now >= ts else "P") for k, ts in facts.component_done}
    complete_ts = facts.component_done[0][1]
    if now < complete_ts:
        return ("R" if "C" in comps.values() else "P"), comps
    if facts.fate == "X" and now >= complete_ts + ADVERSE_FINAL_AFTER:
        return "X", comps
    return facts.fate, comps


def list_item(facts: ReportFacts, now: int) -> dict[str, Any]:
    """One `/api/reports/all` item (ASSUMED shape: docs/providers/clearchecks.md)."""
    letter, comps = letters_at(facts, now)
    complete_ts = facts.complete_ts
    done = complete_ts is not None and now >= complete_ts
    return {
        "report_key": facts.report_key,
        "order_id": facts.order_id,
        "report_sku": facts.sku,
        "status": letter,
        "reports": comps,
        "flagged_for_end_user_review": facts.flagged and done,
        "applicant": {"first_name": facts.first_name, "last_name": facts.last_name, "email": facts.email},
        "order_date": iso(_dt(facts.order_ts)),
        "completed_date": iso(_dt(complete_ts)) if done and complete_ts is not None else None,
        "price": facts.price,
        "currency": CURRENCY,
        "team_id": facts.team_id,
    }


def status_body(facts: ReportFacts, now: int) -> dict[str, Any]:
    """`GET /api/reports/{key}/status`, shaped like the public sample."""
    item = list_item(facts, now)
    return {
        "status": item["status"],
        "flagged_for_end_user_review": item["flagged_for_end_user_review"],
        "reports": item["reports"],
    }


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def carbon(ts: int | None) -> dict[str, Any] | None:
    """Laravel's serialised Carbon date, as the public sample's `order_date{date}` suggests."""
    if ts is None:
        return None
    return {"date": _dt(ts).strftime("%Y-%m-%d %H:%M:%S.000000"), "timezone_type": 3, "timezone": "UTC"}


def full_report(facts: ReportFacts, now: int, seed: int) -> dict[str, Any]:
    """`GET /api/report/{key}`: the sections of the public sample; details appear once complete."""
    letter, comps = letters_at(facts, now)
    complete_ts = facts.complete_ts
    done = complete_ts is not None and now >= complete_ts
    rng = random.Random(zlib.crc32(f"{seed}:{facts.report_key}".encode()))
    ssn_last4 = f"{rng.randint(0, 9999):04d}"
    places = rng.sample(PLACES, rng.randint(1, 3))
    adverse = facts.fate in ("V", "X")
    records = (
        [
            {
                "case_number": f"{p[1][:3].upper()}-{rng.randint(2012, 2024)}-{rng.randint(1000, 99999)}",
                "offense": rng.choice(("Theft under $500", "DUI", "Trespass", "Disorderly conduct")),
                "disposition": rng.choice(("Guilty", "Pleaded no contest")),
                "state": p[0],
                "county": p[1],
            }
            for p in places[: rng.randint(1, len(places))]
        ]
        if adverse and done
        else []
    )
    package = PACKAGES_BY_SKU[facts.sku]
    has_blj = "blj_status" in comps
    return {
        "report_key": facts.report_key,
        "report_description": f"{package.sku} - {package.name}",
        "status": letter,
        "flagged_for_end_user_review": facts.flagged and done,
        "order_date": carbon(facts.order_ts),
        "completed_date": carbon(complete_ts) if done else None,
        "subject": {
            "first_name": facts.first_name,
            "last_name": facts.last_name,
            "email": facts.email,
            "ssn": f"XXX-XX-{ssn_last4}",
        },
        "ssn_trace": {"message": "SSN is valid and issued" if done else "Pending"},
        "address_history": {
            "addresses": [
                {"street": f"{rng.randint(10, 9999)} Main St", "city": p[2], "state": p[0], "zip": p[3], "county": p[1]}
                for p in places
            ]
            if done
            else []
        },
        "county_criminal": {
            "county_records": [
                {
                    "state": p[0],
                    "county": p[1],
                    "result": ("Record found" if any(r["county"] == p[1] for r in records) else "Clear")
                    if done
                    else "Pending",
                }
                for p in places
            ]
        },
        "criminal_records": {"count": len(records), "records": records},
        "blj": {
            "liens": [{"amount": rng.randint(500, 9000) * 100, "filed": "2021-03-04"}]
            if has_blj and adverse and done
            else [],
            "bankruptcies": [],
            "judgments": [],
        },
    }
