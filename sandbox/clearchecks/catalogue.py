"""The ClearChecks SKU catalogue and what each SKU and add-on costs and checks.

Only the SKUs HIRE1, HIRE3 and EE6 are seen in public code; names, prices and components
are the sandbox's assumptions (docs/providers/clearchecks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CURRENCY = "usd"


@dataclass(frozen=True)
class Package:
    sku: str
    name: str
    price: int  # cents
    components: tuple[str, ...]  # component status keys this SKU always reports
    description: str


PACKAGES: tuple[Package, ...] = (
    Package("HIRE1", "Basic Hire", 2995, ("background_report",), "SSN trace, national criminal, sex offender"),
    Package(
        "HIRE3",
        "Standard Hire",
        4495,
        ("background_report", "federal_criminal_status"),
        "Basic Hire plus 7-year county and federal criminal",
    ),
    Package(
        "HIRE7",
        "Extended Hire",
        5995,
        ("background_report", "federal_criminal_status", "blj_status"),
        "Standard Hire plus bankruptcies, liens and judgments",
    ),
    Package(
        "EE6",
        "Employee Extended",
        6995,
        ("background_report", "federal_criminal_status", "education_status", "employment_status"),
        "Standard Hire plus education and employment verification",
    ),
    Package("MVR1", "Motor Vehicle Record", 1495, ("mvd_status",), "driving record only"),
)
PACKAGES_BY_SKU: dict[str, Package] = {p.sku: p for p in PACKAGES}

# Order flags (`"Y"`/`"N"` in POST /api/orders/new) -> (component status key, price in cents).
ADDONS: dict[str, tuple[str, int]] = {
    "drug_test": ("drug_status", 3500),
    "mvr": ("mvd_status", 1200),
    "employment": ("employment_status", 1500),
    "education": ("education_status", 1500),
    "blj": ("blj_status", 1000),
    "federal_criminal": ("federal_criminal_status", 800),
}
ADDON_NAMES: tuple[str, ...] = tuple(ADDONS)


def components_for(sku: str, addons: tuple[str, ...]) -> tuple[str, ...]:
    """Component keys in a stable order: the SKU's own, then add-ons it does not already include."""
    out = list(PACKAGES_BY_SKU[sku].components)
    for addon in addons:
        key = ADDONS[addon][0]
        if key not in out:
            out.append(key)
    return tuple(out)


def price_for(sku: str, addons: tuple[str, ...]) -> int:
    """An add-on the SKU already includes is not charged twice."""
    own = PACKAGES_BY_SKU[sku].components
    return PACKAGES_BY_SKU[sku].price + sum(ADDONS[a][1] for a in addons if ADDONS[a][0] not in own)


def package_json(package: Package) -> dict[str, Any]:
    return {
        "sku": package.sku,
        "name": package.name,
        "description": package.description,
        "price": package.price,
        "currency": CURRENCY,
        "components": list(package.components),
    }
