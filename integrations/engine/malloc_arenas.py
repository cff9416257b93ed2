"""Fetch threads share glibc's malloc heaps instead of each getting one of its own.

glibc gives every new thread a malloc arena of its own (up to 8 per core) and keeps what each
arena grew to. Eight fetch threads parsing pages therefore added ~20-35 MB of peak RSS to a
sync against a fast provider, for no speed: Python allocates under the GIL anyway. Measured with
`bench/sync_ab.py` in docs/benchmarks.md: with the arenas capped the concurrent sync's peak RSS
is that of a one-request-at-a-time sync. An operator's own `MALLOC_ARENA_MAX` wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

ARENAS = 2  # the main heap and one for every other thread: the figure measured
_M_ARENA_MAX = -8  # glibc's malloc.h
_lock = threading.Lock()
_capped: bool | None = None  # None until tried


def cap_arenas() -> bool:
    """Once per process, before fetch threads start; True when glibc took the cap."""
    global _capped
    with _lock:
        if _capped is None:
            _capped = _mallopt()
        return _capped


def _mallopt() -> bool:
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to cap
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_ARENA_MAX, ARENAS))
