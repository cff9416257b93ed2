"""A connection's syncs side by side: each starts as soon as the syncs it declares `after` have
finished (successfully or not), the others at once.

A sync whose only need is that its references' tables are landed (`references_after`: Checkr's
`invitations` names candidates and reports) starts at once too; only its reference resolution waits
for those syncs. Started after them, the junction (the last write of `candidates`, then the next
sync's start and first answer) left the rate budget idle ~0.45 s of a 19 s first run at 150 ms
(docs/benchmarks.md, issue 17). Callers that cannot gate (one sync per Prefect task, one at a time)
use `dependencies`, where it counts as `after`.

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
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from integrations.engine.definition import IntegrationDefinition
from integrations.engine.malloc_tuning import cap_arenas

R = TypeVar("R")
Wait = Callable[[], None]  # blocks until the syncs a sync's references wait for have finished

# at most this many of a connection's syncs at once (0: all): each sync running costs memory (its
# DuckDB statements, client and per-thread heaps; docs/benchmarks.md, issue 17)
MAX_AT_ONCE = int(os.environ.get("SCREENSYNC_SYNCS_AT_ONCE", "0"))


def dependencies(definition: IntegrationDefinition, names: list[str]) -> dict[str, list[str]]:
    """For each of `names`, the ones among them it must wait for (a sync run alone waits for none).
    A definition with `rate_limit.concurrency.syncs_side_by_side: false` chains them in declared order."""
    after = {n: [d for d in (*definition.sync(n).after, *definition.sync(n).references_after) if d in names]
             for n in names}
    if not definition.rate_limit.concurrency.syncs_side_by_side:
        order = [s.name for s in definition.syncs if s.name in after]
        for earlier, later in itertools.pairwise(order):
            if earlier not in after[later]:
                after[later].append(earlier)
    return after


def reference_waits(definition: IntegrationDefinition, names: list[str]) -> dict[str, list[str]]:
    """For each of `names`, the ones among them only its reference resolution waits for (none when
    the definition chains its syncs: they already run in turn)."""
    if not definition.rate_limit.concurrency.syncs_side_by_side:
        return {n: [] for n in names}
    return {n: [d for d in definition.sync(n).references_after if d in names] for n in names}


def run_side_by_side(names: list[str], after: Mapping[str, list[str]], run_one: Callable[[str, Wait], R],
                     *, max_workers: int | None = None, references: Mapping[str, list[str]] | None = None) -> list[R]:
    """`run_one(name, wait)` for every name, each once its `after` ones returned, except those named
    in its `references` (reference_waits): it starts without them and `wait()` blocks until they
    returned. Results in `names`' order. An exception from `run_one` (run_sync reports failures in its
    result instead) is raised here once the syncs already started have finished."""
    results: dict[str, R] = {}
    finished = {n: threading.Event() for n in names}
    threads = max_workers or MAX_AT_ONCE or max(1, len(names))
    # a sync waiting in a thread of a smaller pool could hold the thread its reference needs: start after
    early = threads >= len(names)
    refs = {n: [d for d in (references or {}).get(n, []) if d in finished and early] for n in names}
    start_after = {n: [d for d in after.get(n, []) if d not in refs[n]] for n in names}

    def waiter(name: str) -> Wait:
        def wait() -> None:
            for d in refs[name]:
                finished[d].wait()
        return wait

    def one(name: str) -> R:
        try:
            return run_one(name, waiter(name))
        finally:
            finished[name].set()

    waiting = list(names)
    running: dict[Future[R], str] = {}
    cap_arenas()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="screensync-sync") as pool:
        while waiting or running:
            for name in [n for n in waiting if all(d in results for d in start_after[n])]:
                waiting.remove(name)
                running[pool.submit(one, name)] = name
            if not running:  # an `after` outside `names` that never comes: the definition checks prevent it
                raise ValueError(f"syncs {waiting} wait for syncs that are not run: {dict(after)}")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                results[running.pop(future)] = future.result()
    return [results[n] for n in names]
