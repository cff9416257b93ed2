"""Fixed reference data the generator draws from: names, places, packages, nodes."""

from __future__ import annotations

from typing import Any

FIRST = [
    "John",
    "Maria",
    "Wei",
    "Aisha",
    "Carlos",
    "Olga",
    "Kwame",
    "Priya",
    "Liam",
    "Sofia",
    "Hiro",
    "Fatima",
    "Noah",
    "Elena",
    "Omar",
    "Grace",
    "Mateo",
    "Yuki",
    "Ava",
    "Tomas",
]
LAST = [
    "Smith",
    "Garcia",
    "Chen",
    "Okafor",
    "Silva",
    "Ivanova",
    "Mensah",
    "Patel",
    "Murphy",
    "Rossi",
    "Tanaka",
    "Haddad",
    "Brown",
    "Novak",
    "Aziz",
    "Kim",
    "Lopez",
    "Sato",
    "Walker",
    "Berg",
]
MIDDLE = ["Alfred", "Lee", None, "Marie", None, "James", None, "Ann"]
PLACES = [
    ("San Francisco", "CA", "94108"),
    ("Austin", "TX", "73301"),
    ("Denver", "CO", "80202"),
    ("Seattle", "WA", "98101"),
    ("Chicago", "IL", "60601"),
    ("Miami", "FL", "33101"),
    ("Boston", "MA", "02108"),
    ("Portland", "OR", "97201"),
]
COMPANIES = [
    "Acme Corp",
    "Globex Staffing",
    "Initech Logistics",
    "Umbrella Health",
    "Stark Delivery",
    "Wayne Couriers",
    "Hooli Services",
    "Vandelay Imports",
]
SEGMENTS = ["unit|Anvil Charlotte", "unit|Rocket Denver", "region|West", "region|East"]

# slug, name, price in cents, screenings (type, subtype)
PACKAGES: list[tuple[str, str, int, list[tuple[str, str | None]]]] = [
    (
        "basic_plus",
        "Basic+",
        2999,
        [
            ("ssn_trace", None),
            ("sex_offender_search", None),
            ("global_watchlist_search", None),
            ("national_criminal_search", None),
        ],
    ),
    (
        "essential",
        "Essential",
        5499,
        [
            ("ssn_trace", None),
            ("sex_offender_search", None),
            ("national_criminal_search", None),
            ("county_criminal_search", "7years"),
        ],
    ),
    (
        "driver_pro",
        "Driver Pro",
        6500,
        [
            ("ssn_trace", None),
            ("national_criminal_search", None),
            ("county_criminal_search", "7years"),
            ("motor_vehicle_report", None),
        ],
    ),
    (
        "tasker_pro",
        "Tasker Pro",
        4500,
        [("ssn_trace", None), ("sex_offender_search", None), ("state_criminal_search", "7years")],
    ),
    (
        "criminal_pro",
        "Criminal Pro",
        8000,
        [
            ("ssn_trace", None),
            ("national_criminal_search", None),
            ("county_criminal_search", "7years"),
            ("federal_criminal_search", "7years"),
        ],
    ),
    (
        "drug_pro",
        "Drug Pro",
        9900,
        [("ssn_trace", None), ("national_criminal_search", None), ("drug_screening", "standard")],
    ),
    (
        "healthcare_pro",
        "Healthcare Pro",
        12000,
        [("ssn_trace", None), ("facis_search", None), ("professional_license_verification", None)],
    ),
]

NODES: list[dict[str, Any]] = [
    {
        "name": "Headquarters",
        "custom_id": "hq",
        "tier": "company",
        "parent_custom_id": None,
        "packages": ["basic_plus", "essential"],
    },
    {
        "name": "West Region",
        "custom_id": "west",
        "tier": "region",
        "parent_custom_id": "hq",
        "packages": ["driver_pro", "tasker_pro"],
    },
    {
        "name": "Denver Depot",
        "custom_id": "west-den",
        "tier": "department",
        "parent_custom_id": "west",
        "packages": ["driver_pro"],
    },
]

SCREENINGS = [
    "county_civil_search",
    "county_criminal_search",
    "municipal_criminal_search",
    "education_verification",
    "employment_verification",
    "federal_civil_search",
    "federal_criminal_search",
    "motor_vehicle_report",
    "national_criminal_search",
    "sex_offender_search",
    "ssn_trace",
    "state_criminal_search",
    "drug_screening",
    "facis_search",
]
