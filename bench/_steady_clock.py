"""This process's clock follows the sandbox's, for the steady-state benchmark (bench/steady_state.py).

Due-based refresh measures its intervals on this machine's clock (DuckDB's `current_timestamp`,
`datetime.now`), and 24 simulated hours must pass in minutes. The benchmark runs each scenario in a
child process with libfaketime preloaded (built from the source the `libfaketime` dev dependency
ships, as its thread-safe variant: `thread_safe_library`): the clock is
then the real one plus an offset read from a file, and each step rewrites the offset so that now is
the sandbox's now. It keeps ticking in between (real seconds spent in a run count), never goes back,
and the monotonic clock (timeouts, pacing) is left alone. The sandbox process this one starts
inherits the same preload and file: its simulated clock is its own, but the wall clock it puts in
its rate-limit reset headers must be ours, or our limiter would read a reset months away and crawl.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import time
from datetime import datetime
from pathlib import Path

OFFSET_FILE = "SCREENSYNC_BENCH_OFFSET_FILE"


def thread_safe_library() -> Path:
    """libfaketime's multi-threaded build, made once from the source the wheel ships.

    The wheel's library is the single-threaded build: with the offset read from a file at every
    clock call, threads reading the time at once share its static buffers and parsed offset, and
    some reads got the real clock or a torn offset (measured: 180 of 90,578 reads off by months,
    4 threads, 5 s; 0 with this build). A sync has several threads (fetching ahead, side-by-side
    syncs, the webhook applier), so lags of 182 days and "the clock does not follow" came from that."""
    import libfaketime

    src = Path(libfaketime._get_lib_path())  # the vendored source, beside the library the wheel ships
    version = importlib.metadata.version("libfaketime")
    out = Path.home() / ".cache" / "screensync" / f"libfaketimeMT-{version}.so.1"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_suffix(f".{os.getpid()}.part")
    # what the wheel's library fakes (the same exported symbols: no sleep or stat faking, which broke
    # `time.sleep`), plus the lock around reading the time (PTHREAD_SINGLETHREADED_TIME, its MT build)
    flags = ["-DFAKE_PTHREAD", "-DFAKE_TIMERS", "-DFAKE_INTERNAL_CALLS", "-DPTHREAD_SINGLETHREADED_TIME",
             '-DPREFIX=""', '-DLIBDIRNAME="."']
    done = subprocess.run(["gcc", "-std=gnu99", "-O2", "-fPIC", *flags, "-shared", "-Wl,-soname,libfaketimeMT.so.1",
                           f"-Wl,--version-script={src / 'libfaketime.map'}", "-o", str(part),
                           str(src / "libfaketime.c"), "-lpthread", "-ldl", "-lm", "-lrt"],
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"building libfaketime's thread-safe library failed (needs gcc):\n{done.stderr[-2000:]}")
    os.replace(part, out)
    return out


def preload_env(offset_file: Path) -> dict[str, str]:
    """The environment a child needs for its clock to follow `offset_file` (start: the real clock)."""
    offset_file.write_text("+0")
    return {"LD_PRELOAD": str(thread_safe_library()), "FAKETIME_TIMESTAMP_FILE": str(offset_file),
            "FAKETIME_NO_CACHE": "1", "DONT_FAKE_MONOTONIC": "1", OFFSET_FILE: str(offset_file)}


class FollowedClock:
    """Set this process's now to a sandbox time; requires the environment of `preload_env`."""

    def __init__(self) -> None:
        self.file = Path(os.environ[OFFSET_FILE])
        self.offset = 0.0

    def set(self, now: datetime, *, start: bool = False) -> None:
        """Now is `now` (a later call never moves back: a run longer than a step leaves us ahead)."""
        real = time.time() - self.offset
        target = now.timestamp() if start else max(now.timestamp(), time.time())
        self.offset = target - real
        part = self.file.with_suffix(".part")  # whole or not at all: both processes read it at any moment
        part.write_text(f"{self.offset:+.6f}")
        os.replace(part, self.file)
        seen = time.time()
        if abs(seen - target) > 5:
            raise RuntimeError(f"the clock does not follow: is libfaketime preloaded (bench/_steady_clock.py)? "
                               f"set {target:.3f} (offset {self.offset:+.3f}, real {real:.3f}, asked {now.isoformat()}),"
                               f" read {seen:.3f}, file {self.file.read_text()!r}")
