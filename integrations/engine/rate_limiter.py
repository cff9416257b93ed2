"""Per-credential pacing that stays under the provider's limit instead of bouncing off it.

A token bucket refilled at `target_share * requests / per_seconds` spreads requests evenly;
the server's limit/remaining/reset headers then tighten it (another process using the same
credential shows up as a lower `remaining`). A 429 pauses the bucket until the reset time.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from integrations.engine.definition import RateLimitConfig

# resets are given to the second: arrive a little after, not a hair before
_RESET_MARGIN_S = 0.25


def credential_fingerprint(token: str) -> str:
    """A registry key derived from the credential that does not reveal it."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def parse_reset(value: str, fmt: str, *, now_wall: float) -> float | None:
    """Seconds from now until the window resets, per the definition's `reset_format`."""
    try:
        if fmt == "iso8601":
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            if when.tzinfo is None:  # a reset without an offset is UTC, not this machine's zone
                when = when.replace(tzinfo=UTC)
            return when.timestamp() - now_wall
        if fmt == "epoch_seconds":
            return float(value) - now_wall
        return float(value)  # delta_seconds
    except ValueError:
        return None


class RateLimiter:
    """Thread-safe; one per credential per process (see `limiter_for`) so all its users share it."""

    def __init__(
        self,
        config: RateLimitConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock, self._sleep, self._wall = clock, sleep, wall
        self._lock = threading.Lock()
        self._rate = config.target_share * config.requests / config.per_seconds  # requests per second
        self._burst = _burst(self._rate, config.requests, config.target_share)
        self._tokens = self._burst
        self._last = clock()
        self._paused_until = 0.0  # monotonic time before which nothing is sent
        self._window_rate = float("inf")  # what the server says is left of its window allows...
        self._window_until = 0.0  # ...until this monotonic time

    @property
    def rate(self) -> float:
        """Current pace in requests per second (declared, or the server's limit once seen)."""
        return self._rate

    def acquire(self) -> float:
        """Block until a request may be sent; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                if now < self._paused_until:
                    delay = self._paused_until - now
                else:
                    rate = self._rate if now >= self._window_until else min(self._rate, self._window_rate)
                    self._tokens = min(self._burst, self._tokens + (now - self._last) * rate)
                    self._last = now
                    # a sleep of exactly the computed delay can refill to 0.999..., and a delay
                    # below the clock's resolution would then never advance it: allow the epsilon
                    if self._tokens >= 1 - 1e-9:
                        self._tokens = max(0.0, self._tokens - 1)
                        return waited
                    delay = (1 - self._tokens) / rate
            self._sleep(delay)
            waited += delay

    def observe(self, status_code: int, headers: Mapping[str, str]) -> None:
        """Adopt what the server says about the window we are in.

        A used-up window (remaining 0 with a known reset) pauses everyone on this credential
        until the reset, whatever the status. A 429 alone does not: the client pauses the
        limiter for the wait it settles on (Retry-After, reset or backoff), see `pause_for`.
        """
        cfg = self.config
        limit = _int(headers.get(cfg.limit_header)) if cfg.limit_header else None
        remaining = _int(headers.get(cfg.remaining_header)) if cfg.remaining_header else None
        reset_in = None
        if cfg.reset_header and headers.get(cfg.reset_header):
            reset_in = parse_reset(headers[cfg.reset_header], cfg.reset_format, now_wall=self._wall())
        with self._lock:
            if limit and limit > 0:
                # the server's limit wins over the declared one (Checkr raises it per account)
                self._rate = cfg.target_share * limit / cfg.per_seconds
                self._burst = _burst(self._rate, limit, cfg.target_share)
            # a limit of 0 is no window at all (a proxy or a switched-off limiter), not "wait"
            if limit != 0 and remaining is not None and reset_in is not None and reset_in > 0:
                now = self._clock()
                if remaining <= 0:
                    self._paused_until = max(self._paused_until, now + reset_in + _RESET_MARGIN_S)
                    self._tokens = 0.0
                else:
                    # never faster than what is left of this window allows
                    self._window_rate = max(remaining / reset_in, 1e-3)
                    self._window_until = now + reset_in

    def pause_for(self, seconds: float) -> None:
        """Hold every request on this credential for `seconds` (after a 429, so others back off too)."""
        if seconds <= 0:
            return
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._tokens = 0.0

    def pause_until_wall(self, epoch_seconds: float) -> None:
        """Pause until a wall-clock time, e.g. an `X-Ratelimit-Reset` read off a 429."""
        self.pause_for(epoch_seconds - self._wall())


def _burst(rate: float, limit: int, target_share: float) -> float:
    """What may go out at once before pacing: a second's worth, within half the headroom that
    target_share leaves, so burst plus a full window of pacing never exceeds the provider's limit
    and the connection's actions keep the other half (flows/global_limits.py). A second's worth
    lets a short sync (a 51-request first run of 3,000 candidates) finish at the provider's
    latency instead of being spread over its pace; it was capped at 5 before (docs/benchmarks.md)."""
    return float(max(1, math.floor(min(rate, (1 - target_share) * limit / 2))))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


_registry: dict[tuple[str, str], RateLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(integration: str, credential_fingerprint: str, config: RateLimitConfig) -> RateLimiter:
    """One limiter per (integration, credential) in this process, shared by every task using it."""
    key = (integration, credential_fingerprint)
    with _registry_lock:
        if key not in _registry or _registry[key].config != config:
            _registry[key] = RateLimiter(config)
        return _registry[key]
