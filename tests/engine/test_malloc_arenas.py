"""The fetch threads' malloc heaps are capped (integrations/engine/malloc_arenas.py): counted with
glibc's own malloc_info, in a fresh process (a process's arenas, once made, stay)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from integrations.engine.malloc_arenas import ARENAS

REPO = Path(__file__).resolve().parents[2]
HEAPS = """
import ctypes, ctypes.util, os, sys, tempfile, threading
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.fdopen.restype = ctypes.c_void_p
libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
if {cap}:
    from integrations.engine.malloc_arenas import cap_arenas
    assert cap_arenas()
hold = []
gate = threading.Barrier(8)
def work():
    gate.wait()  # all eight alive at once: each would get an arena of its own
    hold.append([bytes(70_000) for _ in range(20)])  # glibc malloc, not Python's small-object pool
threads = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
with tempfile.TemporaryFile("w+") as f:
    fp = libc.fdopen(os.dup(f.fileno()), b"w")
    libc.malloc_info(0, fp); libc.fclose(fp)
    f.seek(0)
    print(f.read().count("<heap nr="))
"""


def _heaps(cap: bool) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", HEAPS.format(cap=cap)], capture_output=True, text=True, env=env,
                         cwd=REPO, check=True)  # the repository first on the child's path
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                    reason="malloc arenas are glibc's")
def test_threads_share_at_most_the_capped_number_of_malloc_heaps() -> None:
    assert _heaps(cap=False) > ARENAS  # without the cap the threads really do make heaps of their own
    assert _heaps(cap=True) <= ARENAS
