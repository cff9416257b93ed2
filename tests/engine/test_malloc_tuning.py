"""glibc's malloc as a sync sets it (integrations/engine/malloc_tuning.py), each checked in a fresh
process (what a process's malloc did before cannot be undone): the fetch threads' heaps counted with
glibc's malloc_info; at a slow provider (and only there) large blocks mapped on their own and a free
heap top handed back, seen in mallinfo2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from integrations.engine.malloc_tuning import ARENAS, MMAP_THRESHOLD
from integrations.engine.slow_provider import SLOW_ANSWER_S, SLOW_ANSWERS

REPO = Path(__file__).resolve().parents[2]
glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                           reason="malloc arenas and the mmap threshold are glibc's")
HEAPS = """
import ctypes, ctypes.util, os, sys, tempfile, threading
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.fdopen.restype = ctypes.c_void_p
libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
if {tune}:
    from integrations.engine.malloc_tuning import cap_arenas
    assert cap_arenas()
hold = []
gate = threading.Barrier(8)
def work():
    gate.wait()  # all eight alive at once: each would get an arena of its own
    hold.append([bytes(40_000) for _ in range(20)])  # glibc malloc, not Python's small-object pool
threads = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
with tempfile.TemporaryFile("w+") as f:
    fp = libc.fdopen(os.dup(f.fileno()), b"w")
    libc.malloc_info(0, fp); libc.fclose(fp)
    f.seek(0)
    print(f.read().count("<heap nr="))
"""
MALLINFO = """
import ctypes, ctypes.util
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = Info
"""
SLOW_PROVIDER = """
from integrations.engine.malloc_tuning import thresholds_set
from integrations.engine.slow_provider import note_answer
for _ in range(1000):
    note_answer(0.002)  # a fast provider: nothing set
assert thresholds_set() is None
if {tune}:  # then a slow one
    for _ in range(1200):
        note_answer(0.15)
    assert thresholds_set()
"""
# glibc raises its threshold to the largest mapped block freed so far; after a 4 MB block is freed
# a 1 MB one comes from the heap, where blocks freed out of order leave holes RSS keeps
MAPPED = MALLINFO + SLOW_PROVIDER + """
big = bytes(4 << 20); del big
before = libc.mallinfo2().hblkhd
block = bytes(1_000_000)  # more than the heap's top holds free
print(libc.mallinfo2().hblkhd - before)
"""
# ... and its trim threshold to twice that: a heap whose top is 2 MB free kept it
TRIMMED = MALLINFO + """
big = bytes(4 << 20); del big  # before the tuning, as a process's imports do
""" + SLOW_PROVIDER + """
blocks = [bytes(50_000) for _ in range(40)]
grown = libc.mallinfo2().arena
del blocks
print(grown - libc.mallinfo2().arena)
"""


def _run(script: str, tune: bool = False) -> int:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")}
    out = subprocess.run([sys.executable, "-c", script.replace("{tune}", str(tune))], capture_output=True, text=True, env=env,
                         cwd=REPO, check=True)  # the repository first on the child's path
    return int(out.stdout.strip())


@glibc
def test_threads_share_at_most_the_capped_number_of_malloc_heaps() -> None:
    assert _run(HEAPS, tune=False) > ARENAS  # without the cap the threads really do make heaps of their own
    assert _run(HEAPS, tune=True) <= ARENAS


@glibc
def test_large_blocks_stay_mapped_on_their_own_after_a_larger_one_was_freed() -> None:
    assert _run(MAPPED, tune=False) == 0  # glibc's moving threshold: the 1 MB block came from a heap
    assert _run(MAPPED, tune=True) >= 1_000_000 > MMAP_THRESHOLD


@glibc
def test_a_heap_top_left_free_is_handed_back_even_after_a_large_block_raised_the_threshold() -> None:
    assert _run(TRIMMED, tune=False) < 1_000_000
    assert _run(TRIMMED, tune=True) >= 1_500_000


def test_the_thresholds_wait_for_most_answers_to_be_slow() -> None:
    assert SLOW_ANSWERS > 1
    assert _run(f"""
from integrations.engine.malloc_tuning import thresholds_set
from integrations.engine.slow_provider import note_answer
for i in range(2000):  # a fast provider with the odd slow answer (a pause, a loaded machine)
    note_answer({SLOW_ANSWER_S} if i % 10 == 0 else 0.002)
assert thresholds_set() is None
for _ in range({SLOW_ANSWERS} - 1):
    note_answer(1.0)
assert thresholds_set() is None
print(0)
""") == 0
