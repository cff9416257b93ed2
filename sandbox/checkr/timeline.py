"""Per-account generated history as compact arrays: when each record appears, completes or expires.

Only numbers live here (a few bytes per record); JSON is rendered on demand in `records.py`.
Everything is derived from (seed, account index), so the same seed always gives the same data.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field

DAY = 86400
HISTORY = 365 * DAY  # generated history before the clock's start
FUTURE = 30 * DAY  # generated records that appear as the clock advances
INVITE_TTL = 7 * DAY
IDX_BITS = 24  # sort keys are (epoch << IDX_BITS) | report index

# how a candidate came in
DIRECT, INVITED, INVITE_EXPIRES = 0, 1, 2
# report outcome once done
CLEAR, CONSIDER, CANCELED = 0, 1, 2


@dataclass
class AccountTimeline:
    """Arrays indexed by candidate i or flat report k (candidate i owns reports off[i]..off[i+1])."""

    cand_created: array = field(default_factory=lambda: array("q"))
    cand_kind: array = field(default_factory=lambda: array("b"))
    rep_off: array = field(default_factory=lambda: array("l", [0]))
    rep_created: array = field(default_factory=lambda: array("q"))
    rep_done: array = field(default_factory=lambda: array("q"))
    rep_outcome: array = field(default_factory=lambda: array("b"))
    rep_pkg: array = field(default_factory=lambda: array("b"))
    created_order: array = field(default_factory=lambda: array("q"))  # sorted (created << IDX_BITS | k)
    done_order: array = field(default_factory=lambda: array("q"))  # sorted (done << IDX_BITS | k)
    inv_cand: array = field(default_factory=lambda: array("l"))  # candidate index of each invitation
    inv_created: array = field(default_factory=lambda: array("q"))

    def candidates_at(self, t: int) -> int:
        """How many generated candidates exist at t (they are stored in creation order)."""
        return bisect_right(self.cand_created, t)

    def owner(self, k: int) -> int:
        return bisect_right(self.rep_off, k) - 1

    def report_window(self, order: array, old: int, new: int) -> list[int]:
        """Flat report indexes whose event time (per `order`) falls in (old, new]."""
        lo = bisect_right(order, (old << IDX_BITS) | ((1 << IDX_BITS) - 1))
        hi = bisect_right(order, (new << IDX_BITS) | ((1 << IDX_BITS) - 1))
        mask = (1 << IDX_BITS) - 1
        return [v & mask for v in order[lo:hi]]

    def invitation_expiry(self, j: int, staging: bool) -> int | None:
        """Staging invitations never expire (Checkr docs); production ones after 7 days if not completed."""
        if staging or self.cand_kind[self.inv_cand[j]] != INVITE_EXPIRES:
            return None
        return self.inv_created[j] + INVITE_TTL


def build_timeline(seed: int, account: int, scale: int, start: int, package_count: int) -> AccountTimeline:
    if scale >= 1 << IDX_BITS:
        raise ValueError(f"scale must be below {1 << IDX_BITS} candidates per account, got {scale}")
    rng = random.Random(f"checkr:{seed}:{account}")
    tl = AccountTimeline()
    t0 = start - HISTORY
    step = (HISTORY + FUTURE) / max(scale, 1)
    created_keys: list[int] = []
    done_keys: list[int] = []
    k = 0
    for i in range(scale):
        created = int(t0 + i * step + rng.random() * step * 0.9)
        roll = rng.random()
        kind = DIRECT if roll < 0.65 else INVITED if roll < 0.93 else INVITE_EXPIRES
        tl.cand_created.append(created)
        tl.cand_kind.append(kind)
        if kind != DIRECT:
            tl.inv_cand.append(i)
            tl.inv_created.append(created)
        n_reports = 0 if kind == INVITE_EXPIRES else (2 if rng.random() < 0.1 else 1)
        for j in range(n_reports):
            if j == 0:
                delay = int(rng.random() * 600) if kind == DIRECT else int(3600 + rng.random() * 3 * DAY)
            else:
                delay = int(20 * DAY + rng.random() * 70 * DAY)
            r_created = created + delay
            turnaround = int(3600 * (1 + rng.random() ** 3 * 119))
            roll = rng.random()
            outcome = CLEAR if roll < 0.78 else CONSIDER if roll < 0.98 else CANCELED
            tl.rep_created.append(r_created)
            tl.rep_done.append(r_created + turnaround)
            tl.rep_outcome.append(outcome)
            tl.rep_pkg.append(int(rng.random() * package_count))
            created_keys.append((r_created << IDX_BITS) | k)
            done_keys.append(((r_created + turnaround) << IDX_BITS) | k)
            k += 1
        tl.rep_off.append(k)
    created_keys.sort()
    done_keys.sort()
    tl.created_order = array("q", created_keys)
    tl.done_order = array("q", done_keys)
    return tl
