"""What real webhook delivery does to a receiver, as seeded knobs, and the log that says what happened.

Checkr "does not guarantee the delivery of events in the order in which they are generated", warns
of duplicates and of "webhook misses" (docs/providers/checkr.md). `WebhookChaos` reproduces each
on demand; everything is off by default. `EventLog` keeps one small entry per event so a test can
tell which events were lost, duplicated, held or delivered.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class WebhookChaos(BaseModel):
    """Per-provider delivery chaos. Decisions are drawn per event from `seed`, in emission order."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    drop_rate: float = Field(0.0, ge=0, le=1, description="share of events lost: never sent, never retried")
    duplicate_rate: float = Field(0.0, ge=0, le=1, description="share of events sent twice (same id and bytes)")
    late_rate: float = Field(0.0, ge=0, le=1, description="share of events held back past newer ones")
    late_advances: int = Field(
        1, ge=0, description="a late event goes out after this many more clock advances (0: end of its own batch)"
    )
    shuffle: bool = Field(False, description="each advance's events (and each flush) go out in a seeded random order")
    hold: bool = Field(False, description="keep every event until `flush` (then all go out at once)")
    delay_ms: int = Field(0, ge=0, description="wall-clock wait before each event's first attempt")
    concurrency: int = Field(1, ge=1, le=64, description="deliveries in flight at once, each from its own thread")


State = Literal["dropped", "held", "queued", "delivered", "failed"]


@dataclass(slots=True)
class EventRecord:
    """One emitted event: what it carried and what became of it."""

    event_id: str
    type: str
    account_id: str
    object_id: str | None
    created_at: str
    state: State
    copies: int  # deliveries planned (0 when dropped, 2 when duplicated)
    delivered: int = 0  # copies answered 2xx
    failed: int = 0  # copies that used up every attempt
    attempts: int = 0


class EventLog:
    """Every event in emission order, capped at `limit` (the oldest entries go first)."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._events: OrderedDict[str, EventRecord] = OrderedDict()

    def add(self, record: EventRecord) -> None:
        with self._lock:
            self._events[record.event_id] = record
            while len(self._events) > self.limit:
                self._events.popitem(last=False)

    def set_state(self, event_id: str, state: State) -> None:
        with self._lock:
            if (r := self._events.get(event_id)) is not None:
                r.state = state

    def attempt_done(self, event_id: str, ok: bool, final: bool) -> None:
        """One HTTP attempt of one copy ended; `final` when that copy will not be retried."""
        with self._lock:
            r = self._events.get(event_id)
            if r is None:
                return
            r.attempts += 1
            if ok:
                r.delivered += 1
            elif final:
                r.failed += 1
            if r.delivered:
                r.state = "delivered"
            elif r.failed >= r.copies:
                r.state = "failed"

    def entries(self, state: str | None = None, type_: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                asdict(r)
                for r in self._events.values()
                if (state is None or r.state == state) and (type_ is None or r.type == type_)
            ]

    def summary(self) -> dict[str, int]:
        with self._lock:
            out = {"emitted": len(self._events), "duplicated": 0}
            for s in ("dropped", "held", "queued", "delivered", "failed"):
                out[s] = 0
            for r in self._events.values():
                out[r.state] += 1
                out["duplicated"] += r.copies > 1
            return out
