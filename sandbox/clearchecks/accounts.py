"""One ClearChecks customer account: profile, teams, its lazily generated reports and API orders.

Generated reports are identified by their index; only their order times are stored (one
`array('q')`, 8 bytes a report), everything else is regenerated from (seed, account, index)
on demand. Orders placed through the API are kept as explicit overlays.
"""

from __future__ import annotations

import hashlib
import random
import threading
import zlib
from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sandbox.clearchecks.reports import PLACES, ReportFacts, generate_facts, make_facts
from sandbox.clock import iso
from sandbox.kept import Kept

YEAR = 365 * 86400
DAY = 86400
KEY_SPACE = 1 << 48
KEY_MULTIPLIER = 0x9E3779B97F4B  # odd, so multiplying is a bijection mod 2**48
KEY_INVERSE = pow(KEY_MULTIPLIER, -1, KEY_SPACE)
COMPANIES = ("Acme Logistics", "Bluebird Home Care", "Cobalt Staffing", "Driftwood Hotels", "Evergreen Movers")
OWNERS = (("William", "Hanna"), ("Joseph", "Barbera"), ("Tex", "Avery"), ("Chuck", "Jones"), ("Bob", "Clampett"))


@dataclass(frozen=True)
class Timeline:
    """Where an account's generated reports fall: `history` before `origin`, `future` after it."""

    origin: int
    history_seconds: int
    future_seconds: int
    n_history: int
    n_future: int
    n_recent: int = 0  # extra reports ordered in the day before `origin`: all still open at the start


@dataclass
class Account:
    index: int
    seed: int
    api_token: str
    profile: dict[str, Any]  # exactly the `GET /api/accounts` body
    created_ts: int
    timeline: Timeline
    teams: list[dict[str, Any]] = field(default_factory=list)
    billing: dict[str, Any] = field(default_factory=dict)
    order_ts: array = field(default_factory=lambda: array("q"))
    overlays: list[ReportFacts] = field(default_factory=list)
    overlay_pos: list[int] = field(default_factory=list)  # insertion point of each overlay among generated
    overlay_keys: dict[str, int] = field(default_factory=dict)
    removed_gen: list[int] = field(default_factory=list)  # sorted indexes of generated reports that vanished
    removed_keys: dict[str, int] = field(default_factory=dict)  # vanished report key -> when
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def id(self) -> str:
        """The sandbox's account id: ClearChecks' account body has none, so the owner team's id is used."""
        return str(self.teams[0]["id"])

    @property
    def size(self) -> int:
        return len(self.order_ts)

    # --- report keys: generated keys encode (account, index) so no lookup table is needed ---
    def _mask(self) -> int:
        return int.from_bytes(hashlib.sha256(f"cc-keys:{self.seed}".encode()).digest()[:6])

    def key_for(self, index: int) -> str:
        """A random-looking but reversible key: (account, index) scrambled by an odd multiplier."""
        word = ((self.index << 32) | index) * KEY_MULTIPLIER + self._mask()
        check = zlib.crc32(f"{self.seed}:{self.index}:{index}".encode())
        return f"{word % KEY_SPACE:012x}{check:08x}"

    def index_of(self, key: str) -> int | None:
        if len(key) != 20:
            return None
        try:
            word = int(key[:12], 16)
        except ValueError:
            return None
        word = (word - self._mask()) * KEY_INVERSE % KEY_SPACE
        a, j = word >> 32, word & 0xFFFFFFFF
        if a != self.index or not 0 <= j < self.size or key != self.key_for(j):
            return None
        return j

    # --- reports ---
    def generated(self, index: int) -> ReportFacts:
        second = index % 7 == 6 and len(self.teams) > 1  # one in seven reports sits in a second team
        team = self.teams[1 if second else 0]
        return generate_facts(
            self.seed,
            self.index,
            index,
            report_key=self.key_for(index),
            order_id=str(100_000_000 * (self.index + 1) + index),
            team_id=str(team["id"]),
            order_ts=self.order_ts[index],
        )

    def find(self, key: str, now: int) -> ReportFacts | None:
        """The report if it exists at `now` for this account (future generated ones do not yet)."""
        with self.lock:
            if self.removed_keys.get(key, now + 1) <= now:
                return None
            k = self.overlay_keys.get(key)
            if k is not None:
                return self.overlays[k]
        j = self.index_of(key)
        return self.generated(j) if j is not None and self.order_ts[j] <= now else None

    def _visible(self, now: int) -> tuple[Kept, list[tuple[int, ReportFacts]]]:
        """Generated indexes and (position among generated, facts) of API orders, vanished ones left out."""
        with self.lock:
            gen = Kept(0, bisect_right(self.order_ts, now), self.removed_gen)
            pairs = list(zip(self.overlay_pos, self.overlays, strict=True))
            if self.removed_keys:
                pairs = [(p, o) for p, o in pairs if o.report_key not in self.removed_keys]
        pairs.sort(key=lambda po: po[0])  # stable: an order racing a clock advance still lands in time order
        return gen, pairs

    def visible_count(self, now: int) -> int:
        gen, pairs = self._visible(now)
        return len(gen) + len(pairs)

    def iter_reports(self, now: int, offset: int = 0, limit: int | None = None) -> Iterator[ReportFacts]:
        """Visible reports in order-date order (generated and API orders merged), from `offset`."""
        gen, pairs = self._visible(now)
        total = len(gen) + len(pairs)
        end = total if limit is None else min(total, offset + limit)
        merged_at = [gen.count_below(p) + k for k, (p, _) in enumerate(pairs)]  # merged index of each overlay
        k = bisect_left(merged_at, offset)
        for m in range(offset, end):
            if k < len(pairs) and merged_at[k] == m:
                yield pairs[k][1]
                k += 1
            else:
                yield self.generated(gen.nth(m - k))

    def remove(self, key: str, at: int) -> ReportFacts:
        """The report vanishes at `at`: status and full report answer 404, the list and export omit it."""
        facts = self.find(key, at)
        if facts is None:
            raise KeyError(key)
        with self.lock:
            self.removed_keys[key] = at
            j = self.index_of(key)
            if j is not None:
                insort(self.removed_gen, j)
        return facts

    def reports_between(self, start: int, end: int) -> Iterator[ReportFacts]:
        """Reports ordered in [start, end), by order time (for invoices)."""
        for j in range(bisect_left(self.order_ts, start), bisect_left(self.order_ts, end)):
            yield self.generated(j)
        with self.lock:
            overlays = list(self.overlays)
        yield from (o for o in overlays if start <= o.order_ts < end)

    def add_order(
        self, *, sku: str, addons: tuple[str, ...], email: str, now: int, order_id: str, varied: bool = False
    ) -> ReportFacts:
        """An order placed at `now`; API orders mostly end clear, `varied` ones end like generated reports."""
        with self.lock:
            seq = len(self.overlays)
            key = hashlib.sha256(f"cc-order:{self.seed}:{self.index}:{seq}".encode()).hexdigest()[:20]
            rng = random.Random(zlib.crc32(key.encode()))
            local = email.split("@", 1)[0].replace("_", ".").split(".")
            facts = make_facts(
                rng,
                report_key=key,
                order_id=order_id,
                team_id=self.id,
                sku=sku,
                addons=addons,
                first_name=local[0].title() if local and local[0] else "Applicant",
                last_name=local[-1].title() if len(local) > 1 else "",
                email=email,
                order_ts=now,
                fate_roll=None if varied or not seq % 10 else 0.5,  # API orders mostly end clear, a few vary
            )
            self.overlays.append(facts)
            self.overlay_pos.append(bisect_right(self.order_ts, now))
            self.overlay_keys[key] = seq
            return facts

    def next_order_id(self) -> str:
        with self.lock:
            return str(100_000_000 * (self.index + 1) + 50_000_000 + len(self.overlays))


