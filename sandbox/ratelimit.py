"""Per-credential fixed-window rate limiting, as the providers do it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch: float  # wall-clock epoch seconds when the window resets

    @property
    def reset_iso(self) -> str:
        return datetime.fromtimestamp(self.reset_epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# What a switched-off limiter advertises: clients that follow the server's limit headers (ours
# does) then stop pacing, which is what "rate limiting off" is for in the benchmarks.
UNLIMITED = 1_000_000


class FixedWindowLimiter:
    """`limit` requests per `window` seconds for each credential; `limit=0` disables limiting
    (responses then advertise a window of `UNLIMITED` requests).

    Windows are aligned to wall-clock multiples of `window` (Checkr's reset is a whole minute).
    """

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[float, int]] = {}

    def hit(self, credential: str) -> RateDecision:
        now = time.time()
        start = now - (now % self.window)
        reset = start + self.window
        if self.limit <= 0:
            return RateDecision(True, UNLIMITED, UNLIMITED, reset)
        with self._lock:
            w_start, count = self._counts.get(credential, (start, 0))
            if w_start != start:
                count = 0
            count += 1
            self._counts[credential] = (start, count)
        return RateDecision(count <= self.limit, self.limit, max(0, self.limit - count), reset)
