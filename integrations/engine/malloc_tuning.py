"""glibc's malloc, set for how a sync spends its time: a few heaps, and at a slow provider large
blocks handed back at once.

- **Arenas** (`cap_arenas`, when fetch threads start). glibc gives every new thread a malloc arena
  of its own (up to 8 per core) and keeps what each arena grew to. Eight fetch threads parsing pages
  therefore added ~20-35 MB of peak RSS to a sync against a fast provider, for no speed: Python
  allocates under the GIL anyway (`bench/sync_ab.py`, docs/benchmarks.md).
- **Thresholds at a slow provider** (`slow_provider.py`). glibc's mmap threshold moves up to the largest
  block freed so far (up to 32 MB), after which response bodies and Arrow buffers come from the heaps,
  and blocks freed out of order by several fetch threads leave holes there that RSS keeps: 20-35 MB
  of free heap in a 20,000-candidate first sync fetching concurrently at 150 ms, against 11-18 MB one
  page at a time. Blocks of MMAP_THRESHOLD and more mapped on their own, and the heap's top handed
  back past TRIM_THRESHOLD (the moving threshold had also raised that), leave 7-13 MB. Mapping costs
  CPU (a 10,000-candidate sync at 2 ms took 0.1-0.2 s longer with any fixed threshold), which a sync
  waiting on the network has to spare and a fast one does not: so the thresholds are set once
  `slow_provider` finds the process mostly waiting. Issue 17's seventh round in docs/benchmarks.md.

An operator's own `MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or
`GLIBC_TUNABLES` wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable
from typing import Any

from integrations.engine import slow_provider

ARENAS = 2  # the main heap and one for every other thread: the figure measured
MMAP_THRESHOLD = 64 * 1024
TRIM_THRESHOLD = 128 * 1024  # glibc's default
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8  # glibc's malloc.h
_lock = threading.Lock()
_capped: bool | None = None  # None until tried
_thresholds: bool | None = None


def cap_arenas() -> bool:
    """Once per process, before fetch threads start; True when glibc took the cap."""
    global _capped
    with _lock:
        if _capped is None:
            _capped = _set(_M_ARENA_MAX, ARENAS, "MALLOC_ARENA_MAX", "glibc.malloc.arena_max")
        return _capped


def thresholds_set() -> bool | None:
    """None while undecided; then whether glibc took them."""
    return _thresholds


def _set_thresholds() -> None:
    global _thresholds
    if _thresholds is not None:
        return
    mapped = _set(_M_MMAP_THRESHOLD, MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold")
    trimmed = _set(_M_TRIM_THRESHOLD, TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold")
    _thresholds = mapped and trimmed


def _set(option: int, value: int, env: str, tunable: str) -> bool:
    if os.environ.get(env) or tunable in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(option, value))


def _mallopt() -> Callable[..., Any] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to set
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return mallopt  # type: ignore[no-any-return]


slow_provider.on_detected(_set_thresholds)