def build_account(
    *,
    seed: int,
    index: int,
    api_token: str,
    timeline: Timeline,
    created_ts: int,
    profile: dict[str, Any] | None = None,
) -> Account:
    rng = random.Random(zlib.crc32(f"cc-account:{seed}:{index}".encode()))
    first, last = OWNERS[index % len(OWNERS)]
    place = rng.choice(PLACES)
    base_profile = {
        "first_name": first,
        "last_name": last,
        "company_name": f"{COMPANIES[index % len(COMPANIES)]}"
        + (f" {index // len(COMPANIES) + 1}" if index >= 5 else ""),
        "city": place[2],
        "state": place[0],
        "zip": place[3],
    }
    if profile:
        base_profile.update(profile)
    account = Account(
        index=index, seed=seed, api_token=api_token, profile=base_profile, created_ts=created_ts, timeline=timeline
    )
    team_base = 1000 + 10 * index
    names = [f"{base_profile['company_name']}"] + (["Field Operations"] if index % 2 == 0 else [])
    for t, name in enumerate(names):
        account.teams.append(
            {
                "id": team_base + t,
                "owner_id": 500 + index,
                "name": name,
                "slug": name.lower().replace(" ", "-").replace(".", ""),
                "photo_url": f"https://www.gravatar.com/avatar/{hashlib.md5(name.encode()).hexdigest()}.jpg?s=200&d=identicon",
                "stripe_id": None,
                "current_billing_plan": "pay-as-you-go",
                "vat_id": None,
                "trial_ends_at": None,
                "created_at": iso_ts(created_ts - 86400 * 400 + t * 86400 * 30)
                if t
                else iso_ts(created_ts - 86400 * 400),
            }
        )
    account.billing = {
        "billing_email": f"billing@{base_profile['company_name'].lower().replace(' ', '')}.example.com",
        "billing_plan": "pay-as-you-go",
        "vat_id": None,
        "card_brand": "visa",
        "card_last4": f"{rng.randint(0, 9999):04d}",
    }
    account.order_ts = order_times(seed, index, timeline)
    return account


def order_times(seed: int, index: int, t: Timeline) -> array:
    """Non-decreasing order epochs: one per slot across history, then evenly into the future."""
    out = array("q")
    rng = random.Random(zlib.crc32(f"cc-times:{seed}:{index}".encode()))
    start = t.origin - t.history_seconds
    step = t.history_seconds / max(1, t.n_history)
    rand = rng.random
    out.extend(int(start + (j + rand()) * step) for j in range(t.n_history))
    if t.n_recent:
        rstep = DAY / t.n_recent
        recent = [int(t.origin - DAY + (j + rand()) * rstep) for j in range(t.n_recent)]
        out = array("q", sorted([*out, *recent]))
    fstep = t.future_seconds / (t.n_future + 1)
    out.extend(int(t.origin + (k + 1) * fstep) for k in range(t.n_future))
    return out


def iso_ts(ts: int) -> str:
    from datetime import UTC, datetime

    return iso(datetime.fromtimestamp(ts, UTC))
