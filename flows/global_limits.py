"""Cross-worker rules on Prefect's global concurrency limits, for runs that have a Prefect API.

Two rules hold however many workers (on however many hosts) run syncs and actions:

- **One process syncs a connection at a time.** Each connection has a global concurrency limit
  `screensync:conn:<integration>:<connection_id>` of 1 slot. A flow run takes it (with a lease,
  `ConnectionSlots`) before the connection's first sync and gives it back after its last; a
  second flow run that wants the same connection asks again every second for up to
  `SCREENSYNC_SLOT_WAIT` seconds, then reports it refused with a clear message. This is stronger than
  "one run per (connection, sync)" and is what keeps a credential's rate budget whole (below).
  The slot is a Prefect 3 *lease*: the holder's process renews it every 20 s; a worker that dies
  stops renewing, and the server's repossessor frees the slot `LEASE_SECONDS` (60 s, the server's
  minimum) plus up to 15 s (its loop) later, so a crashed holder never blocks a connection for good.
- **A credential's rate budget.** Providers limit requests per credential. All sync traffic of a
  connection comes from the one process holding its slot, where the engine's per-credential
  limiter paces it at `target_share` of the limit (plus a burst that fits in the rest, see
  integrations/engine/rate_limiter.py). Actions run elsewhere (their own flow runs) and spend the
  remainder: a rate limit `screensync:actions:<integration>:<connection_id>` (slot decay) admits
  an action only while the headroom `requests - target_share*requests - burst` per window allows.
  Over any window of `per_seconds` the two together therefore stay within the declared limit:
  syncs <= burst + target_share*requests, actions <= the rest (see `action_budget`).

Without a Prefect API (`screensync sync` from a shell, tests without a server) the host-local lock
files of flows/locks.py keep the first rule on one machine. With an API and a warehouse *file*
both are taken, so a CLI sync on the same host and a flow run exclude each other too.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import os
import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from common.settings import local_warehouse_file
from flows.locks import LockTimeout, file_lock, sync_lock_path
from integrations.engine.definition import RateLimitConfig

LEASE_SECONDS = 60.0  # Prefect's server refuses shorter leases...
# ...renewed this often while held: a round that fails (a loaded server) leaves two more before it lapses
RENEW_EVERY_S = LEASE_SECONDS / 3
# how long a sync waits for its connection's slot: a crashed holder's lease frees it in <= ~75 s
SLOT_WAIT_SECONDS = float(os.environ.get("SCREENSYNC_SLOT_WAIT", "180"))
log = logging.getLogger("screensync.flows")
ACTION_BUDGET_WAIT = float(os.environ.get("SCREENSYNC_ACTION_BUDGET_WAIT", "120"))
_BANNED = re.compile(r"[/%&<>]")  # Prefect's banned characters in names
_ensured: set[tuple[str, int, float | None]] = set()
_ensured_lock = threading.Lock()


def prefect_api_configured() -> bool:
    """True when this process talks to a Prefect server (a worker's flow run, `screensync serve`)."""
    from flows.prefect_env import api_url

    return bool(api_url())


def limit_name(kind: str, integration: str, connection_id: str) -> str:
    """`screensync:<kind>:<integration>:<connection>`; characters Prefect bans become `_` plus a hash."""
    raw = f"screensync:{kind}:{integration}:{connection_id}"
    safe = _BANNED.sub("_", raw)
    return safe if safe == raw else f"{safe}:{hashlib.sha256(raw.encode()).hexdigest()[:8]}"


def ensure_limit(name: str, limit: int, slot_decay_per_second: float | None = None) -> None:
    """Create (or correct) the global concurrency limit once per process."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectAlreadyExists

    key = (name, limit, slot_decay_per_second)
    with _ensured_lock:
        if key in _ensured:
            return
    # another worker may create it between the upsert's read and its create
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.upsert_global_concurrency_limit_by_name(name, limit, slot_decay_per_second)
    with _ensured_lock:
        _ensured.add(key)


def _holder() -> object | None:
    """The flow run holding a slot, shown by Prefect next to the lease."""
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.context import FlowRunContext

    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        return ConcurrencyLeaseHolder(type="flow_run", id=flow_ctx.flow_run.id)
    return None


class ConnectionSlots:
    """The connection slots one flow run holds: taken before a connection's first sync, released
    after its last, so between two syncs of a connection no other process can take its credential.

    Taken from the flow's own thread (a slot taken inside a task would be released by Prefect when
    that task ends); one thread renews every held lease every RENEW_EVERY_S, each on its own
    (`renew_round`). Without a Prefect API every method is a no-op (lock files guard the host instead).
    """

    def __init__(self, integration: str) -> None:
        self.integration = integration
        self.enabled = prefect_api_configured()
        self._held: dict[str, UUID] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._releaser: threading.Thread | None = None
        self._to_release: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._context: object | None = None
        self._holder: object | None = None  # the flow run, for a slot taken again from the renewal thread

    def name(self, connection_id: str) -> str:
        return limit_name("conn", self.integration, connection_id)

    def try_take(self, connection_id: str) -> bool:
        """Take the connection's slot if it is free (one request); False when another run holds it.

        No client-side timeout: a slow server answer must not leave a slot granted to nobody."""
        if not self.enabled:
            return True
        import httpx
        from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
        from prefect.concurrency._sync import acquire_concurrency_slots_with_lease
        from prefect.concurrency.context import ConcurrencyContext

        name = self.name(connection_id)
        ensure_limit(name, 1)
        try:
            response = acquire_concurrency_slots_with_lease(
                [name], 1, max_retries=0, lease_duration=LEASE_SECONDS, strict=True,
                holder=_holder(),  # type: ignore[arg-type]
            )  # fmt: skip
        except ConcurrencySlotAcquisitionError as exc:
            cause = exc.__cause__
            if isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == 423:
                return False  # locked: another run holds it
            raise
        self._context = ConcurrencyContext.get()  # Prefect's safety net releases it if we never do
        self._holder = _holder()
        with self._lock:
            self._held[connection_id] = response.lease_id
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew, name="screensync-slot-renewal", daemon=True)
                self._renewer.start()
                # started from the flow's thread, in its context (the API it talks to)
                self._releaser = threading.Thread(target=contextvars.copy_context().run, args=(self._release_queued,),
                                                  name="screensync-slot-release", daemon=True)
                self._releaser.start()
        return True

    def release_soon(self, connection_id: str) -> None:
        """Give the slot back from another thread: for a task's done callback, which runs on the task
        runner's thread. A release is an API round trip (0.1-3 s on a loaded 2-core machine, measured
        in bench/fanout.py) that held that thread, and so the next connection's start."""
        with self._lock:
            if connection_id not in self._held:
                return
        self._to_release.put(connection_id)

    def _release_queued(self) -> None:
        while (connection_id := self._to_release.get()) is not None:
            self.release(connection_id)

    def refused(self, connection_id: str, waited: float) -> LockTimeout:
        return LockTimeout(
            f"sync {self.integration}/{connection_id} is held by another flow run (Prefect global concurrency "
            f"limit {self.name(connection_id)!r}); waited {waited:.0f}s. A run whose worker died frees it "
            f"within ~{LEASE_SECONDS + 15:.0f}s."
        )

    def release(self, connection_id: str) -> None:
        """Give the slot back (any thread); a no-op for a connection not held."""
        with self._lock:
            lease_id = self._held.pop(connection_id, None)
        if lease_id is None:
            return
        from prefect.client.orchestration import get_client

        try:
            with get_client(sync_client=True) as client:
                client.release_concurrency_slots_with_lease(lease_id=lease_id)
        except Exception as exc:  # the lease expires on its own within LEASE_SECONDS
            log.warning("could not release %s's slot (%s); its lease expires on its own", connection_id, exc)
            return
        cleanup = getattr(self._context, "cleanup_lease_ids", None)
        if cleanup is not None and lease_id in cleanup:
            cleanup.remove(lease_id)

    def close(self) -> None:
        """Give back every slot still held (those queued first) and stop the helper threads."""
        if self._releaser is not None:
            self._to_release.put(None)
            self._releaser.join()
        for connection_id in list(self._held):
            self.release(connection_id)
        self._stop.set()

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_EVERY_S):
            with self._lock:
                held = dict(self._held)
            self.renew_round(held)

    def renew_round(self, held: dict[str, UUID]) -> dict[str, str]:
        """Renew each lease of `held` (a snapshot of the held slots) on its own; what became of each:
        "renewed", "released" (given back since the snapshot: the server no longer knows the lease),
        "retaken" (the lease lapsed while still held, and the slot was free: taken again), "lost"
        (it lapsed and another run holds the slot now), or "failed" (the server did not answer: the
        next round tries again). One lease's error used to end the round, leaving the others
        unrenewed: a lease released during a round (a connection finishing) made the rest lapse."""
        import httpx
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        outcome: dict[str, str] = {}
        try:
            with get_client(sync_client=True) as client:
                for connection_id, lease_id in held.items():
                    try:
                        client.renew_concurrency_lease(lease_id=lease_id, lease_duration=LEASE_SECONDS)
                        outcome[connection_id] = "renewed"
                    except (ObjectNotFound, httpx.HTTPStatusError) as exc:  # about this lease: go on
                        status = getattr(getattr(exc, "response", None), "status_code", 404)
                        if status not in (404, 410):
                            log.warning("renewing %s's slot failed: %s", connection_id, exc)
                            continue
                        try:
                            outcome[connection_id] = self._lapsed(client, connection_id, lease_id)
                        except httpx.HTTPStatusError as err:
                            log.warning("taking %s's lapsed slot again failed: %s", connection_id, err)
        except Exception as exc:  # the server unreachable: the next round (RENEW_EVERY_S on) tries again
            log.warning("renewing connection slots failed: %s", exc)
        for connection_id in held:
            outcome.setdefault(connection_id, "failed")
        return outcome

    def _lapsed(self, client: object, connection_id: str, lease_id: UUID) -> str:
        """The server no longer knows `lease_id`: given back since the snapshot, or lapsed while held."""
        import httpx

        with self._lock:
            if self._held.get(connection_id) != lease_id:
                return "released"
        try:
            response = client.increment_concurrency_slots_with_lease(  # type: ignore[attr-defined]
                names=[self.name(connection_id)], slots=1, mode="concurrency", lease_duration=LEASE_SECONDS,
                holder=self._holder,
            )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 423:
                raise
            log.error("the slot of %s/%s lapsed and another run holds it now: two runs may sync it at once "
                      "until this one ends", self.integration, connection_id)
            return "lost"
        with self._lock:
            if self._held.get(connection_id) == lease_id:
                self._held[connection_id] = UUID(response.json()["lease_id"])
                log.warning("the slot of %s/%s lapsed (a renewal was late) and was taken again",
                            self.integration, connection_id)
                return "retaken"
        client.release_concurrency_slots_with_lease(lease_id=UUID(response.json()["lease_id"]))  # type: ignore[attr-defined]
        return "released"


