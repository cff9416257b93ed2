"""This process's clock follows the sandbox's, for the steady-state benchmark (bench/steady_state.py).

Due-based refresh measures its intervals on this machine's clock (DuckDB's `current_timestamp`,
`datetime.now`), and 24 simulated hours must pass in minutes. The benchmark runs each scenario in a
child process with libfaketime preloaded (the `libfaketime` dev dependency ships it): the clock is
then the real one plus an offset read from a file, and each step rewrites the offset so that now is
the sandbox's now. It keeps ticking in between (real seconds spent in a run count), never goes back,
and the monotonic clock (timeouts, pacing) is left alone. The sandbox process this one starts
inherits the same preload and file: its simulated clock is its own, but the wall clock it puts in
its rate-limit reset headers must be ours, or our limiter would read a reset months away and crawl.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

OFFSET_FILE = "SCREENSYNC_BENCH_OFFSET_FILE"


def preload_env(offset_file: Path) -> dict[str, str]:
    """The environment a child needs for its clock to follow `offset_file` (start: the real clock)."""
    import libfaketime

    offset_file.write_text("+0")
    lib = libfaketime._get_lib_path()  # the library the wheel ships
    return {"LD_PRELOAD": os.path.join(lib, "libfaketime.so.1"), "FAKETIME_TIMESTAMP_FILE": str(offset_file),
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
        if abs(time.time() - target) > 5:
            raise RuntimeError("the clock does not follow: is libfaketime preloaded (bench/_steady_clock.py)?")
