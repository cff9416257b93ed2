"""`SandboxServer`: every sandbox provider plus the control app, each on its own loopback uvicorn thread."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import formatdate
from types import TracebackType
from typing import Any

import uvicorn

from common.asgi_thread import free_port
from sandbox.checkr import CheckrProvider
from sandbox.checkr.webhook_chaos import WebhookChaos
from sandbox.clearchecks import ClearChecksProvider
from sandbox.clock import SandboxClock, iso, random_steps
from sandbox.control import build_control_app
from sandbox.errors import SandboxError
from sandbox.faults import FaultConfig
from sandbox.truth import Truth, normalize

PROVIDER_KEYS = ("checkr", "checkr_staging", "clearchecks")


def build_providers(
    *,
    seed: int,
    scale: int,
    clock: SandboxClock,
    rate_limits: dict[str, int] | None = None,
    open_reports: dict[str, int] | None = None,
) -> dict[str, Any]:
    limits, opened = rate_limits or {}, open_reports or {}
    for name, given in (("rate_limits", limits), ("open_reports", opened)):
        unknown = set(given) - set(PROVIDER_KEYS)
        if unknown:
            raise ValueError(f"{name} names unknown providers {sorted(unknown)}; known: {list(PROVIDER_KEYS)}")

    def checkr(key: str, environment: str, accounts: int) -> CheckrProvider:
        return CheckrProvider(
            seed=seed,
            scale=scale,
            clock=clock,
            rate_limit=limits.get(key),
            key=key,
            environment=environment,
            accounts=accounts,
            open_reports=opened.get(key, 0),
        )

    providers: dict[str, Any] = {
        "checkr": checkr("checkr", "production", 3),
        "checkr_staging": checkr("checkr_staging", "staging", 2),
        "clearchecks": ClearChecksProvider(
            seed=seed,
            scale=scale,
            clock=clock,
            rate_limit=limits.get("clearchecks"),
            open_reports=opened.get("clearchecks", 0),
        ),
    }
    return providers


class SimulatedDate:
    """ASGI middleware: every response's `Date` header is the sandbox clock's time, as a provider's
    is its own clock's (uvicorn's would be the real time, and is switched off for providers). A
    client orders record versions by it (integrations/engine/observed.py)."""

    def __init__(self, app: Any, clock: SandboxClock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def dated(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                headers.append((b"date", formatdate(self.clock.now().timestamp(), usegmt=True).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, dated)


class _Thread:
    """One uvicorn server in its own thread with its own event loop.

    uvicorn binds the port itself: handing it a pre-bound socket cost ~40 ms a request here
    (delayed ACKs), so port 0 is resolved to a free port first and checked before starting.
    Another process can take that port in between; `start_serving` then retries on a new one.
    `date_header=False` leaves the `Date` header to the app (providers send the sandbox clock's).
    """

    def __init__(self, app: Any, host: str, port: int, *, date_header: bool = True) -> None:
        port = port or free_port(host)  # below the ephemeral range: outgoing sockets cannot take it
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise OSError(f"sandbox cannot listen on {host}:{port}: {exc.strerror}") from exc
            self.port = int(probe.getsockname()[1])
        config = uvicorn.Config(
            app,
            host=host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
            backlog=2048,
            date_header=date_header,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits on a failed bind; wait_started reports it
            self.server.run()

    def start(self) -> None:
        self.thread.start()

    def wait_started(self, deadline: float) -> None:
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox server on port {self.port} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.signal_stop()
        self.thread.join(timeout=10)

    def signal_stop(self) -> None:
        """Ask uvicorn to stop (it notices within its 0.1 s tick); `stop` also waits for it."""
        self.server.should_exit = True


def start_serving(
    app: Any, host: str, port: int, deadline: float, attempts: int = 5, *, date_header: bool = True
) -> _Thread:
    """Start one server; an auto-chosen port lost to a race between probe and bind is retried."""
    for attempt in range(attempts):
        t = _Thread(app, host, port, date_header=date_header)
        t.start()
        try:
            t.wait_started(deadline)
            return t
        except RuntimeError:
            t.stop()
            if port or attempt == attempts - 1 or time.monotonic() > deadline:
                raise
    raise AssertionError("unreachable")


class SandboxServer:
    """Context manager; `info` is the info JSON once started. Ports default to free ones.

    `open_reports`: per provider, extra reports per account that are all still open when the clock
    starts, e.g. `{"checkr": 3500, "clearchecks": 1000}` (docs/sandbox.md, "Scale knobs").
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        checkr_port: int = 0,
        checkr_staging_port: int = 0,
        clearchecks_port: int = 0,
        control_port: int = 0,
        seed: int = 42,
        scale: int = 50,
        rate_limits: dict[str, int] | None = None,
        open_reports: dict[str, int] | None = None,
    ) -> None:
        self.host = host
        self.seed = seed
        self.scale = scale
        self.clock = SandboxClock()
        self.providers: dict[str, Any] = build_providers(
            seed=seed,
            scale=scale,
            clock=self.clock,
            rate_limits=rate_limits,
            open_reports=open_reports,
        )
        self._ports = {
            "checkr": checkr_port,
            "checkr_staging": checkr_staging_port,
            "clearchecks": clearchecks_port,
            "control": control_port,
        }
        self._threads: dict[str, _Thread] = {}
        self._advance_lock = threading.Lock()
        self.info: dict[str, Any] = {}

    # ---- lifecycle ----
    def start(self) -> SandboxServer:
        try:
            deadline = time.monotonic() + 30
            apps = {key: SimulatedDate(provider.app, self.clock) for key, provider in self.providers.items()}
            apps["control"] = build_control_app(self)
            for key, app in apps.items():
                self._threads[key] = start_serving(app, self.host, self._ports[key], deadline,
                                                   date_header=key == "control")
        except BaseException:
            self.stop()
            raise
        self.info = self._build_info()
        return self

    def stop(self) -> None:
        for t in self._threads.values():  # all at once: each takes one uvicorn tick to notice
            t.signal_stop()
        for t in self._threads.values():
            t.stop()
        self._threads.clear()
        for provider in self.providers.values():
            close = getattr(provider, "close", None)
            if close:
                close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # ---- URLs and info ----
    def base_url(self, key: str) -> str:
        return f"http://{self.host}:{self._threads[key].port}"

    @property
    def control_url(self) -> str:
        return f"{self.base_url('control')}/_sandbox"

    def _build_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"control_url": self.control_url}
        for key, provider in self.providers.items():
            info[key] = provider.info(self.base_url(key))
        return info

    # ---- driving it from Python ----
    def advance(self, **timedelta_kwargs: float) -> tuple[datetime, datetime]:
        """Move the clock and let every provider react (complete, create, expire, issue, send webhooks)."""
        with self._advance_lock:
            old, new = self.clock.advance(timedelta(**timedelta_kwargs))
            for provider in self.providers.values():
                provider.on_advance(old, new)
            return old, new

    def simulate(
        self,
        *,
        days: float,
        rng: random.Random | int = 0,
        min_step: timedelta = timedelta(minutes=5),
        max_step: timedelta = timedelta(hours=6),
        between: Callable[[datetime, datetime], None] | None = None,
    ) -> list[tuple[datetime, datetime]]:
        """Advance `days` in seeded random steps (log-uniform in [min_step, max_step]); the world changes
        at each as configured (`set_activity`), and `between(old, new)` runs after each step (a test
        syncs there). Returns the steps."""
        r = rng if isinstance(rng, random.Random) else random.Random(rng)
        done = []
        for step in random_steps(timedelta(days=days), r, min_step, max_step):
            old, new = self.advance(seconds=step.total_seconds())
            done.append((old, new))
            if between is not None:
                between(old, new)
        return done

    def provider(self, provider_key: str) -> Any:
        if provider_key not in self.providers:
            raise SandboxError(404, f"unknown provider {provider_key!r}; one of {sorted(self.providers)}")
        return self.providers[provider_key]

    def export(self, provider_key: str, account_id: str | None = None) -> dict[str, Any]:
        return dict(self.provider(provider_key).export(account_id))

    def request_count(self, provider_key: str) -> int:
        return int(self.providers[provider_key].request_count())

    def reset_faults(self) -> None:
        for provider in self.providers.values():
            provider.faults.configure(FaultConfig())

    def set_latency(self, provider_key: str, ms: int, jitter_ms: int = 0) -> FaultConfig:
        """Per-request latency (plus seeded jitter) on every API route of that provider; other faults stay."""
        if ms < 0 or jitter_ms < 0:
            raise SandboxError(400, f"latency must be >= 0 ms, got {ms} and jitter {jitter_ms}")
        config: FaultConfig = self.provider(provider_key).faults.set_latency(ms, jitter_ms)
        return config

    # ---- webhook delivery (Checkr providers) ----
    def webhook_sender(self, provider_key: str) -> Any:
        sender = getattr(self.provider(provider_key), "sender", None)
        if sender is None:
            raise SandboxError(400, f"provider {provider_key!r} sends no webhooks; use 'checkr' or 'checkr_staging'")
        return sender

    def set_webhook_chaos(self, provider_key: str, chaos: WebhookChaos | None = None) -> WebhookChaos:
        """Drops, duplicates, late or held events, shuffles, concurrent bursts (None: all off)."""
        config = chaos or WebhookChaos()
        self.webhook_sender(provider_key).configure(config)
        return config

    def flush_webhooks(self, provider_key: str, timeout: float = 30.0) -> dict[str, int]:
        """Send every held or late event now and wait until none is queued or in flight."""
        summary: dict[str, int] = self.webhook_sender(provider_key).flush(timeout)
        return summary

    def webhook_events(
        self, provider_key: str, state: str | None = None, event_type: str | None = None
    ) -> list[dict[str, Any]]:
        """One entry per event emitted: id, type, account, object id, time, and what became of it."""
        events: list[dict[str, Any]] = self.webhook_sender(provider_key).log.entries(state, event_type)
        return events

    # ---- the world changing ----
    def set_activity(self, provider_key: str, config: Any = None) -> Any:
        """The provider's activity knobs (a model or a dict; None: all off) from the current clock on."""
        p = self.provider(provider_key)
        model = p.activity_model
        parsed = model() if config is None else config if isinstance(config, model) else model.model_validate(config)
        with self._advance_lock:
            p.set_activity(parsed)
        return parsed

    def remove(self, provider_key: str, kind: str, record_id: str) -> dict[str, Any]:
        """Make a record vanish now (candidate, report) or delete it (invitation, package): docs/sandbox.md."""
        with self._advance_lock:
            result: dict[str, Any] = self.provider(provider_key).remove(kind, record_id)
            return result

    def removed(self, provider_key: str, account_id: str | None = None) -> dict[str, Any]:
        return dict(self.provider(provider_key).removed(account_id))

    def truth(self, provider_key: str, account_id: str) -> Truth:
        """One account's ground truth, normalized per table and keyed by id (sandbox/truth.py)."""
        p = self.provider(provider_key)
        with self._advance_lock:  # export and removals from one instant
            at = iso(self.clock.now())
            exported = p.export(account_id)[account_id]
            removed = p.removed(account_id)[account_id]
        return normalize(provider_key, account_id, at, exported, removed, p.truth_tables)
