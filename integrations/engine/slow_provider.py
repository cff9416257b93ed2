"""Whether this process mostly waits on its providers, decided once from the answers' round trips.

Real providers answer in 100-500 ms, the sandbox in ~2 ms. A sync waiting on the network has CPU
and time to spare, and a fast one does not: so what trades the writer's or malloc's speed for memory
(malloc_tuning.py's thresholds; pending_write.py's smaller writes, each checkpointed on its own)
applies only once most of the process's answers, SLOW_ANSWERS of them at least, took SLOW_ANSWER_S
or more. The odd slow answer of a loaded machine does not count (tests/engine/test_slow_provider.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

SLOW_ANSWER_S = 0.05
SLOW_ANSWERS = 8
_lock = threading.Lock()
_answers = _slow = 0
_detected = False
_listeners: list[Callable[[], None]] = []


def note_answer(latency_s: float) -> None:
    """Every provider answer's round trip (the HTTP client calls it)."""
    global _answers, _slow, _detected
    if _detected:
        return
    with _lock:
        if _detected:
            return
        _answers += 1
        _slow += latency_s >= SLOW_ANSWER_S
        if _slow < SLOW_ANSWERS or _slow * 2 < _answers:
            return
        _detected = True
        listeners = list(_listeners)
    for listener in listeners:
        listener()


def detected() -> bool:
    return _detected


def on_detected(listener: Callable[[], None]) -> None:
    """Run `listener` once the provider is found slow (at once if it already is)."""
    with _lock:
        if not _detected:
            _listeners.append(listener)
            return
    listener()
