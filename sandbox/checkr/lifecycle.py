"""Optional report lifecycle steps beyond pending -> complete: a missed ETA and a dispute.

Checkr sends `report.updated` when a report's estimated completion time is re-generated (its first
estimate passed without completion) and, for a disputed report, `report.disputed` and later
`report.completed` again with `revised_at` set (docs/providers/checkr.md). Which reports take these
steps is a keyed hash of the report id, so every view renders the same report the same way. The
rules only touch reports created (ETA) or disputed after `since`, when they were switched on, so
switching them on never rewrites what a client may already have seen; `eta_miss_open` also lets
reports already open then miss an ETA still ahead (for a client that first syncs after switching
on: one that synced before saw their real ETA).
"""

from __future__ import annotations

from typing import NamedTuple

from sandbox.checkr.ids import unit
from sandbox.checkr.records import ReportFacts
from sandbox.checkr.timeline import CONSIDER

HOUR = 3600


class ReportRules(NamedTuple):
    since: int  # epoch the rules were switched on
    eta_miss_rate: float  # share of reports whose first ETA passes before they complete
    eta_slip: int  # seconds between that first ETA and the real completion (at least 2 h)
    eta_miss_open: bool  # reports already open at `since` may miss too (their first ETA after it)
    dispute_rate: float  # share of `consider` reports the candidate disputes
    dispute_after: int  # seconds from completion to the dispute
    dispute_length: int  # seconds the dispute lasts; then the report completes again, revised


def hour_ceil(t: int) -> int:
    """The next whole hour after t (how the sandbox states an ETA)."""
    return t - t % HOUR + HOUR


def first_eta(seed: int, f: ReportFacts, rules: ReportRules | None) -> int | None:
    """The first, too early ETA of a report that misses it (re-estimated at that moment), else None."""
    if rules is None or rules.eta_miss_rate <= 0:
        return None
    eta = hour_ceil(f.done - rules.eta_slip)
    if eta <= f.created or eta >= f.done:
        return None
    if f.created < rules.since and not (rules.eta_miss_open and eta > rules.since):
        return None  # only reports created since: an older one keeps the ETA a client may have seen
    return eta if unit(seed, "eta-miss", f.id) < rules.eta_miss_rate else None


def dispute(seed: int, f: ReportFacts, rules: ReportRules | None) -> tuple[int, int] | None:
    """(opened, resolved) for a disputed report, else None. Only `consider` reports are disputed."""
    if rules is None or rules.dispute_rate <= 0 or f.outcome != CONSIDER:
        return None
    opened = f.done + rules.dispute_after
    if opened <= rules.since or unit(seed, "dispute", f.id) >= rules.dispute_rate:
        return None
    return opened, opened + rules.dispute_length
