"""ClearChecks' seeded daily activity: orders placed outside the API (the dashboard) and reports that
vanish. Off by default; the knobs are the shared ones (`sandbox/activity.py`).
"""

from __future__ import annotations

import random
from bisect import bisect_right

from sandbox.activity import ActivityConfig, moments
from sandbox.clearchecks.accounts import Account
from sandbox.clearchecks.catalogue import ADDON_NAMES
from sandbox.clearchecks.reports import ADDON_SHARE, draw_sku


class ClearChecksActivity(ActivityConfig):
    @property
    def draws(self) -> bool:
        return bool(self.new_reports_per_day or self.report_vanish_per_day)


def apply_activity(accounts: list[Account], config: ClearChecksActivity, rng: random.Random, old: int, new: int) -> int:
    """Draw and apply (old, new]'s activity for every account, oldest first; returns how many orders came."""
    ordered = 0
    for acct in accounts:
        plan = [(t, 0) for t in moments(rng, config.new_reports_per_day, old, new)]
        plan += [(t, 1) for t in moments(rng, config.report_vanish_per_day, old, new)]
        for t, what in sorted(plan):
            if what == 0:
                addons = tuple(a for a in ADDON_NAMES if rng.random() < ADDON_SHARE[a])
                email = f"applicant.{acct.index}.{len(acct.overlays)}@example.com"
                acct.add_order(
                    sku=draw_sku(rng), addons=addons, email=email, now=t, order_id=acct.next_order_id(), varied=True
                )
                ordered += 1
            else:
                key = _existing_key(acct, rng, t)
                if key is not None:
                    acct.remove(key, t)
    return ordered


def _existing_key(acct: Account, rng: random.Random, t: int) -> str | None:
    """A uniformly drawn report key that exists at t (None when the draw hits one already vanished)."""
    n = bisect_right(acct.order_ts, t)
    overlay = [o.report_key for o in acct.overlays if o.order_ts <= t]
    if not n + len(overlay):
        return None
    r = rng.randrange(n + len(overlay))
    key = acct.key_for(r) if r < n else overlay[r - n]
    return None if key in acct.removed_keys else key
