"""Signed webhook delivery in a background thread, with quick retries (the API never waits on it)."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)
USER_AGENT = "Checkr-Webhook/1.0"


def sign(key: str, body: bytes) -> str:
    """Checkr's X-Checkr-Signature: hex HMAC-SHA256 of the raw body."""
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


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
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stop = False
        self._client = httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})
        self._thread = threading.Thread(target=self._run, name="checkr-webhooks", daemon=True)
        self._thread.start()

    def send(self, url: str, body: bytes, signature: str, event_id: str, event_type: str) -> None:
        with self._cond:
            heapq.heappush(
                self._heap, _Job(time.monotonic(), next(self._seq), url, body, signature, event_id, event_type)
            )
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=10)
        self._client.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._heap or self._heap[0].due > time.monotonic()):
                    self._cond.wait(None if not self._heap else max(0.0, self._heap[0].due - time.monotonic()))
                if self._stop:
                    return
                job = heapq.heappop(self._heap)
            self._deliver(job)

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
        if not ok and job.attempt < self.attempts:
            job.attempt += 1
            job.due = time.monotonic() + self.backoff * 2 ** (job.attempt - 2)
            job.seq = next(self._seq)
            with self._cond:
                heapq.heappush(self._heap, job)
                self._cond.notify()
