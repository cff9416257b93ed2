"""The Checkr sandbox provider (production or staging): generated data, HTTP API, OAuth, webhooks."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from sandbox.activity import provider_rng
from sandbox.checkr import api, oauth
from sandbox.checkr.activity import CheckrActivity, apply_activity
from sandbox.checkr.gate import Idempotency
from sandbox.checkr.http import error_response
from sandbox.checkr.ids import hex_token
from sandbox.checkr.oauth import PartnerApp
from sandbox.checkr.records import ts
from sandbox.checkr.webhooks import EventMeta, WebhookSender, sign
from sandbox.checkr.world import Account, ApiError, Change, CheckrWorld
from sandbox.clock import SandboxClock
from sandbox.faults import FaultInjector
from sandbox.ratelimit import FixedWindowLimiter

DEFAULT_RATE_LIMIT = 1200  # requests a minute per credential (Checkr docs)


class CheckrProvider:
    """`key` is "checkr" or "checkr_staging"; staging has its own accounts, test objects, no invoices or expiry."""

    activity_model = CheckrActivity
    # ground truth per table: (export key, id field) -- see sandbox/truth.py
    truth_tables = {
        "accounts": ("account", "id"),
        "candidates": ("candidates", "id"),
        "reports": ("reports", "id"),
        "packages": ("packages", "id"),
        "invitations": ("invitations", "id"),
        "invoices": ("invoices", "id"),
    }

    def __init__(
        self,
        *,
        seed: int,
        scale: int,
        clock: SandboxClock,
        rate_limit: int | None = None,
        key: str = "checkr",
        environment: str = "production",
        accounts: int = 3,
        open_reports: int = 0,
    ) -> None:
        """`open_reports`: per account, extra candidates from the two days before the clock starts, each
        with a report still pending then (a re-poll workload; docs/sandbox.md, "Scale knobs")."""
        if scale < 0 or open_reports < 0:
            raise ValueError(f"scale and open_reports must be >= 0, got {scale} and {open_reports}")
        if environment not in ("production", "staging"):
            raise ValueError(f"environment must be 'production' or 'staging', got {environment!r}")
        self.key = key
        self.environment = environment
        self.clock = clock
        world_seed = int(hex_token(seed, key, size=6), 16)
        self.world = CheckrWorld(
            seed=world_seed,
            scale=scale,
            start=self.now(),
            staging=environment == "staging",
            accounts=accounts,
            open_reports=open_reports,
        )
        self.partner = PartnerApp.for_seed(seed, key)
        self.faults = FaultInjector()
        self.limiter = FixedWindowLimiter(DEFAULT_RATE_LIMIT if rate_limit is None else rate_limit)
        self.idempotency = Idempotency()
        self.webhook_url: str | None = None
        self.sender = WebhookSender()
        self.activity = CheckrActivity()
        self._activity_rng = provider_rng(world_seed, self.activity, key)
        self._pending_credentialed: list[Account] = []
        self._requests = 0
        self._count_lock = threading.Lock()
        self._event_seq = 0
        self.app = Starlette(routes=[*api.routes(self), *oauth.routes(self)])
        self.app.add_exception_handler(404, _not_found)
        self.app.add_exception_handler(405, _not_allowed)

    # ---- clock, counters, credentials ----
    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def count_request(self) -> None:
        with self._count_lock:
            self._requests += 1

    def request_count(self) -> int:
        """Requests served so far: lets tests prove that nothing was sent."""
        return self._requests

    def account_for(self, credential: str) -> Account | None:
        """The account an API key or an active partner access token opens."""
        account = self.world.by_key.get(credential)
        if account is not None:
            return account
        account_id = self.partner.account_of(credential)
        return self.world.by_id.get(account_id) if account_id else None

    def set_rate_limit(self, per_minute: int) -> None:
        if per_minute < 0:
            raise ValueError(f"per_minute must be >= 0, got {per_minute}")
        self.limiter = FixedWindowLimiter(per_minute)

    def set_webhook_url(self, url: str | None) -> None:
        self.webhook_url = url

    def set_activity(self, config: CheckrActivity) -> None:
        """Daily activity and lifecycle rules from now on (the seed restarts the draws)."""
        with self.world.lock:
            self.activity = config
            self._activity_rng = provider_rng(self.world.seed, config, self.key)
            self.world.rules = config.rules(self.now())

    def configure_oauth(self, redirect_uri: str, auto_approve: bool) -> None:
        self.partner.redirect_uri = redirect_uri
        self.partner.auto_approve = auto_approve

    # ---- partner events ----
    def connected_first_time(self, account: Account) -> None:
        """Checkr credentials a newly connected account a little later: here, at the next clock advance."""
        with self.world.lock:
            account.authorized = False
            self._pending_credentialed.append(account)

    def token_deauthorized(self, token: str) -> None:
        obj = {"access_code": token}
        self._emit("token.deauthorized", self.partner.partner_account_id, obj, self.now(), self.partner.client_secret)

    # ---- webhooks ----
    def signing_key(self, account: Account) -> str:
        """The partner client secret for OAuth-connected accounts, the account's API key otherwise."""
        return self.partner.client_secret if self.partner.active_tokens(account.id) else account.api_key

    def notify(self, event_type: str, account: Account, obj: dict[str, Any], at: int | None = None) -> None:
        self._emit(event_type, account.id, obj, self.now() if at is None else at, self.signing_key(account))

    def _emit(self, event_type: str, account_id: str, obj: dict[str, Any], at: int, key: str) -> None:
        url = self.webhook_url
        if not url:
            return
        with self._count_lock:
            self._event_seq += 1
            seq = self._event_seq
        event_id = hex_token(self.partner.partner_account_id, "event", seq)
        event = {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created_at": ts(at),
            "webhook_url": url,
            "data": {"object": obj},
            "account_id": account_id,
        }
        body = orjson.dumps(event)  # compact, and exactly the bytes that are signed
        meta = EventMeta(event_id, event_type, account_id, obj.get("id"), event["created_at"])
        self.sender.send(url, body, sign(key, body), meta)

    # ---- the provider interface the server and control app use ----
    def on_advance(self, old: datetime, new: datetime) -> None:
        o, n = int(old.timestamp()), int(new.timestamp())
        with self.world.lock:
            pending, self._pending_credentialed = self._pending_credentialed, []
            for account in pending:
                account.authorized = True
            changes: list[Change] = []
            if self.activity.draws:
                changes = apply_activity(self.world, self.activity, self._activity_rng, o, n)
            changes = sorted(changes + self.world.changes(o, n), key=lambda c: c.at) if self.webhook_url else []
        with self.sender.batch():
            for account in pending:
                obj = {
                    "id": account.id,
                    "object": "account",
                    "uri": f"/v1/accounts/{account.id}",
                    "created_at": ts(account.created),
                    "completed_at": ts(n),
                }
                self.notify("account.credentialed", account, obj, n)
            for change in changes:
                self.notify(change.type, change.account, change.object, change.at)

    def remove(self, kind: str, record_id: str) -> dict[str, Any]:
        """Control-API removals, now: a candidate or report vanishes (silently, as at Checkr); an
        invitation is deleted and a package retired (each sends its webhook)."""
        with self.world.lock:
            account = self._account_of(record_id)
            now = self.now()
            if kind == "report":
                return {"removed": self.world.remove_report(account, record_id, now)}
            if kind == "candidate":
                return {"removed": self.world.remove_candidate(account, record_id, now)}
            if kind == "invitation":
                obj = self.world.delete_invitation(account, record_id, now)
                event = "invitation.deleted"
            elif kind == "package":
                obj = self.world.retire_package(account, record_id, now)
                event = "package.deleted"
            else:
                raise ApiError(400, f"kind must be candidate, report, invitation or package, got {kind!r}")
        self.notify(event, account, obj, now)
        return {"removed": [record_id], "object": obj}

    def _account_of(self, record_id: str) -> Account:
        ref = self.world.codec.decode(record_id)
        if ref is None or ref.account >= len(self.world.accounts):
            raise ApiError(404, f"no {self.key} record has id {record_id!r}")
        return self.world.accounts[ref.account]

    def removed(self, account_id: str | None = None) -> dict[str, dict[str, dict[str, str]]]:
        now = self.now()
        with self.world.lock:
            return {a.id: self.world.removed_ids(a, now) for a in self._accounts(account_id)}

    def _accounts(self, account_id: str | None) -> list[Account]:
        if account_id is None:
            return list(self.world.accounts)
        if account_id not in self.world.by_id:
            raise ApiError(404, f"no {self.key} account {account_id!r}")
        return [self.world.by_id[account_id]]

    def export(self, account_id: str | None = None) -> dict[str, dict[str, Any]]:
        now = self.now()
        with self.world.lock:
            return {a.id: self.world.export_account(a, now) for a in self._accounts(account_id)}

    def info(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "environment": self.environment,
            "partner": {"client_id": self.partner.client_id, "client_secret": self.partner.client_secret},
            "accounts": [{"id": a.id, "name": a.name, "api_key": a.api_key} for a in self.world.accounts],
        }

    def close(self) -> None:
        self.sender.close()


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, "Resource not found")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return error_response(405, "Method not allowed")
