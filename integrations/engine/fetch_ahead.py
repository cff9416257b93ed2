"""Several requests of one credential in flight, answers handed back in order.

Two shapes: `in_order` fetches a known list of things by id (re-polls, owed records, references),
`PagesAhead` fetches the pages a paginator is known to ask for next (numbered pages of a list
whose total is known). Either way the caller sees answers in the order it would have fetched
them one by one, so what it writes, and each checkpoint, is exactly what a sequential run writes;
at most `ceiling` answers wait out of order (flat memory), and at most the controller's window is
in flight. With a ceiling of 1 nothing runs on another thread: today's one request at a time.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from integrations.engine.concurrency import AimdController
from integrations.engine.malloc_tuning import cap_arenas

T = TypeVar("T")
R = TypeVar("R")


_pools: weakref.WeakKeyDictionary[AimdController, ThreadPoolExecutor] = weakref.WeakKeyDictionary()
_pools_lock = threading.Lock()


def _pool(controller: AimdController) -> ThreadPoolExecutor:
    """The credential's one pool of `ceiling` fetch threads, shared by every sync fetching ahead on it
    (syncs side by side): the window caps what is in flight anyway, and each thread more costs
    memory (glibc gives busy threads heaps of their own), not speed. Tasks only fetch, never wait
    for one another, so sharing cannot deadlock; callers cancel their own futures, never the pool."""
    with _pools_lock:
        pool = _pools.get(controller)
        if pool is None:
            cap_arenas()
            pool = _pools[controller] = ThreadPoolExecutor(max_workers=controller.ceiling,
                                                           thread_name_prefix="screensync-fetch")
        return pool


def _in_slot(controller: AimdController, fetch: Callable[[T], R], item: T) -> R:
    with controller.slot():
        return fetch(item)


BY_ID_AHEAD = 64  # records fetched by id that may wait for their turn: ~3 s at 20/s, a few hundred KB


def in_order(controller: AimdController, items: Iterable[T], fetch: Callable[[T], R],
             keep: tuple[type[BaseException], ...] = (), *, ahead: int = BY_ID_AHEAD,
             ) -> Iterator[tuple[T, R | BaseException]]:
    """(item, answer) for each item in order; an error of a `keep` type is handed back as the answer
    (a 404 is about its record, not the run), any other re-raises here, at its item's turn.

    Up to `ahead` answers wait while the caller writes (a write of 50 re-polled records can take a
    few tenths of a second), so fetching does not stall behind the writer; the window still caps
    how many are in flight."""
    if controller.ceiling == 1:
        for item in items:
            try:
                yield item, fetch(item)
            except keep as exc:
                yield item, exc
        return
    pool = _pool(controller)
    waiting: deque[tuple[T, Future[R]]] = deque()
    source = iter(items)
    try:
        while True:
            while len(waiting) < max(ahead, controller.ceiling):
                item = next(source, _END)
                if item is _END:
                    break
                waiting.append((item, pool.submit(_in_slot, controller, fetch, item)))
            if not waiting:
                return
            item, future = waiting.popleft()
            try:
                yield item, future.result()
            except keep as exc:
                yield item, exc
    finally:
        for _, future in waiting:
            future.cancel()


_END: Any = object()


class PagesAhead:
    """Pages fetched before the paginator asks for them, keyed by their normalised URL.

    `expect` is told the requests the paginator will make next (in order); up to the ceiling of them
    go out. `get` hands back the one asked for (waiting for it if still in flight) or fetches it
    now; a page that raised raises only when asked for, so errors surface exactly where a
    one-at-a-time run meets them. Expected pages the paginator then does not ask for are dropped.
    """

    def __init__(self, controller: AimdController, fetch: Callable[[str, dict[str, Any] | None], Any]) -> None:
        self._controller = controller
        self._fetch = fetch
        self._ahead: dict[str, Future[Any]] = {}

    @property
    def enabled(self) -> bool:
        return self._controller.ceiling > 1

    def expect(self, upcoming: list[tuple[str, str, dict[str, Any] | None]]) -> None:
        """`upcoming`: (key, target, query) of the next pages, nearest first."""
        keys = {key for key, _, _ in upcoming}
        for key in [k for k in self._ahead if k not in keys]:  # a guess the list did not follow
            self._ahead.pop(key).cancel()
        for key, target, query in upcoming:
            if len(self._ahead) >= self._controller.ceiling:
                break
            if key not in self._ahead:
                self._ahead[key] = _pool(self._controller).submit(self._fetch_in_slot, target, query)

    def _fetch_in_slot(self, target: str, query: dict[str, Any] | None) -> Any:
        with self._controller.slot():
            return self._fetch(target, query)

    def get(self, key: str, target: str, query: dict[str, Any] | None) -> Any:
        future = self._ahead.pop(key, None)
        if future is not None:
            return future.result()
        if not self.enabled:
            return self._fetch(target, query)
        with self._controller.slot():
            return self._fetch(target, query)

    def close(self) -> None:
        for future in self._ahead.values():
            future.cancel()
        self._ahead.clear()
