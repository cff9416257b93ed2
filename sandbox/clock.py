"""The sandbox clock: simulated time that only moves when the control API advances it.

Everything time-dependent in the sandbox data (report completion, invitation expiry,
invoice issue dates, which candidates exist yet) is a function of this clock, so a
run is reproducible and tests can move time forward on demand.
"""

from __future__ import annotations

import math
import random
import threading
from datetime import UTC, datetime, timedelta

# Fixed start so that the same seed always yields the same dataset.
DEFAULT_START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


class SandboxClock:
    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> tuple[datetime, datetime]:
        """Move forward; returns (old, new) so callers can compute what changed in between."""
        if delta < timedelta(0):
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            old = self._now
            self._now = old + delta
            return old, self._now


def iso(dt: datetime) -> str:
    """Provider-style UTC timestamp: `2026-06-01T12:00:00Z`."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_steps(total: timedelta, rng: random.Random, min_step: timedelta, max_step: timedelta) -> list[timedelta]:
    """Steps that add up to `total`, each log-uniform in [min_step, max_step] in whole seconds (the last
    one cut short): many short gaps and a few long ones, like the time between a user's syncs."""
    if not timedelta(0) < min_step <= max_step:
        raise ValueError(f"need 0 < min_step <= max_step, got {min_step} and {max_step}")
    lo, hi = math.log(min_step.total_seconds()), math.log(max_step.total_seconds())
    steps: list[timedelta] = []
    left = total
    while left > timedelta(0):
        step = min(left, timedelta(seconds=max(1, round(math.exp(rng.uniform(lo, hi))))))  # whole seconds
        steps.append(step)
        left -= step
    return steps
