"""The one-at-a-time lock files (a (connection, sync), the webhook applier) hold across processes and
die with their holder."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flows.locks import LockTimeout, file_lock, sync_lock_path


def _hold_in_child(path: Path) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from flows.locks import file_lock
        with file_lock(Path({str(path)!r}), timeout=0, what="test"):
            print("held", flush=True)
            sys.stdin.readline()
        """
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_lock_held_by_another_process_is_refused_then_free_once_it_exits(tmp_path: Path) -> None:
    lock = sync_lock_path(tmp_path / "wh.duckdb", "checkr", "cust-1", "reports")
    child = _hold_in_child(lock)
    try:
        with pytest.raises(LockTimeout, match=f"held by another process \\(PID {child.pid}\\)"), \
                file_lock(lock, timeout=0, what="sync"):
            pass
    finally:
        child.kill()  # a killed holder must not leave a stale lock
        child.wait()
    with file_lock(lock, timeout=0, what="sync"):
        assert lock.exists()


def test_the_same_sync_cannot_run_twice_even_within_one_process(tmp_path: Path) -> None:
    path = sync_lock_path(tmp_path / "wh.duckdb", "checkr", "conn/1", "candidates")
    assert "/" not in path.name
    with file_lock(path, timeout=0, what="sync"):
        with pytest.raises(LockTimeout), file_lock(path, timeout=0, what="sync"):
            pass
        other = sync_lock_path(tmp_path / "wh.duckdb", "checkr", "conn/1", "reports")
        with file_lock(other, timeout=0, what="sync"):
            pass
