"""What the Prefect server spends per connection of a fan-out, by kind of call.

    .venv/bin/python bench/prefect_server_cost.py [--n 300] [--server-db sqlite|postgres]

Starts a throwaway Prefect server (SQLite, or a throwaway PostgreSQL: tests/support/postgres.py)
and, from this process, does N of each thing a shard run does per connection, then prints the
server's CPU seconds (its process tree; PostgreSQL's too when used) per unit: a connection's slot
taken and given back (flows/global_limits.py; a new limit, then one that exists), an event
(`screensync.sync.completed`, one per sync), a task run (one per connection in a shard), and a task
run that logs 12 INFO lines (two per sync) to the API. Each phase is followed by a pause so the
server's services (event persister, task-run recorder, triggers) finish what it queued.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def tree_cpu(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in procs:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300, help="units per phase")
    ap.add_argument("--server-db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--settle", type=float, default=8.0, help="seconds after each phase before reading CPU")
    args = ap.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")  # run loggers' INFO lines go to the API, as by default
    import logging

    import flows  # noqa: F401  (Prefect defaults before Prefect loads)
    from flows.prefect_server import PrefectServer
    from screensync.cluster.services import use_postgres

    n = args.n
    with tempfile.TemporaryDirectory(prefix="bench-server-cost-") as tmp, ExitStack() as stack:
        server = PrefectServer(Path(tmp) / "home")
        pids: list[int] = []
        if args.server_db == "postgres":
            from tests.support.postgres import ThrowawayPostgres

            pg = stack.enter_context(ThrowawayPostgres())
            use_postgres(server, pg.create_database("prefect"))
            pids.append(pg.postmaster_pid)
        stack.enter_context(server)
        assert server.process.pid is not None
        pids.append(server.process.pid)

        from prefect import flow, get_run_logger, task
        from prefect.events import emit_event
        from prefect.events.worker import EventsWorker
        from prefect.settings import PREFECT_API_URL, temporary_settings
        from prefect.task_runners import ThreadPoolTaskRunner

        from flows.global_limits import ConnectionSlots
        from flows.zombies import ensure_zombie_automation

        loggers = [logging.getLogger(), *[lg for lg in logging.root.manager.loggerDict.values()
                                          if isinstance(lg, logging.Logger)]]
        for lg in loggers:  # INFO lines to the API, not to this terminal
            for handler in lg.handlers:
                if "APILogHandler" not in type(handler).__name__:
                    handler.setLevel(logging.WARNING)

        print(f"Prefect server on {args.server_db}, {n} of each; server CPU s per phase and ms per unit", flush=True)
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            ensure_zombie_automation()  # as a fan-out has: every event goes through its trigger
            time.sleep(args.settle)

            def phase(name: str, work: Callable[[], None], units: int = n) -> None:
                before = tree_cpu(pids)
                t0 = time.perf_counter()
                work()
                wall = time.perf_counter() - t0
                time.sleep(args.settle)
                spent = tree_cpu(pids) - before
                print(f"{name:<34} {spent:7.1f} s  {spent / units * 1000:6.1f} ms each   (client {wall:.1f} s)", flush=True)

            phase(f"idle {args.settle:.0f} s", lambda: None, units=1)

            @flow
            def slots() -> None:
                held = ConnectionSlots("bench")
                for i in range(n):
                    held.try_take(f"c{i}")
                for i in range(n):
                    held.release(f"c{i}")
                held.close()

            phase("slot taken + given back (new limit)", slots)
            phase("slot taken + given back (existing)", slots)

            def events() -> None:
                for i in range(n):
                    emit_event(event="screensync.sync.completed",
                               resource={"prefect.resource.id": f"screensync.sync.bench.c{i}"}, payload={"added": 1})
                EventsWorker.drain_all()

            phase("event", events)

            @task
            def quiet(i: int) -> int:
                return i

            @task
            def chatty(i: int) -> int:
                logger = get_run_logger()
                for k in range(12):
                    logger.info("connection=c%s sync=s%s: a line", i, k)
                return i

            @flow(task_runner=ThreadPoolTaskRunner(max_workers=16))
            def quiet_tasks() -> None:
                for f in [quiet.submit(i) for i in range(n)]:
                    f.result()

            @flow(task_runner=ThreadPoolTaskRunner(max_workers=16))
            def chatty_tasks() -> None:
                for f in [chatty.submit(i) for i in range(n)]:
                    f.result()

            phase("task run", quiet_tasks)
            phase("task run + 12 INFO log lines", chatty_tasks)


if __name__ == "__main__":
    main()
