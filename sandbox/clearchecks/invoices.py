"""Monthly invoices: one per calendar month with orders, issued on the 2nd, summing that month's reports.

The contract is ASSUMED (docs/providers/clearchecks.md). An issued invoice never changes
except for its status (open, then paid two weeks later), so its lines are cached.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.clearchecks.accounts import Account
from sandbox.clearchecks.catalogue import ADDONS, CURRENCY, PACKAGES_BY_SKU
from sandbox.clock import iso

ISSUE_DELAY = timedelta(days=1)  # May's invoice is issued 2026-06-02T00:00Z
PAY_AFTER = timedelta(days=14)


def month_start(ts: int) -> datetime:
    d = datetime.fromtimestamp(ts, UTC)
    return d.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(d: datetime) -> datetime:
    return (d + timedelta(days=32)).replace(day=1)


def issued_months(account: Account, now: int) -> list[datetime]:
    """Months whose invoice exists at `now` (oldest first), counting months with at least one order."""
    if not account.size and not account.overlays:
        return []
    first = min(([account.order_ts[0]] if account.size else []) + [o.order_ts for o in account.overlays])
    out: list[datetime] = []
    m = month_start(first)
    while (next_month(m) + ISSUE_DELAY).timestamp() <= now:
        out.append(m)
        m = next_month(m)
    return out


class InvoiceBook:
    """Invoice lines per (account, month), computed once: they are immutable after issue."""

    def __init__(self) -> None:
        self._lines: dict[tuple[int, datetime], tuple[list[dict[str, Any]], int]] = {}

    def _lines_for(self, account: Account, month: datetime) -> tuple[list[dict[str, Any]], int]:
        cache_key = (account.index, month)
        if cache_key not in self._lines:
            skus: Counter[str] = Counter()
            addons: Counter[str] = Counter()
            count = 0
            for r in account.reports_between(int(month.timestamp()), int(next_month(month).timestamp())):
                count += 1
                skus[r.sku] += 1
                own = PACKAGES_BY_SKU[r.sku].components
                addons.update(a for a in r.addons if ADDONS[a][0] not in own)
            lines = [
                _line(sku, f"{sku} - {PACKAGES_BY_SKU[sku].name}", n, PACKAGES_BY_SKU[sku].price)
                for sku, n in sorted(skus.items())
            ] + [_line(a, f"Add-on: {a}", n, ADDONS[a][1]) for a, n in sorted(addons.items())]
            self._lines[cache_key] = (lines, count)
        return self._lines[cache_key]

    def invoices(self, account: Account, now: int) -> list[dict[str, Any]]:
        out = []
        for seq, month in enumerate(issued_months(account, now)):
            lines, count = self._lines_for(account, month)
            if not count:
                continue
            issued = next_month(month) + ISSUE_DELAY
            out.append(
                {
                    "id": 10_000 * (account.index + 1) + seq,
                    "number": f"CC-{account.id}-{month:%Y%m}",
                    "status": "paid" if now >= (issued + PAY_AFTER).timestamp() else "open",
                    "period_start": iso(month),
                    "period_end": iso(next_month(month)),
                    "issued_at": iso(issued),
                    "due_at": iso(issued + PAY_AFTER),
                    "amount": sum(line["amount"] for line in lines),
                    "currency": CURRENCY,
                    "report_count": count,
                    "line_items": lines,
                }
            )
        return out


def _line(sku: str, description: str, quantity: int, unit_price: int) -> dict[str, Any]:
    return {
        "sku": sku,
        "description": description,
        "quantity": quantity,
        "unit_price": unit_price,
        "amount": quantity * unit_price,
    }
