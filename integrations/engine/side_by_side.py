"""A connection's syncs side by side: each starts as soon as the syncs it declares `after` have
finished (successfully or not), the others at once.

One after another, every sync's fixed cost (opening the warehouse, recording the run, a first
request at full latency) left the credential's rate budget idle; side by side they draw from the
one per-credential limiter and AIMD window (rate_limiter.py, concurrency.py), so the budget stays
the bound. A sync that reads another's output says so in its definition (`after: [candidates]`
on Checkr's re-poll of the reports candidates landed); declared order always honours `after`
(definition.py checks it), so one-at-a-time callers can keep running them in order.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from integrations.engine.definition import IntegrationDefinition
from integrations.engine.malloc_arenas import cap_arenas

R = TypeVar("R")

# at most this many of a connection's syncs at once (0: all): each sync running costs memory (its
# DuckDB statements, client and per-thread heaps; docs/benchmarks.md, issue 17)
MAX_AT_ONCE = int(os.environ.get("SCREENSYNC_SYNCS_AT_ONCE", "0"))


def dependencies(definition: IntegrationDefinition, names: list[str]) -> dict[str, list[str]]:
    """For each of `names`, the ones among them it must wait for (a sync run alone waits for none).
    A definition with `rate_limit.concurrency.syncs_side_by_side: false` chains them in declared order."""
    after = {n: [d for d in definition.sync(n).after if d in names] for n in names}
    if not definition.rate_limit.concurrency.syncs_side_by_side:
        order = [s.name for s in definition.syncs if s.name in after]
        for earlier, later in itertools.pairwise(order):
            if earlier not in after[later]:
                after[later].append(earlier)
    return after


def run_side_by_side(names: list[str], after: Mapping[str, list[str]], run_one: Callable[[str], R],
                     *, max_workers: int | None = None) -> list[R]:
    """`run_one(name)` for every name, each once its `after` ones returned; results in `names`' order.
    An exception from `run_one` (run_sync reports failures in its result instead) is raised here
    once the syncs already started have finished."""
    results: dict[str, R] = {}
    waiting = list(names)
    running: dict[Future[R], str] = {}
    cap_arenas()
    with ThreadPoolExecutor(max_workers=max_workers or MAX_AT_ONCE or max(1, len(names)),
                            thread_name_prefix="screensync-sync") as pool:
        while waiting or running:
            for name in [n for n in waiting if all(d in results for d in after.get(n, []))]:
                waiting.remove(name)
                running[pool.submit(run_one, name)] = name
            if not running:  # an `after` outside `names` that never comes: the definition checks prevent it
                raise ValueError(f"syncs {waiting} wait for syncs that are not run: {dict(after)}")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                results[running.pop(future)] = future.result()
    return [results[n] for n in names]
