"""Fewer cyclic-GC passes while a sync runs.

A page of 100 candidates parses into ~10,000 dicts and lists, so CPython's default threshold
(a young-generation pass every 700 new container objects) ran a dozen collections per page, and
the ones that reached the old generation re-scanned every object the process had imported. The
objects a sync creates in bulk (parsed JSON, validated models, rows) hold no reference cycles
and are freed by reference counting the moment a page is done, so the collector has little to
find: while any sync runs, objects that already exist are frozen out of its scans and it runs
a young pass per GEN0_THRESHOLD new containers. Measured in docs/benchmarks.md.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

GEN0_THRESHOLD = 20_000

_lock = threading.Lock()
_active = 0
_saved: tuple[int, int, int] = gc.get_threshold()
_froze = False  # we froze (and so may unfreeze): never undo a freeze the host program made


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Nestable and thread-safe: the first sync to start tunes, the last one to end restores."""
    global _active, _saved, _froze
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            _froze = gc.get_freeze_count() == 0
            if _froze:
                gc.freeze()
            if _saved[0]:  # 0 means someone switched automatic collection off: leave it so
                gc.set_threshold(max(GEN0_THRESHOLD, _saved[0]), _saved[1], _saved[2])
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                gc.set_threshold(*_saved)
                if _froze:
                    gc.unfreeze()
