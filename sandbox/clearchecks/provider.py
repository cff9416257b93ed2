"""The ClearChecks sandbox provider: accounts, clock-driven state, export and info for the server."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from sandbox.activity import provider_rng
from sandbox.clearchecks import secrets
from sandbox.clearchecks.accounts import YEAR, Account, Timeline, build_account
from sandbox.clearchecks.activity import ClearChecksActivity, apply_activity
from sandbox.clearchecks.catalogue import PACKAGES, package_json
from sandbox.clearchecks.invoices import InvoiceBook, issued_months
from sandbox.clearchecks.reports import ReportFacts, list_item
from sandbox.clock import SandboxClock, iso
from sandbox.errors import SandboxError
from sandbox.faults import FaultInjector
from sandbox.ratelimit import FixedWindowLimiter

DEFAULT_RATE_LIMIT = 60  # requests a minute per api_token [C2]
MAX_TURNAROUND = 14 * 86400  # bounds the scan for reports completing in an advance window


class ClearChecksProvider:
    """Lazily generated, deterministic ClearChecks data behind the provider's HTTP API (see `app`)."""

    key = "clearchecks"
    activity_model = ClearChecksActivity
    # ground truth per table: (export key, id field; None = the account id) -- see sandbox/truth.py
    truth_tables = {
        "accounts": ("account", None),
        "reports": ("reports", "report_key"),
        "packages": ("packages", "sku"),
        "invoices": ("invoices", "id"),
    }

    def __init__(
        self,
        *,
        seed: int,
        scale: int,
        clock: SandboxClock,
        rate_limit: int | None = None,
        accounts: int = 3,
        widget_account_scale: int = 5,
        open_reports: int = 0,
    ) -> None:
        """`open_reports`: per account, reports ordered in the day before the clock starts, all still
        open then (the re-poll benchmark's shape: e.g. 1,000 open reports at 60 requests a minute)."""
        if scale < 0 or open_reports < 0:
            raise ValueError(f"scale and open_reports must be >= 0, got {scale} and {open_reports}")
        self.seed = seed
        self.scale = scale
        self.clock = clock
        self.faults = FaultInjector()
        self.limiter = FixedWindowLimiter(DEFAULT_RATE_LIMIT if rate_limit is None else rate_limit)
        self.source_token = secrets.source_token(seed)
        self.private_key = secrets.private_key(seed)
        self.widget_account_scale = widget_account_scale
        self.invoice_book = InvoiceBook()
        self.last_advance: dict[str, Any] = {}
        self.requests = 0
        self.activity = ClearChecksActivity()
        self._activity_rng = provider_rng(seed, self.activity, self.key)
        self._lock = threading.Lock()
        self._used_report_tokens: set[str] = set()
        self.accounts: list[Account] = []
        self._by_token: dict[str, Account] = {}
        start = self.now()
        timeline = Timeline(start, YEAR, 30 * 86400, scale, max(1, scale // 20) if scale else 0, open_reports)
        for i in range(accounts):
            self._add(
                build_account(
                    seed=seed, index=i, api_token=secrets.api_token(seed, i), timeline=timeline, created_ts=start
                )
            )
        from sandbox.clearchecks.api import build_app  # late: the app reads this object

        self.app = build_app(self)

    # --- state ---
    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def _add(self, account: Account) -> None:
        with self._lock:
            self.accounts.append(account)
            self._by_token[account.api_token] = account

    def account_for(self, token: str) -> Account | None:
        return self._by_token.get(token)

    def create_account(self, profile: dict[str, Any]) -> Account:
        """An account made through the widget: fresh api_token and a small history of its own."""
        now = self.now()
        with self._lock:
            index = len(self.accounts)
        n = self.widget_account_scale
        timeline = Timeline(now, 30 * 86400, 30 * 86400, n, 1 if n else 0)
        account = build_account(
            seed=self.seed,
            index=index,
            api_token=secrets.api_token(self.seed, index),
            timeline=timeline,
            created_ts=now,
            profile=profile,
        )
        self._add(account)
        return account

    def issue_report_token(self, facts: ReportFacts) -> str:
        return secrets.report_widget_jwt(
            report_key=facts.report_key, jti=uuid.uuid4().hex, signing_key=self.private_key
        )

    def redeem_report_token(self, token: str) -> str:
        """The report key of a valid, unused token; marks it used (single use)."""
        claims = secrets.read_report_widget_jwt(token, self.private_key)
        jti = str(claims["jti"])
        with self._lock:
            if jti in self._used_report_tokens:
                raise secrets.TokenError("report widget token already used")
            self._used_report_tokens.add(jti)
        return str(claims["sub"])

    # --- views used by the API and by export (one code path, so they agree) ---
    def report_items(self, account: Account, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        now = self.now()
        return [list_item(f, now) for f in account.iter_reports(now, offset, limit)]

    def invoices(self, account: Account) -> list[dict[str, Any]]:
        return self.invoice_book.invoices(account, self.now())

    @staticmethod
    def packages() -> list[dict[str, Any]]:
        return [package_json(p) for p in PACKAGES]

    # --- the server's generic interface ---
    def set_rate_limit(self, per_minute: int) -> None:
        if per_minute < 0:
            raise ValueError(f"per_minute must be >= 0, got {per_minute}")
        self.limiter = FixedWindowLimiter(per_minute)

    def request_count(self) -> int:
        return self.requests

    def set_activity(self, config: ClearChecksActivity) -> None:
        """Daily activity from now on (the seed restarts the draws)."""
        with self._lock:
            self.activity = config
            self._activity_rng = provider_rng(self.seed, config, self.key)

    def remove(self, kind: str, key: str) -> dict[str, Any]:
        """A report vanishes now: its status and full report answer 404; the list and export omit it."""
        if kind != "report":
            raise SandboxError(400, f"ClearChecks records that can vanish: 'report', got {kind!r}")
        now = self.now()
        for account in list(self.accounts):
            if account.find(key, now) is not None:
                account.remove(key, now)
                return {"removed": [key]}
        raise SandboxError(404, f"no ClearChecks report has key {key!r}")

    def removed(self, account_id: str | None = None) -> dict[str, dict[str, dict[str, str]]]:
        out = {}
        for a in self._accounts(account_id):
            with a.lock:
                out[a.id] = {"reports": {k: iso(_dt(t)) for k, t in a.removed_keys.items()}}
        return out

    def _accounts(self, account_id: str | None) -> list[Account]:
        accounts = list(self.accounts)
        if account_id is None:
            return accounts
        found = [a for a in accounts if a.id == account_id]
        if not found:
            raise SandboxError(404, f"no clearchecks account {account_id!r}")
        return found

    def on_advance(self, old: datetime, new: datetime) -> None:
        """ClearChecks sends no webhooks; state is a function of the clock, so this only records what changed
        (after the day's activity, when switched on)."""
        lo, hi = int(old.timestamp()), int(new.timestamp())
        with self._lock:
            activity, rng = self.activity, self._activity_rng
        if activity.draws:
            apply_activity(list(self.accounts), activity, rng, lo, hi)
        ordered = completed = invoiced = 0
        for account in list(self.accounts):
            ordered += account.visible_count(hi) - account.visible_count(lo)
            for facts in account.iter_reports(hi, offset=_first_after(account, lo - MAX_TURNAROUND)):
                done = facts.complete_ts
                if done is not None and lo < done <= hi:
                    completed += 1
            invoiced += len(issued_months(account, hi)) - len(issued_months(account, lo))
        self.last_advance = {
            "old": iso(old),
            "new": iso(new),
            "new_reports": ordered,
            "completed": completed,
            "invoices_issued": invoiced,
        }

    def export(self, account_id: str | None = None) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for account in self._accounts(account_id):
            out[account.id] = {
                "account": dict(account.profile),
                "teams": [dict(t) for t in account.teams],
                "reports": self.report_items(account),
                "packages": self.packages(),
                "invoices": self.invoices(account),
                "billing": dict(account.billing),
            }
        return out

    def info(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": base_url.rstrip("/"),
            "source_token": self.source_token,
            "private_key": self.private_key,
            "accounts": [
                {"id": a.id, "name": a.profile["company_name"], "api_token": a.api_token} for a in list(self.accounts)
            ],
        }


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _first_after(account: Account, ts: int) -> int:
    """Merged index of the first visible report ordered at or after `ts` (a lower bound is enough)."""
    from bisect import bisect_left

    return max(0, bisect_left(account.order_ts, ts) - len(account.removed_gen))  # vanished ones shift it down
