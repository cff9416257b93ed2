"""Signed webhook delivery from background threads, with quick retries (the API never waits on it).

With `WebhookChaos` (off by default) events are also dropped, duplicated, held back past newer
ones, shuffled, held until `flush`, or sent several at once; `log` records each event's fate.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from sandbox.checkr.webhook_chaos import EventLog, EventRecord, WebhookChaos

log = logging.getLogger(__name__)
USER_AGENT = "Checkr-Webhook/1.0"


def sign(key: str, body: bytes) -> str:
    """Checkr's X-Checkr-Signature: hex HMAC-SHA256 of the raw body."""
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class EventMeta:
    """What the event log keeps of an event (the body itself is kept only until it is sent)."""

    event_id: str
    type: str
    account_id: str
    object_id: str | None
    created_at: str


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    signature: str = field(compare=False)
    event_id: str = field(compare=False)
    event_type: str = field(compare=False)
    attempt: int = field(default=1, compare=False)


class WebhookSender:
    """Checkr retries non-2xx for a day; the sandbox compresses that to `attempts` tries `backoff` apart (doubling)."""

    def __init__(self, *, attempts: int = 5, backoff: float = 0.1, timeout: float = 5.0) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=5000)
        self.log = EventLog()
        self.chaos = WebhookChaos()
        self._rng = random.Random(0)
        self._heap: list[_Job] = []
        self._held: list[_Job] = []  # chaos.hold: until flush
        self._late: list[tuple[int, _Job]] = []  # (last batch to wait for, job)
        self._batch: list[_Job] | None = None
        self._batches = 0  # batches (clock advances) finished so far
        self._busy = 0
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stop = False
        self._client = httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})
        self._workers: list[threading.Thread] = []
        self._grow(1)

    # ---- configuration ----
    def configure(self, chaos: WebhookChaos) -> None:
        """New chaos settings; the seed restarts the draws. Events already held stay held until flushed."""
        with self._cond:
            self.chaos = chaos
            self._rng = random.Random(chaos.seed)
            self._grow(chaos.concurrency)
            self._cond.notify_all()

    def _grow(self, n: int) -> None:
        while len(self._workers) < n:
            t = threading.Thread(target=self._run, args=(len(self._workers),), name="checkr-webhooks", daemon=True)
            self._workers.append(t)
            t.start()

    # ---- emitting ----
    def send(self, url: str, body: bytes, signature: str, meta: EventMeta) -> None:
        with self._cond:
            chaos, rng = self.chaos, self._rng
            dropped = chaos.drop_rate > 0 and rng.random() < chaos.drop_rate
            copies = 0 if dropped else 2 if chaos.duplicate_rate > 0 and rng.random() < chaos.duplicate_rate else 1
            late = not dropped and chaos.late_rate > 0 and rng.random() < chaos.late_rate
            waiting = chaos.hold or late
            state = "dropped" if dropped else "held" if waiting else "queued"
            self.log.add(EventRecord(*_fields(meta), state=state, copies=copies))
            jobs = [_Job(0.0, 0, url, body, signature, meta.event_id, meta.type) for _ in range(copies)]
            if chaos.hold:
                self._held += jobs
            elif late:
                self._late += [(self._batches + chaos.late_advances, j) for j in jobs]
            elif self._batch is not None:
                self._batch += jobs
            else:
                self._enqueue(jobs, delay=chaos.delay_ms / 1000)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Events sent inside go out together at the end (shuffled with `chaos.shuffle`), then the late
        events whose wait is over: older after newer."""
        with self._cond:
            self._batch = []
        try:
            yield
        finally:
            with self._cond:
                jobs, self._batch = self._batch or [], None
                if self.chaos.shuffle:
                    self._rng.shuffle(jobs)
                done = self._batches
                self._batches += 1
                released = [j for n, j in self._late if n <= done]
                self._late = [(n, j) for n, j in self._late if n > done]
                for j in released:
                    self.log.set_state(j.event_id, "queued")
                self._enqueue(jobs + released, delay=self.chaos.delay_ms / 1000)

    def _enqueue(self, jobs: list[_Job], delay: float = 0.0) -> None:
        """Caller holds the condition. Jobs keep the given order (one due time, rising sequence)."""
        due = time.monotonic() + delay
        for j in jobs:
            j.due, j.seq = due, next(self._seq)
            heapq.heappush(self._heap, j)
        if jobs:
            self._cond.notify_all()

    # ---- draining ----
    def flush(self, timeout: float = 30.0) -> dict[str, int]:
        """Send everything held or late now (shuffled with `chaos.shuffle`) and wait until nothing is
        queued or in flight, retries included. Returns the event log's summary."""
        with self._cond:
            jobs = self._held + [j for _, j in self._late]
            self._held, self._late = [], []
            if self.chaos.shuffle:
                self._rng.shuffle(jobs)
            for j in jobs:
                self.log.set_state(j.event_id, "queued")
            self._enqueue(jobs)
            deadline = time.monotonic() + timeout
            while (self._heap or self._busy) and not self._stop:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        return self.log.summary()

    def pending(self) -> int:
        """Events queued, held back or being sent."""
        with self._cond:
            return len(self._heap) + len(self._held) + len(self._late) + self._busy

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for t in self._workers:
            t.join(timeout=10)
        self._client.close()

    def _run(self, index: int) -> None:
        while True:
            with self._cond:
                while not self._stop and (
                    index >= self.chaos.concurrency or not self._heap or self._heap[0].due > time.monotonic()
                ):
                    idle = index >= self.chaos.concurrency or not self._heap
                    self._cond.wait(None if idle else max(0.0, self._heap[0].due - time.monotonic()))
                if self._stop:
                    return
                job = heapq.heappop(self._heap)
                self._busy += 1
            try:
                self._deliver(job)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _deliver(self, job: _Job) -> None:
        status: int | None = None
        try:
            response = self._client.post(
                job.url,
                content=job.body,
                headers={"Content-Type": "application/json", "X-Checkr-Signature": job.signature},
            )
            status = response.status_code
            ok = response.is_success
        except httpx.HTTPError as exc:
            ok = False
            log.debug("webhook %s to %s failed: %s", job.event_type, job.url, type(exc).__name__)
        self.deliveries.append(
            {
                "event_id": job.event_id,
                "type": job.event_type,
                "url": job.url,
                "status": status,
                "attempt": job.attempt,
                "ok": ok,
            }
        )
        retry = not ok and job.attempt < self.attempts
        self.log.attempt_done(job.event_id, ok, final=not retry)
        if retry:
            job.attempt += 1
            with self._cond:
                job.due = time.monotonic() + self.backoff * 2 ** (job.attempt - 2)
                job.seq = next(self._seq)
                heapq.heappush(self._heap, job)
                self._cond.notify_all()


def _fields(meta: EventMeta) -> tuple[str, str, str, str | None, str]:
    return meta.event_id, meta.type, meta.account_id, meta.object_id, meta.created_at
