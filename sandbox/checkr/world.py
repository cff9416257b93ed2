"""The Checkr sandbox's state: generated accounts plus overlays for what the API created or changed.

Reads are pure functions of the sandbox clock; `changes(old, new)` lists what happened in
(old, new] so the provider can send one webhook per change. Methods raise `ApiError`,
which the HTTP layer turns into Checkr's `{"error": ...}` bodies.
"""

from __future__ import annotations

import calendar
import re
import threading
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.checkr import lifecycle, records
from sandbox.checkr.catalogue import NODES, PACKAGES
from sandbox.checkr.ids import CANDIDATE, INVITATION, INVOICE, OVERLAY, PACKAGE, REPORT, IdCodec, hex_token, unit
from sandbox.checkr.lifecycle import ReportRules
from sandbox.checkr.records import InvitationFacts, PackageFacts, ReportFacts
from sandbox.checkr.timeline import (
    CANCELED,
    DAY,
    HISTORY,
    INVITE_EXPIRES,
    INVITE_TTL,
    INVITED,
    AccountTimeline,
    build_timeline,
)
from sandbox.errors import SandboxError
from sandbox.kept import Kept

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
GENERATED_EMAIL_RE = re.compile(r"\.(\d+)x(\d+)@example\.com$")
APPLY_BASE = "https://apply.checkr-sandbox.test"
NEVER = 1 << 62


class ApiError(SandboxError):
    """Checkr answers these as `{"error": message}` with `status`."""


@dataclass
class Account:
    index: int
    id: str
    name: str
    api_key: str
    created: int
    has_nodes: bool
    packages: list[PackageFacts]
    report_slugs: list[str]
    tl: AccountTimeline
    authorized: bool = True  # False between a first partner connection and `account.credentialed`
    candidates: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    cand_reports: dict[str, list[str]] = field(default_factory=dict)
    reports: dict[str, ReportFacts] = field(default_factory=dict)
    invitations: dict[str, InvitationFacts] = field(default_factory=dict)
    deleted_invitations: dict[str, int] = field(default_factory=dict)
    invoice_cache: dict[int, dict[str, Any]] = field(default_factory=dict)
    overlay_count: int = 0
    removed: dict[str, int] = field(default_factory=dict)  # vanished candidate/report/invitation id -> when
    removed_cands: list[int] = field(default_factory=list)  # sorted generated candidate indexes among them
    vanished: dict[str, str] = field(default_factory=dict)  # removed id -> table, for those a client could see
    inv_base: list[InvitationFacts] = field(default_factory=list)  # generated invitations 0.., before cancels

    @property
    def uri_name(self) -> str:
        return self.name.lower().replace(" ", "-")


@dataclass(frozen=True)
class Change:
    at: int
    type: str
    account: Account
    object: dict[str, Any]


