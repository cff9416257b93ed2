"""glibc's malloc, set for a sync's allocations: a few heaps, large blocks handed back at once.

- **Arenas.** glibc gives every new thread a malloc arena of its own (up to 8 per core) and keeps
  what each arena grew to. Eight fetch threads parsing pages therefore added ~20-35 MB of peak RSS
  to a sync against a fast provider, for no speed: Python allocates under the GIL anyway. With the
  arenas capped the concurrent sync's peak RSS is that of a one-request-at-a-time sync
  (`bench/sync_ab.py`, docs/benchmarks.md).
- **The mmap threshold.** Blocks of at least MMAP_THRESHOLD (response bodies, Arrow buffers, a
  page's JSON) are mapped on their own and unmapped when freed. glibc's default threshold moves
  up to the largest block freed so far (up to 32 MB), after which such blocks come from the heaps,
  and pages fetched by several threads and freed out of order left holes there that RSS kept:
  20-35 MB of free heap in a 20,000-candidate first sync fetching concurrently, against 11-18 MB
  one page at a time. Fixed at 64 KB: 7-11 MB, and that run's peak RSS 242-243 MB against 248-277
  (`bench/latency.py`, docs/benchmarks.md, issue 17's seventh round). The heap's top is handed back
  past TRIM_THRESHOLD again (glibc's default, which its moving threshold had raised to twice the
  largest block freed, up to 64 MB): set after the imports instead of at process start, the
  threshold alone left that run's peak 10-15 MB higher.

An operator's own `MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or
`GLIBC_TUNABLES` wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

ARENAS = 2  # the main heap and one for every other thread: the figure measured
MMAP_THRESHOLD = 64 * 1024
TRIM_THRESHOLD = 128 * 1024
_M_ARENA_MAX = -8  # glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_lock = threading.Lock()
_tuned: bool | None = None  # None until tried


def tune_malloc() -> bool:
    """Once per process, before fetch threads start; True when glibc took the settings."""
    global _tuned
    with _lock:
        if _tuned is None:
            _tuned = _mallopt()
        return _tuned


def _mallopt() -> bool:
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to set
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    took = True
    if not os.environ.get("MALLOC_ARENA_MAX") and "glibc.malloc.arena_max" not in tunables:
        took = bool(mallopt(_M_ARENA_MAX, ARENAS)) and took
    if not os.environ.get("MALLOC_MMAP_THRESHOLD_") and "glibc.malloc.mmap_threshold" not in tunables:
        took = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and took
    if not os.environ.get("MALLOC_TRIM_THRESHOLD_") and "glibc.malloc.trim_threshold" not in tunables:
        took = bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and took
    return took
