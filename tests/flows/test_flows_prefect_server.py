"""Starting and stopping Prefect the demo's way: clear errors naming the log, nothing left running."""

from __future__ import annotations

import socket
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from flows.prefect_server import PrefectServer, PrefectServerError
from flows.processes import ChildProcess
from tests.support.asgi_server import free_port


def test_a_server_that_does_not_answer_in_time_is_a_clear_error_naming_its_log(tmp_path: Path) -> None:
    server = PrefectServer(tmp_path / "home", port=free_port(), log_path=tmp_path / "server.log").start()
    try:
        with pytest.raises(PrefectServerError) as err:
            server.wait_until_healthy(timeout=1)
    finally:
        server.stop()
    message = str(err.value)
    assert "did not answer" in message and "/api/health within 1s" in message
    assert str(tmp_path / "server.log") in message and "SCREENSYNC_PREFECT_START_TIMEOUT" in message
    assert not server.process.running()


def test_a_server_that_exits_is_reported_with_the_end_of_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:  # someone else's server already has the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = PrefectServer(tmp_path / "home", port=port, log_path=tmp_path / "server.log").start()
        try:
            with pytest.raises(PrefectServerError) as err:
                server.wait_until_healthy(timeout=120)
        finally:
            server.stop()
    message = str(err.value)
    assert "exited with code" in message and str(tmp_path / "server.log") in message
    assert str(port) in message  # Prefect's own words about the port, from the log's last lines


def test_stopping_a_child_process_stops_every_process_it_started(tmp_path: Path) -> None:
    """As a worker's flow runs would be, one of them even in a session of its own."""
    script = textwrap.dedent(
        f"""
        import subprocess, sys, time
        sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
        kids = [subprocess.Popen(sleeper), subprocess.Popen(sleeper, start_new_session=True)]
        open({str(tmp_path / "pids")!r}, "w").write(" ".join(str(k.pid) for k in kids))
        time.sleep(600)
        """
    )
    child = ChildProcess("tree", [sys.executable, "-c", script], env={}, cwd=tmp_path, log_path=tmp_path / "t.log")
    child.start()
    deadline = time.monotonic() + 30
    while not (tmp_path / "pids").exists() or not (tmp_path / "pids").read_text():
        assert time.monotonic() < deadline, child.log_tail()
        time.sleep(0.1)
    pids = [child.pid, *map(int, (tmp_path / "pids").read_text().split())]
    assert all(psutil.pid_exists(p) for p in pids)
    child.stop(timeout=10)
    assert not child.running()
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
