"""Checkr's seeded daily activity: new reports on old candidates, records that vanish, invitations
cancelled, and the optional lifecycle steps (missed ETAs, disputes). All off by default.
"""

from __future__ import annotations

import random
from bisect import bisect_right

from pydantic import Field

from sandbox.activity import DAY, ActivityConfig, moments
from sandbox.checkr import records
from sandbox.checkr.ids import CANDIDATE, REPORT
from sandbox.checkr.lifecycle import ReportRules
from sandbox.checkr.timeline import IDX_BITS
from sandbox.checkr.world import APPLY_BASE, Account, Change, CheckrWorld

PENDING_LOOKBACK = 30 * DAY  # invitations older than this are not picked for cancelling


class CheckrActivity(ActivityConfig):
    candidate_vanish_per_day: float = Field(
        0.0, ge=0, description="per account: candidates that vanish with their reports and invitations"
    )
    invitation_cancel_per_day: float = Field(
        0.0, ge=0, description="per account: pending invitations deleted (invitation.deleted is sent)"
    )
    eta_miss_rate: float = Field(
        0.0, ge=0, le=1, description="share of reports whose first ETA passes first (report.updated is sent)"
    )
    eta_slip_hours: float = Field(24.0, ge=2, description="how long before completion that first ETA falls")
    eta_miss_open: bool = Field(
        False, description="reports already open when switched on may miss an ETA still ahead too (only for a "
        "client that first syncs after: one that synced before saw their real ETA)")
    dispute_rate: float = Field(0.0, ge=0, le=1, description="share of `consider` reports disputed after completion")
    dispute_after_days: float = Field(2.0, gt=0, description="completion to dispute (report.disputed)")
    dispute_days: float = Field(5.0, gt=0, description="dispute to revised completion (report.completed again)")

    def rules(self, since: int) -> ReportRules | None:
        if not (self.eta_miss_rate or self.dispute_rate):
            return None
        return ReportRules(
            since=since,
            eta_miss_rate=self.eta_miss_rate,
            eta_slip=int(self.eta_slip_hours * 3600),
            eta_miss_open=self.eta_miss_open,
            dispute_rate=self.dispute_rate,
            dispute_after=int(self.dispute_after_days * DAY),
            dispute_length=int(self.dispute_days * DAY),
        )

    @property
    def draws(self) -> bool:
        return bool(
            self.new_reports_per_day
            or self.report_vanish_per_day
            or self.candidate_vanish_per_day
            or self.invitation_cancel_per_day
        )


def apply_activity(world: CheckrWorld, config: CheckrActivity, rng: random.Random, old: int, new: int) -> list[Change]:
    """Draw and apply (old, new]'s activity, oldest first; returns the changes that send a webhook."""
    out: list[Change] = []
    for a in world.accounts:
        plan = [(t, 0) for t in moments(rng, config.new_reports_per_day, old, new)]
        plan += [(t, 1) for t in moments(rng, config.report_vanish_per_day, old, new)]
        plan += [(t, 2) for t in moments(rng, config.candidate_vanish_per_day, old, new)]
        plan += [(t, 3) for t in moments(rng, config.invitation_cancel_per_day, old, new)]
        for t, what in sorted(plan):
            if what == 0:
                cid = _existing_candidate(world, a, rng, t)
                if cid is not None:
                    world.new_report(a, cid, rng.choice(a.report_slugs), t, "api")
            elif what == 1:
                rid = _existing_report(world, a, rng, t)
                if rid is not None:
                    world.remove_report(a, rid, t)
            elif what == 2:
                cid = _existing_candidate(world, a, rng, t)
                if cid is not None:
                    world.remove_candidate(a, cid, t)
            else:
                pending = _pending_invitations(world, a, t)
                if pending:
                    obj = world.cancel_invitation(a, rng.choice(pending), t)
                    out.append(Change(t, "invitation.deleted", a, obj))
    return out


def _existing_candidate(world: CheckrWorld, a: Account, rng: random.Random, t: int) -> str | None:
    """A uniformly drawn candidate that exists at t (None when the draw hits one already vanished)."""
    n = a.tl.candidates_at(t)
    overlay = [cid for cid, (created, _) in a.candidates.items() if created <= t]
    if not n + len(overlay):
        return None
    r = rng.randrange(n + len(overlay))
    cid = world.codec.encode(CANDIDATE, a.index, r) if r < n else overlay[r - n]
    return cid if world.alive(a, cid, t) else None


def _existing_report(world: CheckrWorld, a: Account, rng: random.Random, t: int) -> str | None:
    mask = (1 << IDX_BITS) - 1
    n = bisect_right(a.tl.created_order, (t << IDX_BITS) | mask)
    overlay = [rid for rid, f in a.reports.items() if f.created <= t]
    if not n + len(overlay):
        return None
    r = rng.randrange(n + len(overlay))
    rid = world.codec.encode(REPORT, a.index, a.tl.created_order[r] & mask) if r < n else overlay[r - n]
    return rid if world.alive(a, rid, t) else None


def _pending_invitations(world: CheckrWorld, a: Account, t: int) -> list[records.InvitationFacts]:
    tl = a.tl
    lo, hi = bisect_right(tl.inv_created, t - PENDING_LOOKBACK), bisect_right(tl.inv_created, t)
    facts = [world.invitation_facts(a, j) for j in range(lo, hi)]
    facts += [f for f in a.invitations.values() if f.created <= t]
    return [
        f
        for f in facts
        if f.deleted is None
        and world.alive(a, f.id, t)
        and world.alive(a, f.candidate_id, t)
        and records.invitation(f, t, APPLY_BASE)["status"] == "pending"
    ]
