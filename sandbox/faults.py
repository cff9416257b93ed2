"""Seeded fault knobs shared by both sandbox providers (reliability tests drive these)."""

from __future__ import annotations

import asyncio
import random
import threading

from pydantic import BaseModel, Field


class FaultConfig(BaseModel):
    """What to break, per provider. All shares are probabilities in [0, 1]."""

    error_rate: float = Field(0.0, ge=0, le=1, description="share of requests answered 5xx")
    burst_429_rate: float = Field(0.0, ge=0, le=1, description="share of requests that start a 429 burst")
    burst_429_length: int = Field(3, ge=1, description="consecutive 429s in one burst")
    latency_ms: int = Field(0, ge=0, description="added to every API request (errors and 429s too)")
    latency_jitter_ms: int = Field(0, ge=0, description="plus a uniform draw in [0, this] per request (seeded)")
    drop_rate: float = Field(0.0, ge=0, le=1, description="share of list responses cut off mid-body")
    malformed_page: int | None = Field(None, description="this page number of every list is invalid JSON")
    duplicate_record: bool = Field(False, description="repeat the last record of page N as first of N+1")
    missing_field: bool = Field(False, description="one record per list page lacks a required field")
    missing_field_every: int = Field(
        7, ge=1, description="with missing_field: every Nth record (by position in the dataset) is broken"
    )
    next_href_loop: bool = Field(False, description="page 2's next link points back to page 1")
    next_href_foreign: bool = Field(False, description="page 1's next link points at another host")
    seed: int = 0


class FaultInjector:
    """Draws fault decisions from a seeded RNG so a failing test can be replayed.

    Latency draws come from a second RNG, so turning jitter on leaves the fault sequence as it was.
    `peak_waiting` is the most requests seen waiting out their latency at once: proof, without a
    timed assertion, that a provider serves other requests while one waits.
    """

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.waiting = 0
        self.peak_waiting = 0
        self.delayed = 0
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
            self._latency_rng = random.Random(f"latency:{config.seed}")
            self._burst_left = 0
            self.peak_waiting = self.delayed = 0

    def set_latency(self, ms: int, jitter_ms: int = 0) -> FaultConfig:
        """Change only the latency, keeping every other fault as configured (and the RNGs where they are)."""
        with self._lock:
            self.config = self.config.model_copy(update={"latency_ms": ms, "latency_jitter_ms": jitter_ms})
            return self.config

    def draw(self, share: float) -> bool:
        if share <= 0:
            return False
        with self._lock:
            return self._rng.random() < share

    def latency_seconds(self) -> float:
        cfg = self.config
        if not (cfg.latency_ms or cfg.latency_jitter_ms):
            return 0.0
        with self._lock:
            jitter = self._latency_rng.random() * cfg.latency_jitter_ms if cfg.latency_jitter_ms else 0.0
        return (cfg.latency_ms + jitter) / 1000

    async def delay(self) -> None:
        """Wait out this request's latency without blocking the server's event loop."""
        seconds = self.latency_seconds()
        if seconds <= 0:
            return
        with self._lock:
            self.waiting += 1
            self.delayed += 1
            self.peak_waiting = max(self.peak_waiting, self.waiting)
        try:
            await asyncio.sleep(seconds)
        finally:
            with self._lock:
                self.waiting -= 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"delayed_requests": self.delayed, "peak_waiting": self.peak_waiting}

    def take_429(self) -> bool:
        """True while inside a 429 burst (bursts start at `burst_429_rate`)."""
        with self._lock:
            if self._burst_left > 0:
                self._burst_left -= 1
                return True
            if self.config.burst_429_rate > 0 and self._rng.random() < self.config.burst_429_rate:
                self._burst_left = self.config.burst_429_length - 1
                return True
            return False
