"""How many requests of one credential are in flight at once: an AIMD window, one per credential.

The rate limiter decides how *often* a request may go out; this decides how many may be waiting
for an answer at the same time, so that at real latency (100-500 ms) the budget, not the round
trip, bounds a sync. The window starts at the definition's `rate_limit.concurrency.initial` (1 by
default) and grows each time a window's worth of answers came back with flat latency, the window
full and the limiter mostly not holding requests back (more in flight would then only queue at the
limiter): it doubles until the first cut (slow start: at 150 ms, growing by one from 1 cost the
first seconds of every run), by one after. It halves on a 429, a 5xx, a transport error or latency
rising well above the lowest seen lately; one burst of bad answers halves it once (answers to
requests sent before the last cut do not count again). It never exceeds the definition's
`rate_limit.concurrency.max` (1 by default: today's one at a time).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LATENCY_SAMPLES = 64  # the baseline is the lowest of these: a provider that got slower for good is re-learnt
RISING_FACTOR = 2.0  # latency this many times the baseline...
RISING_MARGIN_S = 0.025  # ...and this much above it, counts as rising (a 2 ms sandbox jitters by more than 2x)
EWMA_ALPHA = 0.1
LIMITED_WAIT_S = 0.005  # a request that waited longer than this at the limiter was held back by the budget


class AimdController:
    """Thread-safe. `slot()` holds one of `window` places; `answered` / `congested` feed it."""

    def __init__(self, ceiling: int, *, initial: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = max(1, ceiling)
        self._clock = clock
        self._cond = threading.Condition()
        self._window = min(self.ceiling, max(1, initial))
        self._slow_start = True  # doubling until the first cut, then one at a time
        self._in_flight = 0
        self._full = False  # the window was full since its last change
        self._answers = 0  # good answers since the last change...
        self._limited = 0  # ...of which this many had waited at the limiter
        self._samples: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self._ewma: float | None = None
        self._last_cut = float("-inf")
        self.history: list[int] = [self._window]  # the window after each change, for tests and diagnostics
        self.cuts = 0

    @property
    def window(self) -> int:
        return self._window

    @property
    def peak(self) -> int:
        return max(self.history)

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Wait for a place in the window; yields the monotonic time the request starts."""
        with self._cond:
            while self._in_flight >= self._window:
                self._cond.wait()
            self._in_flight += 1
            if self._in_flight >= self._window:
                self._full = True
            started = self._clock()
        try:
            yield started
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify()

    def answered(self, latency_s: float, *, limiter_wait_s: float = 0.0, started: float | None = None) -> None:
        """A usable answer (2xx, or a 4xx about the request) after `latency_s`; after each window's worth
        of them: grow, or cut if latency rose."""
        with self._cond:
            self._samples.append(latency_s)
            self._ewma = latency_s if self._ewma is None else (1 - EWMA_ALPHA) * self._ewma + EWMA_ALPHA * latency_s
            self._answers += 1
            self._limited += limiter_wait_s > LIMITED_WAIT_S
            if self._answers < self._window:
                return
            # a window's worth of answers: judged together, so one slow answer is not a trend
            base = min(self._samples)
            if self._ewma > base * RISING_FACTOR and self._ewma - base > RISING_MARGIN_S:
                self._cut(started)
            elif self._full and self._limited * 2 < self._answers and self._window < self.ceiling:
                self._set(min(self.ceiling, self._window * 2 if self._slow_start else self._window + 1))
            else:
                self._reset_counts()

    def congested(self, started: float | None = None) -> None:
        """A 429, 5xx or transport error: halve (once per burst)."""
        with self._cond:
            self._cut(started)

    def _cut(self, started: float | None) -> None:
        if started is not None and started < self._last_cut:
            return  # sent before the last cut: that cut already answered this burst
        self._last_cut = self._clock()
        self._slow_start = False
        self._ewma = None  # judge latency afresh at the smaller window
        if self._window > 1:
            self.cuts += 1
        self._set(max(1, self._window // 2))

    def _set(self, window: int) -> None:
        changed = window != self._window
        self._window = window
        self._reset_counts()
        if changed:
            self.history.append(window)
            self._cond.notify_all()

    def _reset_counts(self) -> None:
        self._answers = self._limited = 0
        self._full = self._in_flight >= self._window


_registry: dict[tuple[str, str], AimdController] = {}
_registry_lock = threading.Lock()


def controller_for(integration: str, credential_fingerprint: str, ceiling: int, initial: int = 1) -> AimdController:
    """One controller per (integration, credential) in this process, like its rate limiter."""
    key = (integration, credential_fingerprint)
    with _registry_lock:
        if key not in _registry or _registry[key].ceiling != max(1, ceiling):
            _registry[key] = AimdController(ceiling, initial=initial)
        return _registry[key]
