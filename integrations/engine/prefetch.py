"""Overlap the network with the warehouse: fetch the next pages while earlier ones are written."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
STARVED_S = 0.01  # a wait this long for an item is the source being slow, not a thread switch
_DONE = object()


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class prefetch(Generic[T]):
    """Run `source` in a background thread, up to `depth` items ahead; errors re-raise in the caller.

    Closing it (or leaving the `for` loop early) stops the producer after its current item,
    so an interrupted run does not keep downloading.
    """

    def __init__(self, source: Iterator[T], depth: int = 4) -> None:
        self._source = source
        self._q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self.starved = True  # the consumer waited for its last item: the source is the slow side
        self._thread = threading.Thread(target=self._produce, name="screensync-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer thread
            self._put(_Raised(exc))

    def ready(self) -> int:
        """Items downloaded and waiting (0 when the producer is the bottleneck)."""
        return 0 if self._finished else self._q.qsize()

    def __iter__(self) -> prefetch[T]:
        return self

    def __next__(self) -> T:
        item = self.next_within(None)
        assert item is not None
        return item

    def next_within(self, timeout: float | None) -> T | None:
        """The next item; None when none arrived within `timeout` seconds (None: wait for it).
        Raises StopIteration at the end and re-raises the producer's error."""
        if self._finished:
            raise StopIteration
        asked = time.monotonic()
        try:
            item = self._q.get(timeout=timeout)
        except queue.Empty:
            self.starved = True
            return None
        self.starved = time.monotonic() - asked > STARVED_S
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, _Raised):
            self.close()
            raise item.exc
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        self._finished = True
        self._stop.set()
        self._thread.join(timeout=5)
        close = getattr(self._source, "close", None)
        if close is not None and not self._thread.is_alive():
            close()

    def __del__(self) -> None:
        self._stop.set()
