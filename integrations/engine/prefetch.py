"""Overlap the network with the warehouse: fetch page N+1 while page N is being written."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(source: Iterator[T], depth: int = 4) -> Iterator[T]:
    """Run `source` in a background thread, `depth` items ahead; errors re-raise in the caller.

    Closing the returned generator (or an exception in the consumer) stops the producer
    after its current item, so an interrupted run does not keep downloading.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer thread
            q.put(_Raised(exc))

    thread = threading.Thread(target=produce, name="screensync-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        close = getattr(source, "close", None)
        thread.join(timeout=5)
        if close is not None and not thread.is_alive():
            close()


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