@contextmanager
def sync_guard(integration: str, connection_id: str, sync: str, warehouse: str, *, timeout: float) -> Iterator[None]:
    """The host-local half of the one-at-a-time rule: the (connection, sync)'s lock file beside a
    warehouse file (the cross-worker half is the flow's ConnectionSlots)."""
    path = local_warehouse_file(warehouse)
    if path is None:
        yield
        return
    lock = sync_lock_path(path, integration, connection_id, sync)
    with file_lock(lock, timeout=timeout, what=f"sync {integration}/{connection_id}/{sync}"):
        yield


def action_budget(rate: RateLimitConfig) -> tuple[int, float]:
    """(slots, decay per second) of the actions' rate limit: what syncs leave of the declared budget.

    Syncs of one credential (one process, by the connection slot) send at most
    `burst + target_share*requests` per window; actions get `limit + decay*per_seconds` <= the rest.
    With less than 2 requests of headroom a window still admits 2 actions (never refused for good);
    the engine's limiter then sees the provider's `remaining` header drop and slows the syncs.
    """
    from integrations.engine.rate_limiter import _burst

    sync_rate = rate.target_share * rate.requests / rate.per_seconds
    headroom = rate.requests - rate.target_share * rate.requests - _burst(sync_rate, rate.requests, rate.target_share)
    # a slot-decay limit admits at most `slots + decay * per_seconds` acquisitions in a window
    slots = 1
    return slots, max(headroom - slots, 1.0) / rate.per_seconds


def _being_synced(integration: str, connection_id: str) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(limit_name("conn", integration, connection_id)).active_slots > 0
        except ObjectNotFound:
            return False


def action_rate_limit(integration: str, connection_id: str, rate: RateLimitConfig | None, *, timeout: float) -> None:
    """Take one action slot of the credential's action budget while a sync holds the connection
    (waits; TimeoutError after `timeout`); with no sync running the whole budget is the action's."""
    if rate is None or not prefect_api_configured():
        return
    from prefect.concurrency.sync import rate_limit

    if not _being_synced(integration, connection_id):
        return  # nobody spends the credential's sync budget now: the action may use it
    name = limit_name("actions", integration, connection_id)
    slots, decay = action_budget(rate)
    ensure_limit(name, slots, decay)
    rate_limit(name, occupy=1, timeout_seconds=timeout, strict=True)
