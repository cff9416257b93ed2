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


def build_timeline(
    seed: int, account: int, scale: int, start: int, package_count: int, open_reports: int = 0
) -> AccountTimeline:
    """`open_reports` adds that many direct-order candidates in the two days before `start`, each with
    one report still pending at `start` (it completes 1 h to 4 days later): a re-poll workload."""
    if scale + open_reports >= 1 << IDX_BITS:
        raise ValueError(f"scale + open_reports must be below {1 << IDX_BITS} per account, got {scale + open_reports}")
    rng = random.Random(f"checkr:{seed}:{account}")
    tl = AccountTimeline()
    t0 = start - HISTORY
    step = (HISTORY + FUTURE) / max(scale, 1)
    created_keys: list[int] = []
    done_keys: list[int] = []
    Reports = list[tuple[int, int, int, int]]  # (created, done, outcome, package) per report

    # bound appends: this runs once per generated candidate (millions at benchmark scale)
    cand_created, cand_kind, rep_created, rep_done = tl.cand_created, tl.cand_kind, tl.rep_created, tl.rep_done
    rep_outcome, rep_pkg, rep_off = tl.rep_outcome.append, tl.rep_pkg.append, tl.rep_off.append
    created_key, done_key = created_keys.append, done_keys.append

    def add(created: int, kind: int, reports: Reports) -> None:
        i, k = len(cand_created), len(rep_created)
        cand_created.append(created)
        cand_kind.append(kind)
        if kind != DIRECT:
            tl.inv_cand.append(i)
            tl.inv_created.append(created)
        for r_created, r_done, outcome, pkg in reports:
            rep_created.append(r_created)
            rep_done.append(r_done)
            rep_outcome(outcome)
            rep_pkg(pkg)
            created_key((r_created << IDX_BITS) | k)
            done_key((r_done << IDX_BITS) | k)
            k += 1
        rep_off(k)

    extra = _open_candidates(seed, account, open_reports, start, package_count)
    e = 0
    for i in range(scale):
        created = int(t0 + i * step + rng.random() * step * 0.9)
        roll = rng.random()
        kind = DIRECT if roll < 0.65 else INVITED if roll < 0.93 else INVITE_EXPIRES
        n_reports = 0 if kind == INVITE_EXPIRES else (2 if rng.random() < 0.1 else 1)
        reports: Reports = []
        for j in range(n_reports):
            if j == 0:
                delay = int(rng.random() * 600) if kind == DIRECT else int(3600 + rng.random() * 3 * DAY)
            else:
                delay = int(20 * DAY + rng.random() * 70 * DAY)
            r_created = created + delay
            turnaround = int(3600 * (1 + rng.random() ** 3 * 119))
            roll = rng.random()
            outcome = CLEAR if roll < 0.78 else CONSIDER if roll < 0.98 else CANCELED
            reports.append((r_created, r_created + turnaround, outcome, int(rng.random() * package_count)))
        while e < len(extra) and extra[e][0] < created:
            add(*extra[e])
            e += 1
        add(created, kind, reports)
    for item in extra[e:]:
        add(*item)
    created_keys.sort()
    done_keys.sort()
    tl.created_order = array("q", created_keys)
    tl.done_order = array("q", done_keys)
    return tl


def _open_candidates(
    seed: int, account: int, n: int, start: int, package_count: int
) -> list[tuple[int, int, list[tuple[int, int, int, int]]]]:
    """Direct-order candidates created in the two days before `start`, oldest first, whose one report
    is still pending at `start` (from their own RNG, so the rest of the account is unchanged)."""
    if not n:
        return []
    rng = random.Random(f"checkr-open:{seed}:{account}")
    out = []
    for created in sorted(int(start - 2 * DAY + rng.random() * (2 * DAY - 600)) for _ in range(n)):
        r_created = created + int(rng.random() * 600)
        done = start + int(3600 + rng.random() * 4 * DAY)
        roll = rng.random()
        outcome = CLEAR if roll < 0.78 else CONSIDER if roll < 0.98 else CANCELED
        out.append((created, DIRECT, [(r_created, done, outcome, int(rng.random() * package_count))]))
    return out