class CheckrWorld:
    def __init__(
        self, *, seed: int, scale: int, start: int, staging: bool, accounts: int, open_reports: int = 0
    ) -> None:
        self.seed = seed
        self.staging = staging
        self.start = start
        self.codec = IdCodec(seed, "checkr")
        self.lock = threading.RLock()
        self.rules: ReportRules | None = None  # optional lifecycle steps (activity config)
        self.open_reports = open_reports
        self.accounts: list[Account] = [self._build_account(i, scale) for i in range(accounts)]
        self.by_id = {a.id: a for a in self.accounts}
        self.by_key = {a.api_key: a for a in self.accounts}

    # ---------- generation ----------
    def _build_account(self, i: int, scale: int) -> Account:
        seed = self.seed
        order = sorted(range(len(PACKAGES)), key=lambda p: unit(seed, "pkgpick", i, p))
        created = self.start - HISTORY - int(30 * DAY + unit(seed, "acct-created", i) * 300 * DAY)
        facts: list[PackageFacts] = []

        def add(n: int, at: int, deleted: int | None) -> None:
            slug, name, price, screenings = PACKAGES[order[n]]
            pid = self.codec.encode(PACKAGE, i, n)
            test = self.staging and n % 2 == 1
            facts.append(PackageFacts(pid, slug, name, price, screenings, at, deleted, test))

        for n in range(4):  # the packages reports are ordered with
            add(n, created + n * DAY, None)
        add(4, created + 10 * DAY, self.start - 40 * DAY)  # retired before the clock starts
        add(5, created + 20 * DAY, self.start + int((3 + unit(seed, "pkgdel", i) * 9) * DAY))  # retired later
        add(6, self.start + int((2 + unit(seed, "pkgnew", i) * 8) * DAY), None)  # launched later
        slugs = [f.slug for f in facts[:4]]
        return Account(
            index=i,
            id=hex_token(seed, "account", i),
            name=records.account_name(i, self.staging),
            api_key="sk_test_" + hex_token(seed, "api_key", i, size=20),
            created=created,
            has_nodes=i == 0,
            packages=facts,
            report_slugs=slugs,
            tl=build_timeline(seed, i, scale, self.start, len(slugs), self.open_reports),
        )

    # ---------- facts for generated records ----------
    def _report_facts(self, a: Account, k: int) -> ReportFacts:
        tl = a.tl
        i = tl.owner(k)
        return ReportFacts(
            id=self.codec.encode(REPORT, a.index, k),
            candidate_id=self.codec.encode(CANDIDATE, a.index, i),
            created=tl.rep_created[k],
            done=tl.rep_done[k],
            outcome=tl.rep_outcome[k],
            package=a.report_slugs[tl.rep_pkg[k]],
            source="api" if tl.cand_kind[i] == 0 else "web",
        )

    def invitation_facts(self, a: Account, j: int) -> InvitationFacts:
        """Generated invitation `j` as the account holds it now (a cancelled one never completes)."""
        if j >= len(a.inv_base):  # built once per invitation: a list page needs thousands of them
            a.inv_base.extend(self._invitation_base(a, k) for k in range(len(a.inv_base), j + 1))
        f = a.inv_base[j]
        deleted = a.deleted_invitations.get(f.id) if a.deleted_invitations else None
        if deleted is None:
            return f
        if f.completes is None or f.completes > deleted:  # cancelled while pending: never completes or expires
            return f._replace(completes=None, report_id=None, expires=None, deleted=deleted)
        return f._replace(deleted=deleted)

    def _invitation_base(self, a: Account, j: int) -> InvitationFacts:
        tl = a.tl
        i = tl.inv_cand[j]
        iid = self.codec.encode(INVITATION, a.index, j)
        completes = report_id = None
        if tl.cand_kind[i] == INVITED:
            k = tl.rep_off[i]
            completes, report_id = tl.rep_created[k], self.codec.encode(REPORT, a.index, k)
        package = a.report_slugs[tl.rep_pkg[tl.rep_off[i]]] if completes is not None else a.report_slugs[i % 4]
        return InvitationFacts(
            id=iid,
            candidate_id=self.codec.encode(CANDIDATE, a.index, i),
            created=tl.inv_created[j],
            package=package,
            completes=completes,
            expires=tl.invitation_expiry(j, self.staging),
            report_id=report_id,
            deleted=None,
        )

    def report_object(self, a: Account, f: ReportFacts, now: int) -> dict[str, Any]:
        screenings = next((p.screenings for p in a.packages if p.slug == f.package), [])
        test = self.staging and unit(self.seed, "test_report", f.id) < 0.3
        rules = self.rules
        if rules is None:
            return records.report(self.seed, f, now, screenings, "test_report" if test else "report")
        eta, dispute = lifecycle.first_eta(self.seed, f, rules), lifecycle.dispute(self.seed, f, rules)
        return records.report(self.seed, f, now, screenings, "test_report" if test else "report", eta, dispute)

    @staticmethod
    def alive(a: Account, rid: str, t: int) -> bool:
        """Not vanished at t (ids vanish at a moment; views of earlier moments still show them)."""
        return not a.removed or a.removed.get(rid, NEVER) > t

    # ---------- candidates ----------
    def _candidate_report_ids(self, a: Account, cid: str, i: int | None, now: int) -> list[str]:
        ids: list[str] = []
        if i is not None:
            tl = a.tl
            ids = [
                self.codec.encode(REPORT, a.index, k)
                for k in range(tl.rep_off[i], tl.rep_off[i + 1])
                if tl.rep_created[k] <= now
            ]
        ids += [r for r in a.cand_reports.get(cid, []) if a.reports[r].created <= now]
        return [r for r in ids if self.alive(a, r, now)] if a.removed else ids

    def candidate_object(self, a: Account, ref: int | str, now: int) -> dict[str, Any]:
        if isinstance(ref, int):
            cid = self.codec.encode(CANDIDATE, a.index, ref)
            created = a.tl.cand_created[ref]
            return records.generated_candidate(
                self.seed, a.index, ref, cid, created, self._candidate_report_ids(a, cid, ref, now)
            )
        created, body = a.candidates[ref]
        return records.created_candidate(ref, created, body, self._candidate_report_ids(a, ref, None, now))

    def find_candidate(self, a: Account, cid: str, now: int) -> int | str:
        if not self.alive(a, cid, now):
            raise ApiError(404, "Candidate not found")
        if cid in a.candidates:
            return cid
        ref = self.codec.decode(cid)
        if ref and ref.kind == CANDIDATE and ref.account == a.index and ref.index < a.tl.candidates_at(now):
            return ref.index
        raise ApiError(404, "Candidate not found")

    def candidate_refs(
        self, a: Account, now: int, after: int | None, before: int | None, email: str | None
    ) -> tuple[int, Kept, list[tuple[int, str]]]:
        """Generated indexes (vanished ones left out) and overlay (created, id) pairs matching the filters."""
        tl = a.tl
        lo = bisect_right(tl.cand_created, after) if after is not None else 0
        hi = tl.candidates_at(now)
        if before is not None:
            hi = min(hi, bisect_left(tl.cand_created, before))
        gen = Kept(lo, hi, a.removed_cands)
        overlay = [
            (c, cid)
            for cid, (c, body) in a.candidates.items()
            if (after is None or c > after)
            and (before is None or c < before)
            and (email is None or body.get("email", "").lower() == email.lower())
            and self.alive(a, cid, now)
        ]
        if email is not None:
            m = GENERATED_EMAIL_RE.search(email.lower())
            i = int(m.group(2)) if m and int(m.group(1)) == a.index else -1
            found = i in gen and self.candidate_object(a, i, now)["email"] == email.lower()
            gen = Kept(i, i + 1) if found else Kept(0, 0)
        return len(gen) + len(overlay), gen, overlay

    @staticmethod
    def merged_desc(
        gen_times: Any, gen: Kept, overlay: list[tuple[int, str]], start: int, stop: int
    ) -> list[int | str]:
        """Page [start, stop) of generated + overlay refs, newest first, without building the whole list."""
        ov = sorted(reversed(overlay), key=lambda p: p[0], reverse=True)  # ties: latest created first
        # position of each overlay item: generated items strictly newer come before it
        pos = [gen.count_from(bisect_right(gen_times, t, gen.lo, gen.hi)) + n for n, (t, _) in enumerate(ov)]
        out: list[int | str] = []
        o = bisect_left(pos, start)
        for p in range(start, min(stop, len(gen) + len(ov))):
            if o < len(ov) and pos[o] == p:
                out.append(ov[o][1])
                o += 1
            else:
                out.append(gen.nth_desc(p - o))
        return out

    def create_candidate(self, a: Account, body: dict[str, Any], now: int) -> dict[str, Any]:
        email = body.get("email")
        if not email:
            raise ApiError(400, "email is a required field")
        if not isinstance(email, str) or not EMAIL_RE.match(email):
            raise ApiError(400, f"Email {email!r} is not a valid email address")
        cid = self._overlay_id(a, 1)
        a.candidates[cid] = (now, dict(body))
        return self.candidate_object(a, cid, now)

    def _overlay_id(self, a: Account, kind: int) -> str:
        a.overlay_count += 1
        return self.codec.encode(OVERLAY, a.index, a.overlay_count, kind)

    # ---------- reports ----------
    def find_report(self, a: Account, rid: str, now: int) -> ReportFacts:
        f = a.reports.get(rid)
        if f is None:
            ref = self.codec.decode(rid)
            if ref and ref.kind == REPORT and ref.account == a.index and ref.index < len(a.tl.rep_created):
                f = self._report_facts(a, ref.index)
        if f is None or f.created > now or not self.alive(a, rid, now):
            raise ApiError(404, "Resource not found")
        return f

    def new_report(self, a: Account, candidate_id: str, slug: str, created: int, source: str) -> ReportFacts:
        rid = self._overlay_id(a, 2)
        turnaround = int(3600 * (1 + unit(self.seed, "tat", rid) ** 3 * 119))
        roll = unit(self.seed, "outcome", rid)
        outcome = 0 if roll < 0.78 else 1 if roll < 0.98 else CANCELED
        f = ReportFacts(rid, candidate_id, created, created + turnaround, outcome, slug, source)
        a.reports[rid] = f
        a.cand_reports.setdefault(candidate_id, []).append(rid)
        return f

    def create_report(self, a: Account, body: dict[str, Any], now: int) -> dict[str, Any]:
        cid, slug = _required(body, "candidate_id"), _required(body, "package")
        self.find_candidate(a, cid, now)
        self._active_package(a, slug, now)
        recent = [
            r
            for r in self.candidate_object(a, self.find_candidate(a, cid, now), now)["report_ids"]
            if self.find_report(a, r, now).created > now - DAY
        ]
        if len(recent) >= 3:
            raise ApiError(
                409,
                "Duplicate report detected. No more than 3 reports per candidate can be created "
                "within a 24 hour period",
            )
        return self.report_object(a, self.new_report(a, cid, slug, now, "api"), now)

    def _active_package(self, a: Account, slug: str, now: int) -> PackageFacts:
        for p in self._visible_packages(a, now):
            if p.slug == slug:
                return p
        raise ApiError(404, "Package not found")

    # ---------- packages, nodes ----------
    def _visible_packages(self, a: Account, now: int) -> list[PackageFacts]:
        live = [p for p in a.packages if p.created <= now and (p.deleted is None or p.deleted > now)]
        return sorted(live, key=lambda p: p.created, reverse=True)

    def package_object(self, a: Account, f: PackageFacts, now: int) -> dict[str, Any]:
        shown = f if f.deleted is None or f.deleted <= now else f._replace(deleted=None)
        return records.package(shown, APPLY_BASE, a.uri_name)

    def packages(self, a: Account, now: int) -> list[dict[str, Any]]:
        return [self.package_object(a, p, now) for p in self._visible_packages(a, now)]

    def find_package(self, a: Account, pid: str, now: int) -> dict[str, Any]:
        for p in a.packages:
            if p.id == pid and p.created <= now:
                return self.package_object(a, p, now)
        raise ApiError(404, "Package not found")

    def nodes(self, a: Account) -> list[dict[str, Any]]:
        return [dict(n) for n in NODES] if a.has_nodes else []

    # ---------- invitations ----------
    def _invitation_facts_all(self, a: Account, now: int) -> list[InvitationFacts]:
        n = bisect_right(a.tl.inv_created, now)
        gen = [self.invitation_facts(a, j) for j in range(n)]
        ov = [f._replace(deleted=a.deleted_invitations.get(f.id)) for f in a.invitations.values()]
        both = [f for f in gen + ov if self.alive(a, f.id, now)] if a.removed else gen + ov
        return sorted(reversed(both), key=lambda f: f.created, reverse=True)  # ties: latest first

    def invitations(self, a: Account, now: int, candidate_id: str | None, status: str | None) -> list[InvitationFacts]:
        if status is not None and status not in ("pending", "completed", "expired"):
            raise ApiError(400, "status must be one of pending, completed, expired")
        if candidate_id is not None:
            facts = [f for f in self._candidate_invitations(a, candidate_id, now)]
        else:
            facts = self._invitation_facts_all(a, now)
        out = [f for f in facts if f.deleted is None]
        if status is not None:
            out = [f for f in out if records.invitation(f, now, APPLY_BASE)["status"] == status]
        return out

    def _candidate_invitations(self, a: Account, cid: str, now: int) -> list[InvitationFacts]:
        out = [
            f._replace(deleted=a.deleted_invitations.get(f.id)) for f in a.invitations.values() if f.candidate_id == cid
        ]
        ref = self.codec.decode(cid)
        if ref and ref.kind == CANDIDATE and ref.account == a.index:
            j = bisect_left(a.tl.inv_cand, ref.index)
            if j < len(a.tl.inv_cand) and a.tl.inv_cand[j] == ref.index and a.tl.inv_created[j] <= now:
                out.append(self.invitation_facts(a, j))
        out = [f for f in out if self.alive(a, f.id, now)]
        return sorted(reversed(out), key=lambda f: f.created, reverse=True)

    def invitation_object(self, f: InvitationFacts, now: int) -> dict[str, Any]:
        return records.invitation(f, now, APPLY_BASE)

    def find_invitation(self, a: Account, iid: str, now: int) -> InvitationFacts:
        f = a.invitations.get(iid)
        if f is None:
            ref = self.codec.decode(iid)
            if ref and ref.kind == INVITATION and ref.account == a.index and ref.index < len(a.tl.inv_cand):
                f = self.invitation_facts(a, ref.index)
        if f is None or f.created > now or not self.alive(a, iid, now):
            raise ApiError(404, "Resource not found")
        return f._replace(deleted=a.deleted_invitations.get(iid))

    def create_invitation(self, a: Account, body: dict[str, Any], now: int) -> dict[str, Any]:
        cid, slug = _required(body, "candidate_id"), _required(body, "package")
        self.find_candidate(a, cid, now)
        self._active_package(a, slug, now)
        node = body.get("node")
        if a.has_nodes and not node:
            raise ApiError(400, "node is a required field for accounts with a hierarchy")
        if node and node not in {n["custom_id"] for n in self.nodes(a)}:
            raise ApiError(404, "Node not found")
        iid = self._overlay_id(a, 3)
        completes = report_id = None
        if unit(self.seed, "inv-completes", iid) < 0.8:
            completes = now + int(3600 + unit(self.seed, "inv-delay", iid) * 2 * DAY)
            report_id = self.new_report(a, cid, slug, completes, "web").id
        expires = None if completes is not None or self.staging else now + INVITE_TTL
        f = InvitationFacts(iid, cid, now, slug, completes, expires, report_id, None)
        a.invitations[iid] = f
        return self.invitation_object(f, now)

    def delete_invitation(self, a: Account, iid: str, now: int) -> dict[str, Any]:
        f = self.find_invitation(a, iid, now)
        if f.deleted is not None:
            raise ApiError(404, "Resource not found")
        if records.invitation(f, now, APPLY_BASE)["status"] != "pending":
            raise ApiError(400, "Only pending invitations can be cancelled")
        return self.cancel_invitation(a, f, now)

    def cancel_invitation(self, a: Account, f: InvitationFacts, at: int) -> dict[str, Any]:
        """A pending invitation deleted at `at`: it never completes or expires, and its report never comes."""
        a.deleted_invitations[f.id] = at
        if f.id in a.invitations:
            a.invitations[f.id] = f._replace(completes=None, expires=None, deleted=at)
            if f.report_id:
                a.reports.pop(f.report_id, None)
                a.cand_reports[f.candidate_id].remove(f.report_id)
        elif f.report_id:
            self._vanish(a, "reports", f.report_id, at, existed=False)  # the report it would have created
        return self.invitation_object(self.find_invitation(a, f.id, at), at)

    # ---------- invoices (assumed contract, production only) ----------
    def invoices(self, a: Account, now: int) -> list[dict[str, Any]]:
        if self.staging:
            return []  # Checkr staging "does not generate invoices"
        out = []
        year, month = _ym(self.start - HISTORY)
        while True:
            ny, nm = (year + (month == 12), month % 12 + 1)
            issued = calendar.timegm((ny, nm, 1, 6, 0, 0))  # 06:00Z on the 1st, for the month before
            if issued > now:
                break
            out.append(self._invoice(a, year, month, issued, now))
            year, month = ny, nm
        return list(reversed(out))

    def _invoice(self, a: Account, year: int, month: int, issued: int, now: int) -> dict[str, Any]:
        key = year * 12 + month
        cached = a.invoice_cache.get(key)
        if cached is None:
            p_start = calendar.timegm((year, month, 1, 0, 0, 0))
            p_end = issued - 6 * 3600
            counts: dict[str, int] = {}
            for k in a.tl.report_window(a.tl.created_order, p_start - 1, p_end - 1):
                slug = a.report_slugs[a.tl.rep_pkg[k]]
                counts[slug] = counts.get(slug, 0) + 1
            for f in a.reports.values():
                if p_start <= f.created < p_end:
                    counts[f.package] = counts.get(f.package, 0) + 1
            prices = {p.slug: (p.name, p.price) for p in a.packages}
            lines = [
                {
                    "description": f"{prices[s][0]} background checks",
                    "package": s,
                    "quantity": q,
                    "unit_price": prices[s][1],
                    "amount": q * prices[s][1],
                }
                for s, q in sorted(counts.items())
            ]
            iid = self.codec.encode(INVOICE, a.index, key)
            cached = {
                "id": iid,
                "object": "invoice",
                "uri": f"/v1/invoices/{iid}",
                "number": f"CHK-{a.id[:6].upper()}-{year}{month:02d}",
                "status": "open",
                "currency": "usd",
                "amount": sum(line["amount"] for line in lines),
                "period_start": records.ts(p_start),
                "period_end": records.ts(p_end),
                "created_at": records.ts(issued),
                "due_at": records.ts(issued + 30 * DAY),
                "line_items": lines,
            }
            a.invoice_cache[key] = cached
        return {**cached, "status": "paid" if now >= issued + 30 * DAY else "open"}

    # ---------- account ----------
    def account_object(self, a: Account) -> dict[str, Any]:
        return records.account(self.seed, a.index, a.id, a.name, a.created, a.authorized)

    # ---------- time ----------
    def changes(self, old: int, new: int) -> list[Change]:
        """Everything that happened in (old, new], oldest first, each as the object looked then.

        A record that vanished at r has no events from r on (Checkr sends none for the vanishing).
        """
        out: list[Change] = []
        for a in self.accounts:
            tl = a.tl

            def add(at: int, kind: str, rid: str, obj: dict[str, Any], a: Account = a) -> None:
                if self.alive(a, rid, at):
                    out.append(Change(at, kind, a, obj))

            for i in range(tl.candidates_at(old), tl.candidates_at(new)):
                t = tl.cand_created[i]
                add(t, "candidate.created", self.codec.encode(CANDIDATE, a.index, i), self.candidate_object(a, i, t))
            for j in range(bisect_right(tl.inv_created, old), bisect_right(tl.inv_created, new)):
                f = self.invitation_facts(a, j)
                add(f.created, "invitation.created", f.id, self.invitation_object(f, f.created))
            for j in range(
                bisect_right(tl.inv_created, old - INVITE_TTL), bisect_right(tl.inv_created, new - INVITE_TTL)
            ):
                if tl.cand_kind[tl.inv_cand[j]] == INVITE_EXPIRES and not self.staging:
                    f = self.invitation_facts(a, j)
                    if f.deleted is None and f.expires is not None:
                        add(f.expires, "invitation.expired", f.id, self.invitation_object(f, f.expires))
            gen_created = [self._report_facts(a, k) for k in tl.report_window(tl.created_order, old, new)]
            gen_done = [self._report_facts(a, k) for k in tl.report_window(tl.done_order, old, new)]
            ov = list(a.reports.values())
            for f in gen_created + [f for f in ov if old < f.created <= new]:
                add(f.created, "report.created", f.id, self.report_object(a, f, f.created))
            for f in gen_done + [f for f in ov if old < f.done <= new]:
                kind = "report.canceled" if f.outcome == CANCELED else "report.completed"
                add(f.done, kind, f.id, self.report_object(a, f, f.done))
            if self.rules is not None:
                self._lifecycle_changes(a, old, new, self.rules, ov, add)
            for k in tl.report_window(tl.created_order, old, new):
                i = tl.owner(k)
                if tl.cand_kind[i] == INVITED and k == tl.rep_off[i]:
                    j = bisect_left(tl.inv_cand, i)
                    f = self.invitation_facts(a, j)
                    if f.deleted is None and f.completes is not None:
                        add(f.completes, "invitation.completed", f.id, self.invitation_object(f, f.completes))
            for f in a.invitations.values():
                if f.deleted is None and f.completes is not None and old < f.completes <= new:
                    add(f.completes, "invitation.completed", f.id, self.invitation_object(f, f.completes))
                if f.deleted is None and f.expires is not None and old < f.expires <= new:
                    add(f.expires, "invitation.expired", f.id, self.invitation_object(f, f.expires))
            for p in a.packages:
                if old < p.created <= new:
                    add(p.created, "package.created", p.id, self.package_object(a, p, p.created))
                if p.deleted is not None and old < p.deleted <= new:
                    add(p.deleted, "package.deleted", p.id, self.package_object(a, p, p.deleted))
        out.sort(key=lambda c: c.at)
        return out

    def _lifecycle_changes(
        self, a: Account, old: int, new: int, rules: ReportRules, overlays: list[ReportFacts], add: Any
    ) -> None:
        """`report.updated` (a missed ETA re-estimated), `report.disputed` and the revised `report.completed`."""
        tl = a.tl
        slip, after, length = rules.eta_slip, rules.dispute_after, rules.dispute_length

        def facts(lo: int, hi: int) -> list[ReportFacts]:  # generated reports done in (lo, hi], plus overlays
            return [self._report_facts(a, k) for k in tl.report_window(tl.done_order, lo, hi)] + overlays

        seen: set[tuple[str, str]] = set()
        for f in facts(old - 3600 + slip, new + slip):
            eta = lifecycle.first_eta(self.seed, f, rules)
            if eta is not None and old < eta <= new and (f.id, "updated") not in seen:
                seen.add((f.id, "updated"))
                add(eta, "report.updated", f.id, self.report_object(a, f, eta))
        for f in facts(old - after, new - after) + facts(old - after - length, new - after - length):
            span = lifecycle.dispute(self.seed, f, rules)
            for at, kind in zip(span or (), ("report.disputed", "report.completed"), strict=False):
                if old < at <= new and (f.id, kind) not in seen:
                    seen.add((f.id, kind))
                    add(at, kind, f.id, self.report_object(a, f, at))

    # ---------- records that vanish or retire ----------
    def remove_report(self, a: Account, rid: str, at: int) -> list[str]:
        """The report vanishes at `at`: GET answers 404, its candidate no longer lists it. No webhook."""
        self.find_report(a, rid, at)
        self._vanish(a, "reports", rid, at)
        return [rid]

    def remove_candidate(self, a: Account, cid: str, at: int) -> list[str]:
        """The candidate vanishes at `at`, and with it its reports and invitations (future ones never come)."""
        ref = self.find_candidate(a, cid, at)
        self._vanish(a, "candidates", cid, at)
        gone = [cid]
        reports: list[tuple[str, int]] = [(r, a.reports[r].created) for r in a.cand_reports.get(cid, [])]
        invitations = [(f.id, f.created) for f in a.invitations.values() if f.candidate_id == cid]
        if isinstance(ref, int):
            tl = a.tl
            reports += [
                (self.codec.encode(REPORT, a.index, k), tl.rep_created[k])
                for k in range(tl.rep_off[ref], tl.rep_off[ref + 1])
            ]
            j = bisect_left(tl.inv_cand, ref)
            if j < len(tl.inv_cand) and tl.inv_cand[j] == ref:
                invitations.append((self.codec.encode(INVITATION, a.index, j), tl.inv_created[j]))
            insort(a.removed_cands, ref)
        for table, items in (("reports", reports), ("invitations", invitations)):
            for rid, created in items:
                if rid not in a.removed:
                    self._vanish(a, table, rid, at, existed=created <= at)
                    gone.append(rid)
        return gone

    @staticmethod
    def _vanish(a: Account, table: str, rid: str, at: int, existed: bool = True) -> None:
        a.removed[rid] = at
        if existed:  # one that would have come later never shows up at all: nothing to report
            a.vanished[rid] = table

    def retire_package(self, a: Account, pid: str, at: int) -> dict[str, Any]:
        """The package is deleted at `at` (Checkr keeps answering GET with `deleted_at`)."""
        for n, p in enumerate(a.packages):
            if p.id == pid and p.created <= at and (p.deleted is None or p.deleted > at):
                a.packages[n] = p._replace(deleted=at)
                return self.package_object(a, a.packages[n], at)
        raise ApiError(404, "Package not found")

    def removed_ids(self, a: Account, now: int) -> dict[str, dict[str, str]]:
        """What the account no longer lists, by table, with when: vanished candidates, reports and
        invitations (GET answers 404), deleted invitations and retired packages (GET still answers)."""
        out: dict[str, dict[str, str]] = {t: {} for t in ("candidates", "reports", "invitations", "packages")}
        for rid, table in a.vanished.items():
            out[table][rid] = records.ts(a.removed[rid])
        for iid, at in a.deleted_invitations.items():
            if at <= now:
                out["invitations"].setdefault(iid, records.ts(at))
        for p in a.packages:
            if p.deleted is not None and p.deleted <= now:
                out["packages"][p.id] = records.ts(p.deleted)
        return out

    # ---------- truth ----------
    def export_account(self, a: Account, now: int) -> dict[str, Any]:
        count, gen, overlay = self.candidate_refs(a, now, None, None, None)
        refs = self.merged_desc(a.tl.cand_created, gen, overlay, 0, count)
        candidates = [self.candidate_object(a, r, now) for r in refs]
        reports = [
            self.report_object(a, self.find_report(a, rid, now), now) for c in candidates for rid in c["report_ids"]
        ]
        return {
            "account": self.account_object(a),
            "candidates": candidates,
            "reports": reports,
            "packages": self.packages(a, now),
            "invitations": [self.invitation_object(f, now) for f in self.invitations(a, now, None, None)],
            "invoices": self.invoices(a, now),
        }


def _required(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not value or not isinstance(value, str):
        raise ApiError(400, f"{key} is a required field")
    return value


def _ym(epoch: int) -> tuple[int, int]:
    d = datetime.fromtimestamp(epoch, UTC)
    return (d.year, d.month + 1) if d.month < 12 else (d.year + 1, 1)
