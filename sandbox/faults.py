"""Seeded fault knobs shared by both sandbox providers (reliability tests drive these)."""

from __future__ import annotations

import random
import threading

from pydantic import BaseModel, Field


class FaultConfig(BaseModel):
    """What to break, per provider. All shares are probabilities in [0, 1]."""

    error_rate: float = Field(0.0, ge=0, le=1, description="share of requests answered 5xx")
    burst_429_rate: float = Field(0.0, ge=0, le=1, description="share of requests that start a 429 burst")
    burst_429_length: int = Field(3, ge=1, description="consecutive 429s in one burst")
    latency_ms: int = Field(0, ge=0, description="added to every request")
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
    """Draws fault decisions from a seeded RNG so a failing test can be replayed."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
            self._burst_left = 0

    def draw(self, share: float) -> bool:
        if share <= 0:
            return False
        with self._lock:
            return self._rng.random() < share

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
